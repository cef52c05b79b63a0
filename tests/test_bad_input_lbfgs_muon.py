"""Bad input for the two optimizers the shared suite cannot take as it is: L-BFGS
(a closure drives the step) and Muon (matrices only). Same contract: a clean
exception naming the problem, and nothing changed."""

import numpy as np
import pytest

import ferroptim as fo
from helpers import DuckParam, assert_unchanged, refused, snapshot


# ---------------------------------------------------------------------- L-BFGS
def quadratic(params):
    def closure():
        loss = 0.0
        for p in params:
            p.grad = 2 * p.data
            loss += float((p.data**2).sum())
        return loss

    return closure


def trained_lbfgs(**kw):
    rng = np.random.default_rng(0)
    params = [fo.Parameter(rng.standard_normal(s)) for s in ((3, 2), (4,))]
    opt = fo.LBFGS(params, lr=0.1, max_iter=3, **kw)
    opt.step(quadratic(params))
    return opt, params


def test_lbfgs_needs_a_closure_and_one_group():
    opt, params = trained_lbfgs()
    with pytest.raises(TypeError, match="closure"):
        opt.step()  # as torch: a missing argument
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step(3.0)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        fo.LBFGS([{"params": params[:1]}, {"params": params[1:]}])


def test_lbfgs_refuses_mixed_dtypes():
    a, b = fo.Parameter(np.zeros(2)), fo.Parameter(np.zeros(2, np.float32))
    opt = fo.LBFGS([a, b])
    with pytest.raises(TypeError, match=r"\['params'\]\[1\] has dtype float32; L-BFGS needs every parameter in one dtype"):
        opt.step(quadratic([a, b]))


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (lambda params: (lambda: "low"), TypeError, "must return the loss as a number, got str"),
        (lambda params: (lambda: 1 / 0), ZeroDivisionError, "division by zero"),
    ],
    ids=["not-a-number", "raises"],
)
def test_lbfgs_closure_failing_changes_nothing(bad, error, match):
    opt, params = trained_lbfgs()
    before = snapshot(opt)
    with pytest.raises(error, match=match):
        opt.step(bad(params))
    assert_unchanged(opt, before)


def test_lbfgs_closure_failing_mid_step_restores_the_parameters():
    opt, params = trained_lbfgs()
    good, calls = quadratic(params), []

    def closure():
        calls.append(1)
        if len(calls) == 2:  # after the first update of the parameters
            raise RuntimeError("model blew up")
        return good()

    before = snapshot(opt)
    with pytest.raises(RuntimeError, match="model blew up"):
        opt.step(closure)
    assert len(calls) == 2
    assert_unchanged(opt, before)


def test_lbfgs_gradient_of_wrong_shape():
    opt, params = trained_lbfgs()
    d = DuckParam(np.zeros(3))
    opt = fo.LBFGS(params + [d])

    def closure():
        quadratic(params)()
        d.grad = np.zeros(4)
        return 1.0

    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"gradient of params\[2\] has shape \[4\] but the parameter \[3\]"):
        opt.step(closure)
    assert_unchanged(opt, before)


def test_lbfgs_unknown_line_search():
    opt, params = trained_lbfgs()
    opt.param_groups[0]["line_search_fn"] = "armijo"
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(quadratic(params))
    assert_unchanged(opt, before)


def test_lbfgs_load_checks_the_history():
    opt, params = trained_lbfgs()
    sd = opt.state_dict()
    st = sd["state"][0]
    assert {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad"} <= set(st)
    fresh, fresh_params = trained_lbfgs()
    before = snapshot(fresh)
    for key, value, error, match in [
        ("d", np.zeros(5), ValueError, r"'d' has shape \(5,\) but should have shape \(10,\)"),
        ("old_dirs", [np.zeros(10), np.zeros(3)], ValueError, r"'old_dirs\[1\]' has shape \(3,\)"),
        ("n_iter", 2.5, ValueError, "'n_iter' must be a count"),
        ("func_evals", "many", ValueError, "'func_evals' must be a count, got 'many'"),
        ("momentum_buffer", np.zeros(10), ValueError, "unknown key 'momentum_buffer'"),
    ]:
        with pytest.raises(error, match=match):
            fresh.load_state_dict({"state": {0: dict(st, **{key: value})}, "param_groups": sd["param_groups"]})
        assert_unchanged(fresh, before)
    fresh.load_state_dict(sd)  # and a good one round-trips
    for p, q in zip(params, fresh_params):
        q.data[...] = p.data
    opt.step(quadratic(params))
    fresh.step(quadratic(fresh_params))
    for p, q in zip(params, fresh_params):
        np.testing.assert_array_equal(p.data, q.data)


def test_lbfgs_history_that_does_not_fit_is_refused_at_the_step():
    opt, params = trained_lbfgs()
    st = opt.state[params[0]]
    st["ro"] = st["ro"][:-1]  # one fewer than the pairs
    before = snapshot(opt)
    with pytest.raises(ValueError, match="state does not fit parameters of 10 elements"):
        opt.step(quadratic(params))
    assert_unchanged(opt, before)


# ------------------------------------------------------------------------ Muon
def trained_muon():
    rng = np.random.default_rng(1)
    params = [fo.Parameter(rng.standard_normal(s).astype(np.float32)) for s in ((4, 3), (2, 5))]
    opt = fo.Muon(params, lr=0.02)
    for _ in range(2):
        for p in params:
            p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
        opt.step()
    return opt, params


def test_muon_takes_matrices_only():
    with pytest.raises(ValueError, match=r"Muon only supports 2D parameters .* size: \(3,\)"):
        fo.Muon([np.zeros(3)])
    with pytest.raises(ValueError, match="only supports 2D"):
        fo.Muon([np.zeros((2, 2, 2))])
    d = DuckParam(np.zeros((2, 2)))
    opt, params = trained_muon()
    opt.add_param_group({"params": [d]})
    d.data, d.grad = np.zeros(4), np.zeros(4)  # a matrix replaced by a vector later
    refused(opt, ValueError, r"Muon only supports 2D parameters whereas we found a parameter with shape \[4\]")


def test_muon_step_checks():
    opt, params = trained_muon()
    params[1].grad = None
    d = DuckParam(np.zeros((2, 2), np.float32))
    opt.add_param_group({"params": [d]})
    d.grad = np.zeros((2, 3))
    refused(opt, ValueError, r"gradient of param_groups\[1\]\['params'\]\[0\]: shape \(2, 3\)")
    d.grad = d.data
    refused(opt, ValueError, "share memory")
    d.grad = np.zeros((2, 2), np.float32)
    opt.state[params[0]]["momentum_buffer"] = np.zeros((3, 4), np.float32)
    refused(opt, ValueError, r"\['momentum_buffer'\]: shape \(3, 4\)")
    opt.state[params[0]]["momentum_buffer"] = np.zeros((4, 3), np.float64)
    refused(opt, TypeError, "'momentum_buffer'.* has dtype float64")
    opt.state[params[0]]["momentum_buffer"] = np.zeros((4, 3), np.float32)
    params[0].data.flags.writeable = False
    refused(opt, ValueError, "read-only")
    params[0].data.flags.writeable = True
    for key, value, error, match in [
        ("adjust_lr_fn", "fastest", ValueError, "Adjust learning rate function fastest is not supported"),
        ("ns_steps", 100, ValueError, "Number of steps must be less than 100"),
        ("ns_coefficients", (1.0, 2.0), TypeError, r"\['ns_coefficients'\] must be three real numbers"),
        ("lr", "fast", TypeError, r"\['lr'\] must be a real number, got str"),
    ]:
        good = opt.param_groups[0][key]
        opt.param_groups[0][key] = value
        refused(opt, error, match)
        opt.param_groups[0][key] = good
    opt.step()  # and with everything put back, it steps


def test_muon_load_checks_the_state():
    opt, params = trained_muon()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match=r"'momentum_buffer' has shape \(12,\) but should have shape \(4, 3\)"):
        bad = {0: {"momentum_buffer": np.zeros(12)}, 1: sd["state"][1]}
        opt.load_state_dict({"state": bad, "param_groups": sd["param_groups"]})
    with pytest.raises(ValueError, match="unknown key 'step'.*Muon keeps momentum_buffer"):
        bad = {0: dict(sd["state"][0], step=3), 1: sd["state"][1]}
        opt.load_state_dict({"state": bad, "param_groups": sd["param_groups"]})
