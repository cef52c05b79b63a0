"""The Optimizer API a torch user expects: hooks, copies, grads, groups, subclassing."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import ferroptim as fo
from helpers import CONFIG_IDS, CONFIGS, DuckParam, make_params, train


def test_step_hooks_run_in_torch_order_and_can_be_removed():
    params = make_params()
    opt = fo.SGD(params, lr=0.1)
    calls = []
    handles = [
        fo.register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global-pre")),
        fo.register_optimizer_step_post_hook(lambda o, a, k: calls.append("global-post")),
        opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
        opt.register_step_post_hook(lambda o, a, k: calls.append("post")),
    ]
    try:
        train(opt, params, 1)
        assert calls == ["global-pre", "pre", "post", "global-post"]
    finally:
        for h in handles:
            h.remove()
    calls.clear()
    train(opt, params, 1)
    assert calls == []


def test_step_pre_hook_can_replace_arguments():
    params = make_params()
    opt = fo.Adam(params)
    seen = []

    def closure():
        seen.append("closure")
        return 3.0

    opt.register_step_pre_hook(lambda o, args, kwargs: ((args[0],), {"closure": closure}))
    for p in params:
        p.grad = np.zeros_like(p.data)
    assert opt.step() == 3.0 and seen == ["closure"]
    bad = opt.register_step_pre_hook(lambda o, a, k: "nonsense")
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        opt.step()
    bad.remove()


def test_handle_as_context_manager():
    opt = fo.SGD(make_params())
    calls = []
    with opt.register_step_post_hook(lambda o, a, k: calls.append(1)):
        opt.step()
    opt.step()
    assert calls == [1]


@pytest.mark.parametrize("name,cls,kw", CONFIGS, ids=CONFIG_IDS)
def test_deepcopy_is_independent(name, cls, kw):
    params = make_params()
    opt = cls(params, **kw)
    train(opt, params, 2)
    clone = copy.deepcopy(opt)
    cparams = [p for g in clone.param_groups for p in g["params"]]
    assert all(c is not p and c.data is not p.data for c, p in zip(cparams, params))
    before = [p.data.copy() for p in params]
    saved = pickle.dumps(opt.state_dict())
    train(clone, cparams, 3)  # stepping the copy leaves the original alone
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)
    original = pickle.loads(saved)["state"]
    for i, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            np.testing.assert_array_equal(value, original[i][key])
    cloned = [c.data.copy() for c in cparams]
    train(opt, params, 3, start=2)  # and the other way round
    for c, b in zip(cparams, cloned):
        np.testing.assert_array_equal(c.data, b)


@pytest.mark.parametrize("name,cls,kw", CONFIGS, ids=CONFIG_IDS)
def test_pickled_optimizer_continues_identically(name, cls, kw):
    params = make_params()
    opt = cls(params, **kw)
    train(opt, params, 2)
    clone = pickle.loads(pickle.dumps(opt))
    cparams = [p for g in clone.param_groups for p in g["params"]]
    train(opt, params, 3, start=2)
    train(clone, cparams, 3, start=2)
    for p, q in zip(params, cparams):
        np.testing.assert_array_equal(p.data, q.data)


def test_zero_grad_both_modes():
    params = make_params()
    opt = fo.SGD(params)
    for p in params:
        p.grad = np.ones_like(p.data)
    grads = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(params, grads):
        assert p.grad is g and not g.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("name,cls,kw", CONFIGS, ids=CONFIG_IDS)
def test_params_without_grad_are_untouched_and_stateless(name, cls, kw):
    params = make_params()
    opt = cls(params, **kw)
    frozen = params[1].data.copy()
    for t in range(3):
        params[0].grad = np.ones_like(params[0].data)
        params[2].grad = np.ones_like(params[2].data)
        opt.step()
    np.testing.assert_array_equal(params[1].data, frozen)
    if name == "Adagrad":  # torch's Adagrad creates every parameter's state at construction
        assert opt.state[params[1]]["step"] == 0
    else:
        assert params[1] not in opt.state


def test_add_param_group_midway():
    params = make_params()
    opt = fo.Adam(params[:2], lr=0.01)
    train(opt, params[:2], 2)
    opt.add_param_group({"params": [params[2]], "lr": 0.1})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["lr"] == 0.1
    train(opt, params, 2, start=2)
    steps = [float(opt.state[p]["step"]) for p in params]
    assert steps == [4.0, 4.0, 2.0]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": params[0]})


def test_repr_is_torchs():
    opt = fo.SGD(make_params(), lr=0.1, momentum=0.9)
    assert repr(opt) == (
        "SGD (\nParameter Group 0\n    dampening: 0\n    lr: 0.1\n    maximize: False\n"
        "    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)"
    )


def test_bare_arrays_with_grads_argument():
    w, b = np.ones((3, 2), np.float32), np.zeros(2, np.float32)
    opt = fo.SGD([w, b], lr=0.5)
    opt.step(grads=[np.ones((3, 2)), np.full(2, 2.0)])
    np.testing.assert_array_equal(w, np.full((3, 2), 0.5, np.float32))  # updated in place
    np.testing.assert_array_equal(b, np.full(2, -1.0, np.float32))
    assert opt.param_groups[0]["params"][0].data is w
    opt.param_groups[0]["params"][1].grad = np.ones(2)
    opt.param_groups[0]["params"][0].grad = None
    opt.step()
    np.testing.assert_array_equal(b, np.full(2, -1.5, np.float32))


def test_duck_typed_params():
    p = DuckParam(np.ones(4))
    opt = fo.Adam([p], lr=0.1)
    p.grad = [1.0, 1.0, 1.0, 1.0]  # any array-like
    opt.step()
    np.testing.assert_allclose(p.data, 0.9)


def test_grad_is_cast_to_param_dtype():
    p = fo.Parameter(np.zeros(3, np.float32))
    p.grad = np.ones(3, np.float64)
    assert p.grad.dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        p.grad = np.ones(4)


@pytest.mark.parametrize(
    "view",
    [lambda a: a[:, ::2], lambda a: a.T, lambda a: np.asfortranarray(a), lambda a: a[::-1]],
    ids=["strided", "transposed", "fortran", "reversed"],
)
def test_non_contiguous_params_match_contiguous(view):
    base = np.random.default_rng(0).standard_normal((6, 8))
    nc = view(base.copy())
    c = np.ascontiguousarray(nc)
    grads = [np.random.default_rng(t).standard_normal(c.shape) for t in range(3)]
    results = []
    for arr in (nc, c):
        p = fo.Parameter(arr)
        opt = fo.AdamW([p], lr=0.1, amsgrad=True)
        for g in grads:
            p.grad = g
            opt.step()
        assert p.data is arr
        results.append(arr.copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_results_do_not_depend_on_thread_count():
    old = fo.get_num_threads()
    try:
        out = []
        for threads in (1, 2, 3):
            fo.set_num_threads(threads)
            assert fo.get_num_threads() == threads
            params = make_params(shapes=((1_000_003,), (300, 700), (5,)))
            opt = fo.Adam(params, lr=0.01, amsgrad=True)
            train(opt, params, 3)
            out.append([p.data for p in params])
        for other in out[1:]:
            for a, b in zip(out[0], other):
                np.testing.assert_array_equal(a, b)
    finally:
        fo.set_num_threads(old)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: fo.Adam(ps, lr=0.01, weight_decay=0.1),
        lambda ps: fo.SGD(ps, lr=0.01, momentum=0.9, nesterov=True),
        lambda ps: fo.RMSprop(ps, lr=0.01, centered=True),
    ],
    ids=["Adam", "SGD", "RMSprop"],
)
@pytest.mark.parametrize("big", [50_001, None], ids=["one-big", "all-small"])
def test_steps_shared_with_the_pool_do_not_depend_on_thread_count(make, big):
    # 65,536 to a million elements: the calling thread shares the kernels with a
    # crew of the pool's threads, woken ahead when the step replays its plan; in
    # pieces of whole parameters when all are small, else in runs and chunks
    old = fo.get_num_threads()
    try:
        out = []
        for threads in (1, 2, 3):
            fo.set_num_threads(threads)
            rng = np.random.default_rng(7)
            shapes = [(64,)] * 1500 + ([(big,)] if big else []) + [(3, 7)]
            params = [fo.Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]
            params += [fo.Parameter(rng.standard_normal((80, 81))) for _ in range(3)]  # float64
            opt = make(params)
            for _ in range(4):
                for p in params:
                    p.grad = rng.standard_normal(p.data.shape).astype(p.data.dtype)
                opt.step()
            out.append([p.data.copy() for p in params] + [np.array(v) for p in params for v in opt.state[p].values()])
        for other in out[1:]:
            for a, b in zip(out[0], other):
                np.testing.assert_array_equal(a, b)
    finally:
        fo.set_num_threads(old)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="at least 1"):
        fo.set_num_threads(0)
    with pytest.raises(TypeError):
        fo.set_num_threads(2.5)


class SignSGD(fo.Optimizer):
    """A user optimizer in pure NumPy, written as for torch."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["steps"] = state.get("steps", 0) + 1
                p.data -= group["lr"] * np.sign(p.grad)
        return loss


def test_pure_python_subclass():
    params = make_params()
    opt = SignSGD(params, lr=0.5)
    calls = []
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    before = params[0].data.copy()
    params[0].grad = np.ones_like(before)
    assert opt.step(lambda: 7.0) == 7.0
    np.testing.assert_allclose(params[0].data, before - 0.5)
    assert calls == ["post"]
    sd = opt.state_dict()
    assert sd["state"] == {0: {"steps": 1}}
    opt2 = SignSGD(make_params())
    opt2.load_state_dict(pickle.loads(pickle.dumps(sd)))
    assert opt2.state[opt2.param_groups[0]["params"][0]] == {"steps": 1}


def test_subclass_calling_super_step_runs_hooks_once():
    class Logged(fo.SGD):
        def step(self, closure=None):
            return super().step(closure)

    params = make_params()
    opt = Logged(params, lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    train(opt, params, 1)
    assert calls == ["pre"]


def test_duplicate_param_in_group_warns():
    p = fo.Parameter(np.zeros(3))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fo.SGD([p, p])
    assert any("duplicate parameters" in str(x.message) for x in w)
