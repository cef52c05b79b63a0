"""Bad input (SPEC §3): a clean exception naming the parameter and the problem, and
nothing changed — parameters, state, groups — after a failing step or load."""

import numpy as np
import pytest

import ferroptim as fo
from helpers import CONFIG_IDS, CONFIGS, DuckParam, assert_unchanged, make_params, refused, snapshot, train

optimizers = pytest.mark.parametrize("name,cls,kw", CONFIGS, ids=CONFIG_IDS)


def trained(cls, kw, params=None):
    params = params or make_params()
    opt = cls(params, **kw)
    train(opt, params, 2)
    for p, g in zip(params, make_params(seed=9)):
        p.grad = g.data
    return opt, params


# ---------------------------------------------------------------- construction
@optimizers
@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex128, np.bool_])
def test_unsupported_dtype(name, cls, kw, dtype):
    with pytest.raises(TypeError, match=rf"param_groups\[0\]\['params'\]\[0\].*{np.dtype(dtype)}"):
        cls([np.zeros(3, dtype)], **kw)


@optimizers
def test_read_only_param(name, cls, kw):
    a = np.zeros(3)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        cls([a], **kw)


@optimizers
def test_params_sharing_memory_are_named(name, cls, kw):
    buf = np.zeros(10)
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] \('a'\) and .*\['params'\]\[1\] \('b'\) share memory"):
        cls([("a", buf[:6]), ("b", buf[4:])], **kw)
    cls([buf[::2], buf[1::2]], **kw)  # interleaved views share no element: fine


@optimizers
def test_group_validation(name, cls, kw):
    p = fo.Parameter(np.zeros(3))
    with pytest.warns(FutureWarning, match="ordered collections.*error in a future release"):  # torch 2.15
        opt = cls({p}, **kw)
    assert opt.param_groups[0]["params"] == [p]
    with pytest.raises(TypeError, match="ordered collections"):  # a set inside a group: still an error
        cls([{"params": {p}}], **kw)
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([], **kw)
    with pytest.raises(TypeError, match="can only optimize .* builtins.list"):
        cls([[1.0, 2.0]], **kw)
    with pytest.raises(TypeError, match="param_group must be a dict"):
        cls([p], **kw).add_param_group([p])


# ------------------------------------------------------------------------ step
@optimizers
def test_param_made_read_only_later(name, cls, kw):
    opt, params = trained(cls, kw)
    params[2].data.flags.writeable = False
    refused(opt, ValueError, r"param_groups\[0\]\['params'\]\[2\]: the array is read-only")


@optimizers
def test_grad_of_wrong_shape(name, cls, kw):
    d = DuckParam(np.zeros((2, 3)))
    opt, params = trained(cls, kw, make_params() + [d])
    d.grad = np.zeros((3, 2))
    refused(opt, ValueError, r"gradient of param_groups\[0\]\['params'\]\[3\]: shape \(3, 2\)")


@optimizers
def test_grad_of_wrong_kind(name, cls, kw):
    d = DuckParam(np.zeros(3))
    opt, params = trained(cls, kw, make_params() + [d])
    d.grad = np.array(["a", "b", "c"])
    refused(opt, TypeError, "not a real number type")
    d.grad = np.zeros(3, np.complex64)
    refused(opt, TypeError, "not a real number type")
    with pytest.raises(TypeError, match="real numbers"):
        params[0].grad = np.zeros(params[0].data.shape, np.complex64)


@optimizers
def test_data_replaced_by_a_non_array(name, cls, kw):
    d = DuckParam(np.zeros(3))
    opt, _ = trained(cls, kw, make_params() + [d])
    d.grad = np.zeros(3)
    d.data = [0.0, 0.0, 0.0]
    refused(opt, TypeError, r"\['params'\]\[3\]: .data must be a numpy.ndarray")


@optimizers
def test_data_reassigned_to_alias_another_param(name, cls, kw):
    opt, params = trained(cls, kw)
    params[1].data = params[0].data.reshape(-1)[:7]
    refused(opt, ValueError, r"\['params'\]\[0\] and param_groups\[0\]\['params'\]\[1\] share memory")


@optimizers
def test_grad_aliasing_its_param(name, cls, kw):
    opt, params = trained(cls, kw)
    params[0].grad = params[0].data
    refused(opt, ValueError, r"gradient of param_groups\[0\]\['params'\]\[0\] share memory")


@optimizers
def test_failure_in_a_later_group_leaves_earlier_groups_alone(name, cls, kw):
    params = make_params()
    opt = cls([{"params": params[:2]}, {"params": params[2:]}], **kw)
    train(opt, params, 2)
    params[2].data.flags.writeable = False
    for p in params:
        p.grad = np.ones_like(p.data)
    refused(opt, ValueError, r"param_groups\[1\]\['params'\]\[0\]")


@optimizers
def test_bad_hyperparameter_set_on_a_group(name, cls, kw):
    opt, _ = trained(cls, kw)
    opt.param_groups[0]["lr"] = "fast"
    refused(opt, TypeError, r"param_groups\[0\]\['lr'\] must be a real number, got str")
    opt.param_groups[0]["lr"] = 0.1
    key = "maximize" if "maximize" in opt.param_groups[0] else "weight_decay"  # AdEMAMix: not a group option
    del opt.param_groups[0][key]
    refused(opt, KeyError, rf"param_groups\[0\] has no '{key}'")


@pytest.mark.parametrize("name,cls,kw", CONFIGS[1:], ids=CONFIG_IDS[1:])
def test_corrupted_state(name, cls, kw):
    opt, params = trained(cls, kw)
    st = opt.state[params[0]]
    key = next(k for k in st if np.ndim(st[k]) > 0)  # a state array (not step, eta, mu_product...)
    good = st[key]
    st[key] = np.zeros(3, good.dtype)
    refused(opt, ValueError, rf"optimizer.state\[param_groups\[0\]\['params'\]\[0\]\]\['{key}'\]: shape \(3,\)")
    st[key] = good.astype(np.float64 if good.dtype == np.float32 else np.float32)
    # 8-bit optimizers: a float32 state1 stands for float32 state, so the uint8 state2 is refused
    refused(opt, TypeError, r"'state\d'.* has dtype" if "8bit" in name else f"'{key}'.* has dtype")
    st[key] = "nonsense"
    refused(opt, TypeError, f"'{key}'.* must be a numpy.ndarray")
    st[key] = good
    opt.state[params[1]] = "not a dict"
    refused(opt, TypeError, "must be a dict")


COUNTING = [c for c in CONFIGS[2:] if not c[0].startswith(("Lion", "LARS"))]  # Lion and LARS count no steps


@pytest.mark.parametrize("name,cls,kw", COUNTING, ids=[c[0] for c in COUNTING])
def test_corrupted_step_counter(name, cls, kw):
    opt, params = trained(cls, kw)
    if "step" in opt.state[params[0]]:
        opt.state[params[0]]["step"] = "three"
        refused(opt, TypeError, r"\['step'\] must be a number, got str")
    else:  # the implementation counts per param group (timm's Lamb, Adan; schedulefree's k)
        key = "k" if "k" in opt.param_groups[0] else "step"
        opt.param_groups[0][key] = "three"
        refused(opt, TypeError, rf"param_groups\[0\]\['{key}'\] must be a real number, got str")


@optimizers
def test_grads_argument_is_checked_first(name, cls, kw):
    opt, params = trained(cls, kw)
    before = snapshot(opt)
    with pytest.raises(ValueError, match="got 2 gradients for 3 parameters"):
        opt.step(grads=[None, None])
    with pytest.raises(ValueError, match=r"step\(grads=...\)\[1\]: .*shape"):
        opt.step(grads=[None, np.zeros(2), None])
    assert_unchanged(opt, before)


# ----------------------------------------------------- odd but valid layouts
@optimizers
def test_odd_layouts_give_the_same_numbers(name, cls, kw):
    rng = np.random.default_rng(3)
    base = rng.standard_normal(64)
    raw = np.zeros(64 * 8 + 1, np.uint8)
    misaligned = raw[1:].view(np.float64)  # not 8-byte aligned
    misaligned[...] = base
    big_endian = base.astype(">f8")
    grads = [rng.standard_normal(64) for _ in range(3)]
    out = []
    for arr in (base.copy(), misaligned, big_endian):
        p = fo.Parameter(arr)
        opt = cls([p], **kw)
        for g in grads:
            p.grad = g.astype(">f8")  # a big-endian gradient, too
            opt.step()
        out.append(np.array(arr, dtype=np.float64))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])


@optimizers
def test_nan_and_inf_gradients_propagate_as_in_torch(name, cls, kw):
    p = fo.Parameter(np.zeros(3))
    opt = cls([p], **kw)
    p.grad = np.array([np.nan, np.inf, 1.0])
    opt.step()
    if name == "Rprop":  # torch's Rprop steps by sign(g): sign(NaN) = 0 leaves it, sign(inf) = 1
        assert p.data[0] == 0 and np.isfinite(p.data[1]) and np.isfinite(p.data[2])
    elif name.startswith("Lion"):  # timm's Lion steps by sign(m): sign(inf) = 1
        assert np.isnan(p.data[0]) and np.all(np.isfinite(p.data[1:]))
    elif name == "ADOPT":  # timm's ADOPT only accumulates g² on a parameter's first step
        assert np.all(p.data == 0) and np.isnan(opt.state[p]["exp_avg_sq"][0])
    elif name.startswith("LAMB"):  # the global gradient norm is NaN: every gradient is divided by it
        assert np.all(np.isnan(p.data))
    else:
        assert np.isnan(p.data[0]) and not np.isfinite(p.data[1]) and np.isfinite(p.data[2])


@optimizers
def test_empty_params(name, cls, kw):
    p, q = fo.Parameter(np.zeros((0, 3))), fo.Parameter(np.ones(2))
    opt = cls([p, q], **kw)
    p.grad, q.grad = np.zeros((0, 3)), np.ones(2)
    opt.step()
    assert p.data.shape == (0, 3)
