"""``FlatParameters`` and the flat path of a step (``_flat_step``).

Every optimizer runs on flat parameters and, side by side, on ordinary ones (each
step checked in full); between steps both get the same changes — gradients dropped,
``.data`` reassigned, state entries and dicts replaced, scalar state changed for one
parameter, hyperparameters and flags changed, a plain group added, the state loaded
anew. Parameters, state dicts and param groups must agree bit for bit after every
step, and the flat path must have been taken where nothing kept it from it.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import ferroptim as fo
from ferroptim._elementwise import ElementwiseOptimizer
from helpers import CONFIGS, assert_unchanged, grads_for, make_params, snapshot

SHAPES = ((4, 5), (7,), (), (2, 1, 3), (0,), (7,))
ELEMENTWISE = [c for c in CONFIGS if isinstance(c[1](make_params(), **c[2]), ElementwiseOptimizer)]


# ------------------------------------------------------------------ FlatParameters
def test_parameters_are_views_of_one_buffer():
    init = [np.full(s, k, np.float64) for k, s in enumerate(SHAPES)]
    flat = fo.FlatParameters(SHAPES, np.float64, init)
    assert [p.data.shape for p in flat.params] == list(SHAPES)
    assert flat.data.size == 20 + 7 + 1 + 6 + 0 + 7
    for k, p in enumerate(flat.params):
        assert isinstance(p, fo.Parameter) and np.shares_memory(p.data, flat.data) or p.data.size == 0
        assert (p.data == k).all()
        assert p.grad is not None and (p.grad == 0).all()
    flat.params[1].data[...] = 9
    assert (flat.data[20:27] == 9).all()
    flat.params[3].grad[...] = 5  # a backward pass writing in place
    assert (flat.grad[28:34] == 5).all()
    assert flat.in_layout


def test_an_assigned_gradient_is_copied_in_and_none_or_a_new_data_leaves_the_layout():
    flat = fo.FlatParameters([(2, 3), 4])
    p, q = flat.params
    view = p.grad
    p.grad = np.arange(6.0).reshape(2, 3)  # float64 in: cast, copied into the view
    assert p.grad is view and p.grad.dtype == np.float32 and (flat.grad[:6] == np.arange(6)).all()
    version = flat.version
    p.grad = None
    assert not flat.in_layout and flat.version != version
    p.grad = np.ones((2, 3))
    assert flat.in_layout and p.grad is view
    q.data = np.zeros(4, np.float32)
    assert not flat.in_layout
    q.grad = np.ones(4)  # a parameter out of its layout keeps its own gradient
    assert not np.shares_memory(q.grad, flat.grad)
    q.data = flat.data[6:]
    q.grad = flat.grad[6:]
    assert not flat.in_layout  # its own views only, not equal arrays
    with pytest.raises(ValueError, match="shape"):
        p.grad = np.ones(5)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="float32 or float64"):
        fo.FlatParameters([3], np.int32)
    with pytest.raises(ValueError, match="2 initial values for 1 shapes"):
        fo.FlatParameters([3], init=[np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match=r"init\[0\] has shape \(2,\), not \(3,\)"):
        fo.FlatParameters([3], init=[np.ones(2)])
    with pytest.raises(ValueError, match="negative"):
        fo.FlatParameters([(2, -1)])


def test_pickled_flat_parameters_stay_views_of_their_buffer():
    flat = fo.FlatParameters([(2, 2), 3], np.float64, [np.eye(2), np.arange(3.0)])
    flat.params[1].grad = None
    params = pickle.loads(pickle.dumps(flat.params))
    assert params[0]._flat is params[1]._flat
    assert np.shares_memory(params[0].data, params[0]._flat.data)
    assert (params[0].data == np.eye(2)).all() and params[1].grad is None
    assert not params[0]._flat.in_layout


# ------------------------------------------------------------------ side by side
def worlds(cls, kw, dtype=np.float64):
    init = [p.data for p in make_params(dtype, shapes=SHAPES)]
    flat = fo.FlatParameters(SHAPES, dtype, init)
    plain = [fo.Parameter(a.copy()) for a in init]
    a, b = cls(flat.params, **kw), cls(plain, **kw)
    b._step_plan = lambda: None  # checked in full
    return [(a, list(flat.params)), (b, plain)]


def _scalar_key(opt, p):
    for k in opt._scalar_state:
        if isinstance(opt.state[p].get(k), np.ndarray):
            return k
    pytest.skip("no scalar state")


def _buffer_key(opt, p):
    for k in opt._buffer_state:
        if isinstance(opt.state[p].get(k), np.ndarray) and opt.state[p][k].shape == p.data.shape:
            return k
    pytest.skip("no state array")


def _toggle(opt, key):
    if not isinstance(opt.param_groups[0].get(key), bool):
        pytest.skip(f"no {key}")
    opt.param_groups[0][key] = not opt.param_groups[0][key]


def _plain_group(opt, params):
    p = fo.Parameter(np.linspace(-1, 1, 5).astype(params[0].data.dtype))
    p.grad = np.full(5, 0.5, p.data.dtype)
    opt.add_param_group({"params": [p]})
    params.append(p)


MUTATIONS = {
    "nothing": lambda o, ps: None,
    "gradient dropped": lambda o, ps: setattr(ps[1], "grad", None),
    "data reassigned": lambda o, ps: setattr(ps[0], "data", ps[0].data.copy()),
    "state array replaced": lambda o, ps: o.state[ps[0]].__setitem__(
        _buffer_key(o, ps[0]), o.state[ps[0]][_buffer_key(o, ps[0])].copy()),
    "state dict replaced": lambda o, ps: o.state.__setitem__(ps[3], dict(o.state[ps[3]])),
    "state dict deep-copied": lambda o, ps: o.state.__setitem__(ps[3], copy.deepcopy(o.state[ps[3]])),
    "state deleted": lambda o, ps: o.state.pop(ps[1], None),
    "scalar of one parameter": lambda o, ps: o.state[ps[1]][_scalar_key(o, ps[1])].__iadd__(3.0),
    "lr changed": lambda o, ps: o.param_groups[0].__setitem__("lr", o.param_groups[0]["lr"] * 0.5),
    "amsgrad toggled": lambda o, ps: _toggle(o, "amsgrad"),
    "maximize toggled": lambda o, ps: _toggle(o, "maximize"),
    "plain group added": _plain_group,
    "state loaded": lambda o, ps: o.load_state_dict(copy.deepcopy(o.state_dict())),
    "deep copy of the optimizer": lambda o, ps: copy.deepcopy(o),
}


def step(world, t, mutate=None):
    opt, params = world
    for p, g in zip(params, grads_for(params, 700 + t)):
        if p.grad is not None and p.grad.shape == g.shape and isinstance(p, fo.FlatParameter) and t % 2:
            p.grad[...] = g  # in place, as a backward pass writing the views
        else:
            p.grad = g
    if mutate is not None:
        mutate(opt, params)
    opt.step()


def assert_same(worlds):
    (a, pa), (b, pb) = worlds
    for x, y in zip(pa, pb):
        assert x.data.dtype == y.data.dtype and x.data.shape == y.data.shape
        assert np.array_equal(x.data, y.data, equal_nan=True)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for key, v in sa["state"][k].items():
            assert np.array_equal(np.asarray(v), np.asarray(sb["state"][k][key]), equal_nan=True), (k, key)
    assert sa["param_groups"] == sb["param_groups"]


def flat_taken(opt):
    route = opt.__dict__.get("_flat_route")
    return route is not None and route.groups is not None


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("name,cls,kw", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_the_flat_path_steps_as_the_general_path(name, cls, kw, mutation):
    ws = worlds(cls, kw)
    for t in range(3):
        for w in ws:
            step(w, t)
        assert_same(ws)
    opt = ws[0][0]
    mergeable = type(opt)._flat_merge and not any(opt.param_groups[0].get(f) for f in opt._flat_blockers)
    assert flat_taken(opt) == mergeable
    for w in ws:
        step(w, 3, MUTATIONS[mutation])
    assert_same(ws)
    for t in range(4, 8):
        for w in ws:
            step(w, t)
        assert_same(ws)


@pytest.mark.parametrize("name,cls,kw", [c for c in ELEMENTWISE if c[0] in ("Adam-amsgrad", "SGD-nesterov", "Adan")])
def test_float32_and_a_refused_step(name, cls, kw):
    ws = worlds(cls, kw, np.float32)
    for t in range(4):
        for w in ws:
            step(w, t)
        assert_same(ws)
    assert flat_taken(ws[0][0])
    errors = []
    for opt, params in ws:
        lr = opt.param_groups[0]["lr"]
        opt.param_groups[0]["lr"] = "fast"
        before = snapshot(opt)
        with pytest.raises(TypeError) as e:
            opt.step()
        errors.append(str(e.value))
        assert_unchanged(opt, before)
        opt.param_groups[0]["lr"] = lr
    assert errors[0] == errors[1]
    for w in ws:
        step(w, 5)
    assert_same(ws)


def test_a_checkpoint_of_flat_parameters_resumes():
    ws = worlds(fo.AdamW, dict(lr=0.01))
    for t in range(3):
        for w in ws:
            step(w, t)
    opt, params = ws[0]
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    again = fo.AdamW(params, lr=0.01)
    again.load_state_dict(saved)
    ws[0] = (again, params)
    for t in range(3, 6):
        for w in ws:
            step(w, t)
        assert_same(ws)
    assert flat_taken(again)
