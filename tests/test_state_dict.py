"""state_dict / load_state_dict: torch's layout, resuming, copying, validation."""

import copy
import pickle

import numpy as np
import pytest

import ferroptim as fo
from helpers import CONFIG_IDS, CONFIGS, assert_unchanged, make_params, snapshot, train


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,cls,kw", CONFIGS, ids=CONFIG_IDS)
def test_resume_from_pickled_state_dict_is_bit_identical(name, cls, kw, dtype):
    params = make_params(dtype)
    opt = cls(params, **kw)
    train(opt, params, 5)
    saved = pickle.dumps((opt.state_dict(), [p.data for p in params]))
    train(opt, params, 5, start=5)

    state, data = pickle.loads(saved)
    params2 = [fo.Parameter(d) for d in data]
    opt2 = cls(params2, **kw)
    opt2.load_state_dict(state)
    train(opt2, params2, 5, start=5)
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)


def test_layout_matches_torch():
    params = make_params()
    opt = fo.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}], amsgrad=True)
    params[1].grad = None
    params[0].grad = np.ones((4, 5), np.float32)
    params[2].grad = np.ones((2, 1, 3), np.float32)
    opt.step()
    sd = opt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert sorted(sd["state"]) == [0, 2]  # param 1 had no gradient: no state
    assert list(sd["state"][0]) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    step = sd["state"][0]["step"]
    assert isinstance(step, np.ndarray) and step.shape == () and step.dtype == np.float64 and step == 1.0
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][1]["params"] == [2]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["lr"] == 0.001
    # plain data: pickle, deepcopy and np.savez of the arrays work
    copy.deepcopy(sd)
    pickle.loads(pickle.dumps(sd))


def test_state_dict_round_trips_through_npz(tmp_path):
    params = make_params()
    opt = fo.AdamW(params, lr=0.01)
    train(opt, params, 3)
    sd = opt.state_dict()
    flat = {f"{i}/{k}": v for i, st in sd["state"].items() for k, v in st.items()}
    np.savez(tmp_path / "s.npz", **flat)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        state = {}
        for name in z.files:
            i, k = name.split("/")
            state.setdefault(int(i), {})[k] = z[name]
    opt2 = fo.AdamW(make_params(), lr=0.01)
    opt2.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    for i in sd["state"]:
        for k in sd["state"][i]:
            np.testing.assert_array_equal(opt2.state_dict()["state"][i][k], sd["state"][i][k])


def test_load_copies_and_casts():
    params = make_params(np.float32)
    opt = fo.Adam(params)
    train(opt, params, 2)
    sd = copy.deepcopy(opt.state_dict())
    for st in sd["state"].values():
        st["exp_avg"] = st["exp_avg"].astype(np.float64)
        st["step"] = 2  # a plain number, as older torch versions saved it
    opt2 = fo.Adam(make_params(np.float32))
    opt2.load_state_dict(sd)
    loaded = opt2.state[opt2.param_groups[0]["params"][0]]
    assert loaded["exp_avg"].dtype == np.float32
    assert loaded["step"].dtype == np.float64 and loaded["step"].shape == ()
    sd["state"][0]["exp_avg_sq"][...] = 123.0  # the optimizer holds copies
    assert not np.any(loaded["exp_avg_sq"] == 123.0)


def test_load_accepts_torch_device_flags_and_missing_options():
    params = make_params()
    opt = fo.AdamW(params)
    train(opt, params, 1)
    sd = opt.state_dict()
    group = sd["param_groups"][0]
    group.update(foreach=None, fused=None, capturable=False, differentiable=False)
    del group["decoupled_weight_decay"]  # saved by an older torch
    opt.load_state_dict(sd)
    g = opt.param_groups[0]
    assert "foreach" not in g and "fused" not in g
    assert g["decoupled_weight_decay"] is True


@pytest.mark.parametrize(
    "corrupt,error,match",
    [
        (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), ValueError, "number of parameter groups"),
        (lambda sd: sd["param_groups"][0]["params"].pop(), ValueError, "doesn't match the size"),
        (lambda sd: sd["state"][2].__setitem__("exp_avg", np.zeros(3)), ValueError, r"'exp_avg' has shape \(3,\)"),
        (lambda sd: sd["state"][1].__setitem__("momentum_buffer", np.zeros(7)), ValueError, "unknown key 'momentum_buffer'"),
        (lambda sd: sd["state"][0].__setitem__("step", np.zeros(2)), ValueError, "single number"),
        (lambda sd: sd["state"].__setitem__(0, [1, 2]), TypeError, "must be a dict"),
    ],
    ids=["groups", "group-size", "shape", "unknown-key", "step", "not-a-dict"],
)
def test_invalid_load_changes_nothing(corrupt, error, match):
    params = make_params()
    opt = fo.Adam(params, lr=0.01)
    train(opt, params, 2)
    sd = copy.deepcopy(opt.state_dict())
    corrupt(sd)
    before = snapshot(opt)
    with pytest.raises(error, match=match):
        opt.load_state_dict(sd)
    assert_unchanged(opt, before)


def test_state_dict_and_load_hooks():
    params = make_params()
    opt = fo.SGD(params, lr=0.1, momentum=0.9)
    calls = []
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre-first"), prepend=True)

    def post(o, sd):
        calls.append("post")
        return {**sd, "extra": 1}

    h = opt.register_state_dict_post_hook(post)
    assert opt.state_dict()["extra"] == 1
    assert calls == ["pre-first", "pre", "post"]
    h.remove()
    assert "extra" not in opt.state_dict()

    def load_pre(o, sd):
        calls.append("load-pre")
        sd["param_groups"][0]["lr"] = 0.5

    opt.register_load_state_dict_pre_hook(load_pre)
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load-post"))
    opt.load_state_dict(opt.state_dict())
    assert calls[-2:] == ["load-pre", "load-post"] and opt.param_groups[0]["lr"] == 0.5


def test_named_parameters_are_kept():
    params = make_params()
    names = ["w", "b", "c"]
    opt = fo.Adam(list(zip(names, params)))
    assert opt.param_groups[0]["param_names"] == names
    train(opt, params, 1)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["param_names"] == names
    opt2 = fo.Adam(make_params())
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["param_names"] == names
