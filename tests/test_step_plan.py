"""The step plan (``_core.StepPlan``): a step replays the last step's verified plan,
comparing each array with what was checked instead of checking it again.

Every optimizer runs twice side by side, one with its plan and one checking every
array on every step (``plan=None``), and each way the plan can go stale is applied
to both between steps: ``.data`` reassigned, reshaped, retyped or made read-only in
place, state entries and state dicts replaced, resized, made read-only or deleted,
gradients dropped, shared or aliasing a written array, groups edited or added,
parameters reordered, the state loaded anew. The two must agree bit for bit after
every step, and refuse the same steps with the same error, changing nothing.
"""

from __future__ import annotations

import copy
import sys
import threading
import time

import numpy as np
import pytest

import ferroptim as fo
from ferroptim._elementwise import ElementwiseOptimizer
from helpers import CONFIGS, assert_unchanged, grads_for, make_params, snapshot

SHAPES = ((4, 5), (7,), (2, 1, 3), (7,))
# the optimizers that step through the plan (SparseAdam and L-BFGS check in full)
PLANNED = [c for c in CONFIGS if isinstance(c[1](make_params(), **c[2]), ElementwiseOptimizer)]
PLANNED_IDS = [c[0] for c in PLANNED]
# those whose plan is recorded (8-bit state is checked in full on every step)
REPLAYED = [c for c in PLANNED if "8bit" not in c[0]]


def buffer_key(opt, p):
    """The first state array of ``p`` the optimizer keeps."""
    st = opt.state[p]
    for k in opt._buffer_state:
        if isinstance(st.get(k), np.ndarray) and st[k].ndim > 0:
            return k
    pytest.skip("no state array")


def scalar_key(opt, p):
    st = opt.state[p]
    for k in opt._scalar_state:
        if isinstance(st.get(k), np.ndarray):
            return k
    pytest.skip("no scalar state")


def _strided(a):
    """A copy of ``a`` with the same shape, every other element of a wider array."""
    return np.repeat(a, 2, axis=-1)[..., ::2]


def _readonly(a):
    a.flags.writeable = False


def _reshape(a):
    a.shape = (a.size, 1)


def _retype(a):
    a.dtype = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64, np.dtype(np.uint8): np.int8}[a.dtype]


def _delete(opt, p):
    if p not in opt.state:
        pytest.skip("no state")
    del opt.state[p]


def _grad_is_state(opt, p):
    a = opt.state[p][buffer_key(opt, p)]
    if a.shape != p.data.shape or a.dtype != p.data.dtype:
        pytest.skip("no state array like the parameter")
    p.grad = a


def _refill(opt, p):
    """Empties ``p``'s state dict and fills it again with copies of its entries."""
    st = opt.state[p]
    items = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
    st.clear()
    st.update(items)


def _swap_entries(opt, p):
    """Swaps two state arrays of ``p`` of the same shape (``exp_avg`` and ``exp_avg_sq``)."""
    st = opt.state[p]
    keys = [k for k in opt._buffer_state if isinstance(st.get(k), np.ndarray) and st[k].shape == p.data.shape]
    if len(keys) < 2:
        pytest.skip("fewer than two state arrays like the parameter")
    st[keys[0]], st[keys[1]] = st[keys[1]], st[keys[0]]


def _swap_states(opt, params):
    """Swaps the state dicts of two parameters of the same shape."""
    a, b = params[1], params[3]
    if a not in opt.state or b not in opt.state:
        pytest.skip("no state")
    sa, sb = opt.state[a], opt.state[b]
    opt.state[a], opt.state[b] = sb, sa


def _replace_by(how):
    """A mutation replacing the first state array of ``params[0]`` by a copy through
    ``how(state_dict, key, copy)`` (dict methods that bypass any override)."""
    def mutate(opt, params):
        key = buffer_key(opt, params[0])
        st = opt.state[params[0]]
        how(st, key, st[key].copy())
    return mutate


def _new_group(opt, params):
    p = fo.Parameter(np.linspace(-1, 1, 6).astype(params[0].data.dtype))
    p.grad = np.full(6, 0.25, p.data.dtype)
    opt.add_param_group({"params": [p]})
    params.append(p)


def _swap(opt, params):
    group = opt.param_groups[0]["params"]
    group[1], group[3] = group[3], group[1]


def _toggle(opt, key):
    g = opt.param_groups[0]
    if key not in g or not isinstance(g[key], bool):
        pytest.skip(f"no {key}")
    g[key] = not g[key]


# name → fn(opt, params), applied after the step's gradients are assigned
MUTATIONS = {
    "nothing": lambda o, ps: None,
    "data reassigned": lambda o, ps: setattr(ps[0], "data", ps[0].data.copy()),
    "data strided": lambda o, ps: setattr(ps[1], "data", _strided(ps[1].data)),
    "data read-only in place": lambda o, ps: _readonly(ps[0].data),
    "data reshaped in place": lambda o, ps: _reshape(ps[1].data),
    "data retyped in place": lambda o, ps: _retype(ps[2].data),
    "data values": lambda o, ps: ps[0].data.__imul__(0.5),
    "state array replaced": lambda o, ps: o.state[ps[0]].__setitem__(
        buffer_key(o, ps[0]), o.state[ps[0]][buffer_key(o, ps[0])].copy()),
    "state array wrong shape": lambda o, ps: o.state[ps[1]].__setitem__(
        buffer_key(o, ps[1]), np.zeros(3, ps[1].data.dtype)),
    "state array read-only in place": lambda o, ps: _readonly(o.state[ps[0]][buffer_key(o, ps[0])]),
    "state array reshaped in place": lambda o, ps: _reshape(o.state[ps[1]][buffer_key(o, ps[1])]),
    "state array retyped in place": lambda o, ps: _retype(o.state[ps[1]][buffer_key(o, ps[1])]),
    "state array values": lambda o, ps: np.copyto(o.state[ps[0]][buffer_key(o, ps[0])],
                                                  o.state[ps[0]][buffer_key(o, ps[0])][::-1].copy()),
    "state array is another's": lambda o, ps: o.state[ps[1]].__setitem__(
        buffer_key(o, ps[1]), o.state[ps[3]][buffer_key(o, ps[3])]),
    "scalar in place": lambda o, ps: o.state[ps[0]][scalar_key(o, ps[0])].__iadd__(3.0),
    "scalar a float": lambda o, ps: o.state[ps[0]].__setitem__(
        scalar_key(o, ps[0]), float(o.state[ps[0]][scalar_key(o, ps[0])])),
    "scalar read-only": lambda o, ps: _readonly(o.state[ps[0]][scalar_key(o, ps[0])]),
    "scalar is another's": lambda o, ps: o.state[ps[1]].__setitem__(
        scalar_key(o, ps[1]), o.state[ps[3]][scalar_key(o, ps[3])]),
    "state array set by dict.__setitem__": _replace_by(dict.__setitem__),
    "state array set by update": _replace_by(lambda st, k, v: st.update({k: v})),
    "state array popped and set anew": _replace_by(lambda st, k, v: (st.pop(k), st.__setitem__(k, v))),
    "state array deleted and setdefault": _replace_by(lambda st, k, v: (st.__delitem__(k), st.setdefault(k, v))),
    "state array set to itself": _replace_by(lambda st, k, v: st.__setitem__(k, st[k])),
    "state dict cleared and refilled": lambda o, ps: _refill(o, ps[0]),
    "state arrays swapped": lambda o, ps: _swap_entries(o, ps[1]),
    "state dicts swapped": _swap_states,
    "state dict set by dict.__setitem__": lambda o, ps: dict.__setitem__(o.state, ps[0], dict(o.state[ps[0]])),
    "state dict replaced": lambda o, ps: o.state.__setitem__(ps[0], dict(o.state[ps[0]])),
    "state dict deep-copied": lambda o, ps: o.state.__setitem__(ps[2], copy.deepcopy(o.state[ps[2]])),
    "state deleted": lambda o, ps: _delete(o, ps[1]),
    "gradient dropped": lambda o, ps: setattr(ps[1], "grad", None),
    "gradient shared": lambda o, ps: setattr(ps[1], "grad", ps[3].grad),
    "gradient is a parameter": lambda o, ps: setattr(ps[1], "grad", ps[3].data),
    "gradient is its state": lambda o, ps: _grad_is_state(o, ps[1]),
    "gradient strided": lambda o, ps: setattr(ps[1], "grad", _strided(ps[1].grad)),
    "lr changed": lambda o, ps: o.param_groups[0].__setitem__("lr", o.param_groups[0]["lr"] * 0.5),
    "amsgrad toggled": lambda o, ps: _toggle(o, "amsgrad"),
    "maximize toggled": lambda o, ps: _toggle(o, "maximize"),
    "group added": _new_group,
    "parameters reordered": _swap,
    "params list replaced": lambda o, ps: o.param_groups[0].__setitem__("params", list(o.param_groups[0]["params"])),
    "state loaded": lambda o, ps: o.load_state_dict(copy.deepcopy(o.state_dict())),
}


def optimizer(cls, params, kw, planned):
    """``cls(params, **kw)``, stepping through its plan or (not ``planned``) checking
    every step in full."""
    opt = cls(params, **kw)
    if not planned:
        opt._step_plan = lambda: None
    return opt


def world(cls, kw, planned, shapes=SHAPES):
    params = make_params(np.float64, shapes=shapes)
    return optimizer(cls, params, kw, planned), params


def step_both(worlds, t, mutate=None):
    """One step in both worlds (gradients depending only on ``t``), after ``mutate``;
    both must succeed alike or fail alike, the failing one changing nothing."""
    outcomes = []
    for opt, params in worlds:
        for p, g in zip(params, grads_for(params, 500 + t)):
            p.grad = g
        if mutate is not None:
            mutate(opt, params)
        before = snapshot(opt)
        try:
            opt.step()
            outcomes.append(None)
        except (TypeError, ValueError) as e:
            assert_unchanged(opt, before)
            outcomes.append((type(e), str(e)))
    assert outcomes[0] == outcomes[1]
    assert_same(worlds)
    return outcomes[0]


def same_bits(x, y):
    x, y = np.asarray(x), np.asarray(y)
    return (x.dtype == y.dtype and x.shape == y.shape
            and np.array_equal(np.ascontiguousarray(x).view(np.uint8), np.ascontiguousarray(y).view(np.uint8)))


def assert_same(worlds):
    """Parameters and state agree bit for bit (NaN included: a swap of ``exp_avg``
    and ``exp_avg_sq`` makes some)."""
    (a, pa), (b, pb) = worlds
    for x, y in zip(pa, pb):
        assert same_bits(x.data, y.data)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for key, v in sa["state"][k].items():
            assert same_bits(v, sb["state"][k][key]), (k, key)
    assert sa["param_groups"] == sb["param_groups"]


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("name,cls,kw", PLANNED, ids=PLANNED_IDS)
def test_a_stale_plan_is_noticed(name, cls, kw, mutation):
    worlds = [world(cls, kw, planned) for planned in (True, False)]
    for t in range(3):
        assert step_both(worlds, t) is None
    if (name, cls, kw) in REPLAYED:
        assert worlds[0][0]._plan.recorded
    step_both(worlds, 3, MUTATIONS[mutation])
    for t in range(4, 7):
        step_both(worlds, t)


# Muon takes matrices only (two of the same shape, as SHAPES has two vectors)
MATRICES = ((4, 5), (3, 3), (2, 6), (3, 3))


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("kw", [dict(lr=0.02), dict(lr=0.02, nesterov=False, adjust_lr_fn="match_rms_adamw")],
                         ids=["nesterov", "plain"])
def test_a_stale_muon_plan_is_noticed(kw, mutation):
    worlds = [world(fo.Muon, kw, planned, MATRICES) for planned in (True, False)]
    for t in range(3):
        assert step_both(worlds, t) is None
    assert worlds[0][0]._plan.recorded
    step_both(worlds, 3, MUTATIONS[mutation])
    for t in range(4, 7):
        step_both(worlds, t)


@pytest.mark.parametrize("name,cls,kw", REPLAYED, ids=[c[0] for c in REPLAYED])
def test_replayed_steps_are_the_full_steps(name, cls, kw):
    """Forty steps through the plan and forty checked in full agree bit for bit, and
    the plan is recorded from the second step on (the first may create the state)."""
    worlds = [world(cls, kw, planned) for planned in (True, False)]
    for t in range(40):
        step_both(worlds, t)
        assert worlds[0][0]._plan.recorded or t == 0


# A step big enough to share its work with a crew of pool threads (2**16 elements or
# more, under 2**20), whose replays gather in pieces on two threads: the parameters the
# mutations touch come last in the group, in the pieces the helper thread takes.
FILLER = ((256,),) * 260
SHARED = [c for c in REPLAYED if c[0] in ("SGD-nesterov", "Adam-amsgrad", "RMSprop-momentum", "ASGD")]


@pytest.fixture
def two_threads():
    before = fo.get_num_threads()
    fo.set_num_threads(2)
    yield
    fo.set_num_threads(before)


def shared_world(cls, kw, planned, filler=FILLER):
    params = make_params(np.float64, shapes=filler + SHAPES)
    return optimizer(cls, params, kw, planned), params[len(filler):] + params[:len(filler)]


# A step of 2**20 elements or more goes to the pool; a replay of one still wakes a crew
# ahead, which gathers its parameters in pieces and then runs its kernels.
FILLER_BIG = ((4096,),) * 260


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("name,cls,kw", SHARED, ids=[c[0] for c in SHARED])
def test_a_stale_plan_is_noticed_when_its_gather_is_shared(name, cls, kw, mutation, two_threads):
    worlds = [shared_world(cls, kw, planned) for planned in (True, False)]
    for t in range(3):
        assert step_both(worlds, t) is None
    plan = worlds[0][0]._plan
    assert plan.recorded and plan.shared_replays >= 1
    step_both(worlds, 3, MUTATIONS[mutation])
    for t in range(4, 7):
        step_both(worlds, t)


@pytest.mark.parametrize("name,cls,kw", SHARED, ids=[c[0] for c in SHARED])
def test_shared_gathers_replay_the_full_steps(name, cls, kw, two_threads):
    """Replays gathered in pieces on two threads agree bit for bit with full steps."""
    worlds = [shared_world(cls, kw, planned) for planned in (True, False)]
    for t in range(12):
        step_both(worlds, t)
    assert worlds[0][0]._plan.shared_replays >= 10


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_stale_plan_is_noticed_when_a_big_steps_gather_is_shared(mutation, two_threads):
    """As above, for a step big enough to go to the pool (2**20 elements or more)."""
    worlds = [shared_world(fo.Adam, dict(lr=0.1, amsgrad=True), planned, FILLER_BIG) for planned in (True, False)]
    for t in range(3):
        assert step_both(worlds, t) is None
    plan = worlds[0][0]._plan
    assert sum(p.data.size for p in worlds[0][1]) >= 1 << 20
    assert plan.recorded and plan.shared_replays >= 1
    step_both(worlds, 3, MUTATIONS[mutation])
    for t in range(4, 7):
        step_both(worlds, t)


def test_a_big_step_of_both_dtypes_and_big_tensors_replays_the_full_steps(two_threads):
    """A replay of millions of elements, float32 and float64 parameters, some of them
    bigger than a piece of the crew's work (split between the threads) and many
    small ones: bit for bit with full steps, its gather shared."""
    def build(planned):
        rng = np.random.default_rng(3)
        shapes = [(1 << 20,), (3, 5), (1 << 19,)] + [(1000 + k,) for k in range(300)]
        params = [fo.Parameter(rng.standard_normal(s).astype(np.float32 if k % 2 else np.float64))
                  for k, s in enumerate(shapes)]
        return optimizer(fo.AdamW, params, dict(lr=0.01), planned), params

    worlds = [build(planned) for planned in (True, False)]
    for t in range(8):
        step_both(worlds, t)
    plan = worlds[0][0]._plan
    assert plan.shared_replays >= 6
    # kernels of milliseconds release the GIL (taking their references first)
    assert plan.attached_replays == 0


@pytest.mark.parametrize("name,cls,kw", SHARED, ids=[c[0] for c in SHARED])
def test_parameters_without_gradients_in_a_shared_gather(name, cls, kw, two_threads):
    """Parameters without a gradient, one early in the group and one in the helper's
    pieces, leave the gather shared; one that gets a gradient again, or one that
    loses its own, is noticed (and the plan recorded anew). Bit for bit with full
    steps throughout."""
    worlds = [shared_world(cls, kw, planned) for planned in (True, False)]

    def drop(opt, params):
        # the group's last parameters come first in `params`, its first ones after them
        params[0].grad = params[len(SHAPES)].grad = None

    for t in range(6):
        step_both(worlds, t, drop)
    plan = worlds[0][0]._plan
    assert plan.recorded and plan.shared_replays >= 3
    step_both(worlds, 6)  # the gradients are back
    step_both(worlds, 7, lambda o, ps: setattr(ps[2], "grad", None))
    for t in range(8, 12):  # recorded anew at the first, replayed after
        step_both(worlds, t, drop)
    assert worlds[0][0]._plan.shared_replays >= 2


def test_a_shared_replay_keeps_the_gil_and_no_reference_to_a_gradient(two_threads):
    """A shared replay's kernels run with the GIL kept, which keeps its gradients
    alive: it takes no reference to them, and leaves their counts as they were."""
    opt, params = shared_world(fo.Adam, dict(lr=0.1), True)
    for p, g in zip(params, grads_for(params, 0)):
        p.grad = g
    for _ in range(3):
        opt.step()
    counts = [sys.getrefcount(p.grad) for p in params]
    for _ in range(3):
        opt.step()
    assert [sys.getrefcount(p.grad) for p in params] == counts
    plan = opt._plan
    assert plan.shared_replays >= 3 and plan.attached_replays == plan.shared_replays


def test_a_shared_replay_waiting_for_another_threads_kernels_releases_the_gil(two_threads):
    """While another thread's kernels run (a step of millions of elements, the GIL
    released), a shared replay does not wait for them holding the GIL: it takes its
    references to the gradients and releases it, with the same numbers."""
    worlds = [shared_world(fo.Adam, dict(lr=0.1), planned) for planned in (True, False)]
    for t in range(3):
        step_both(worlds, t)
    big = fo.Parameter(np.zeros(1 << 23, np.float32))
    big.grad = np.ones_like(big.data)
    big_opt = fo.SGD([big], lr=0.1, momentum=0.9)
    stop = threading.Event()

    def step_big():
        while not stop.is_set():
            big_opt.step()

    thread = threading.Thread(target=step_big)
    thread.start()
    plan = worlds[0][0]._plan
    # The big step's caller works on its kernels beside the pool's thread, so with
    # other processes busy the two meet only now and then: step until they have (or
    # for 20 seconds, when the assertion below fails).
    deadline = time.monotonic() + 20.0
    try:
        t = 3
        while time.monotonic() < deadline:
            step_both(worlds, t)
            t += 1
            if t > 10 and plan.attached_replays < plan.shared_replays:
                break
    finally:
        stop.set()
        thread.join()
    assert plan.recorded and plan.attached_replays < plan.shared_replays, "no replay met the other's kernels"
    counts = [sys.getrefcount(p.grad) for p in worlds[0][1]]
    worlds[0][0].step()
    assert [sys.getrefcount(p.grad) for p in worlds[0][1]] == counts


@pytest.mark.parametrize("threads", [1, 2])
def test_a_gradient_holding_a_scalar_is_read_before_the_scalar_is_stored(threads):
    """A replay's kernels store each parameter's scalar state as they go, unless a
    gradient holds one: a kernel reading it must read it as it was, as in a full step
    (the gradients here are the same arrays every step, so the replay meets it)."""
    before = fo.get_num_threads()
    fo.set_num_threads(threads)
    try:
        def build(planned):
            params = make_params(np.float64, shapes=FILLER + SHAPES)
            opt = optimizer(fo.Adam, params, dict(lr=0.1), planned)
            for p, g in zip(params, grads_for(params, 0)):
                p.grad = g
            opt.step()
            p, q = params[-4], params[-3]
            q.grad.reshape(-1)[0] = opt.state[p]["step"]
            opt.state[p]["step"] = q.grad.reshape(-1)[:1].reshape(())  # `q.grad[0]` is `p`'s step
            return opt, params

        worlds = [build(planned) for planned in (True, False)]
        for _ in range(6):
            for opt, _ in worlds:
                opt.step()
            assert_same(worlds)
    finally:
        fo.set_num_threads(before)


def test_a_duck_typed_parameter_ends_the_shared_gather(two_threads):
    """A parameter that is not a ``Parameter`` needs attribute calls: the replay
    gathers on the calling thread alone, from then on, with the same numbers."""
    def build(planned):
        params = make_params(np.float64, shapes=FILLER + SHAPES)
        params[-1] = _Watched(params[-1].data)
        return optimizer(fo.Adam, params, dict(lr=0.1), planned), params

    worlds = [build(planned) for planned in (True, False)]
    for t in range(6):
        step_both(worlds, t)
    plan = worlds[0][0]._plan
    assert plan.recorded and plan.shared_replays == 0


class _Watched:
    """A parameter whose ``grad`` property runs ``on_read`` once (then forgets it)."""

    def __init__(self, data):
        self.data = data
        self._grad = None
        self.on_read = None

    @property
    def grad(self):
        hook, self.on_read = self.on_read, None
        if hook is not None:
            hook()
        return self._grad

    @grad.setter
    def grad(self, g):
        self._grad = g


@pytest.mark.parametrize("how", ["state dict replaced", "state array replaced"])
def test_state_changed_by_a_gradient_read_mid_step_replays_as_the_full_step(how):
    """Reading the first parameter's gradient replaces the last parameter's state (or
    one of its arrays) in the middle of the step: the full step sees the change when it
    reaches the last parameter, and so must a replay (which tells an unchanged dict by
    its version tag, asked for each parameter after its attributes are read)."""
    def build(planned):
        params = [_Watched(p.data) for p in make_params(np.float64, shapes=SHAPES)]
        return optimizer(fo.Adam, params, dict(lr=0.1), planned), params

    worlds = [build(planned) for planned in (True, False)]
    for t in range(3):
        step_both(worlds, t)
    assert worlds[0][0]._plan.recorded

    def change(opt, last):
        st = opt.state[last]
        if how == "state dict replaced":
            dict.__setitem__(opt.state, last, {k: np.copy(v) * 0.5 for k, v in st.items()})
        else:
            dict.__setitem__(st, "exp_avg", st["exp_avg"] * -1.0)

    for opt, params in worlds:  # armed last, right before the step, as nothing else reads .grad
        for p, g in zip(params, grads_for(params, 503)):
            p.grad = g
        params[0].on_read = lambda opt=opt, last=params[-1]: change(opt, last)
        opt.step()
        assert params[0].on_read is None
    assert_same(worlds)
    for t in range(4, 7):
        step_both(worlds, t)


@pytest.mark.skipif(sys.implementation.name != "cpython" or not (3, 9) <= sys.version_info[:2] < (3, 14),
                    reason="dict version tags: CPython 3.9 to 3.13")
def test_dicts_are_told_unchanged_by_their_version_tags():
    """On the Pythons whose dicts carry PEP 509 version tags, a replay uses them (the
    mutations above then show that every way of changing a dict is noticed)."""
    assert fo._core.StepPlan().dict_versions


def test_a_plan_is_not_pickled_or_copied_and_load_state_dict_drops_it():
    params = make_params()
    opt = fo.Adam(params)
    for _ in range(2):
        for p in params:
            p.grad = np.ones_like(p.data)
        opt.step()
    assert opt._plan.recorded
    assert "_plan" not in copy.deepcopy(opt).__dict__
    opt.load_state_dict(opt.state_dict())
    assert "_plan" not in opt.__dict__


def test_unhashable_parameters_and_given_gradients_replay():
    """Parameters without a hash (state kept by identity) and ``step(grads=...)``."""

    class Unhashable:
        __hash__ = None

        def __init__(self, data):
            self.data, self.grad = data, None

        def __eq__(self, other):
            return NotImplemented

    results = []
    for planned in (True, False):
        params = [Unhashable(np.linspace(-1, 1, n)) for n in (3, 5, 3)]
        opt = fo.Adam(params, lr=0.1)
        if not planned:
            opt._step_plan = lambda: None
        for t in range(6):
            opt.step(grads=[np.full(p.data.shape, 0.1 * (t + k)) for k, p in enumerate(params)])
            if t == 3:  # the two same-shaped parameters' state swapped behind the plan
                opt.state[params[0]], opt.state[params[2]] = opt.state[params[2]], opt.state[params[0]]
        if planned:
            assert opt._plan.recorded
        results.append([p.data.copy() for p in params])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


GIVEN_GRADS = {
    # the parameter's own dtype object, C-contiguous: used in place
    "same": lambda g: g,
    # what the replay's quick check declines, for the full checks to handle
    "big-endian": lambda g: g.astype(g.dtype.newbyteorder(">")),
    # equal to float64, but another dtype object: checked in full, used in place
    "dtype with metadata": lambda g: g.view(np.dtype(np.float64, metadata={"unit": "m"})),
    "float32": lambda g: g.astype(np.float32),
    "Fortran order": lambda g: np.asfortranarray(g),
    "reversed view": lambda g: g[::-1, ::-1][::-1, ::-1] if g.ndim == 2 else g[::-1][::-1],
    "a list": lambda g: g.tolist(),
    "wrong shape": lambda g: g.reshape(-1),
}


@pytest.mark.parametrize("kind", list(GIVEN_GRADS))
def test_given_gradients_of_every_layout_replay_as_full_steps(kind):
    """Gradients of every layout through ``step(grads=...)`` (checked and cast to the
    parameter's dtype where it differs, as a Parameter's ``.grad`` is): the replay's
    quick check takes only the parameter's own dtype object, C-contiguous, and the
    full checks the rest (a copy, or the full step's error)."""
    results = []
    for planned in (True, False):
        params = [fo.Parameter(np.linspace(-1, 1, 12).reshape(shape)) for shape in ((3, 4), (2, 6), (4, 3))]
        opt = fo.Adam(params, lr=0.1)
        if not planned:
            opt._step_plan = lambda: None
        outcome = []
        for t in range(5):
            grads = [np.full(p.data.shape, 0.1 * (t + k + 1)) for k, p in enumerate(params)]
            if t >= 2:
                grads[1] = GIVEN_GRADS[kind](grads[1])
            try:
                opt.step(grads=grads)
                outcome.append(None)
            except (TypeError, ValueError) as e:
                outcome.append((type(e), str(e)))
            if planned and t == 1:
                assert opt._plan.recorded
        results.append((outcome, [p.data.copy() for p in params]))
    (oa, pa), (ob, pb) = results
    assert oa == ob
    if kind == "wrong shape":
        assert oa[2] is not None
    for a, b in zip(pa, pb):
        assert np.array_equal(a, b)


def test_a_plan_in_use_is_not_shared():
    """A plan borrowed by one step (here: a step re-entered from a `.grad` property)
    is not used by another: the inner step checks in full."""
    params = make_params(np.float64)
    opt = fo.SGD(params, lr=0.1, momentum=0.9)
    inner = fo.SGD(make_params(np.float64), lr=0.1)
    inner._plan = opt._step_plan()  # the same plan object, as a second optimizer sharing it

    class Stepping(fo.Parameter):
        __slots__ = ()

        @property
        def grad(self):
            for p in inner.param_groups[0]["params"]:
                p.grad = np.ones_like(p.data)
            inner.step()
            return np.ones_like(self.data)

        @grad.setter
        def grad(self, value):
            pass

    p = object.__new__(Stepping)
    object.__setattr__(p, "data", np.zeros(3))
    opt.add_param_group({"params": [p]})
    for q in params:
        q.grad = np.ones_like(q.data)
    for _ in range(4):
        opt.step()
    assert np.allclose(p.data, [-1.0 * (0.1 + 0.19 + 0.271 + 0.3439)] * 3)


@pytest.mark.parametrize("interleaved", [True, False], ids=["grads-beside-params", "grads-apart"])
def test_a_gradient_aliasing_any_written_array_is_refused_on_replay(interleaved):
    """The replayed step searches the written arrays from where the last gradient was
    found: a gradient sharing memory with a parameter or a state array far before or
    after it, or beside it, is refused all the same (and the refused step changes
    nothing), whether the gradients lie beside their parameters or apart."""
    rng = np.random.default_rng(5)
    params, grads = [], []
    for _ in range(64):
        params.append(fo.Parameter(rng.standard_normal(6)))
        if interleaved:
            grads.append(rng.standard_normal(6))
    if not interleaved:
        grads = [rng.standard_normal(6) for _ in params]
    opt = fo.Adam(params, lr=0.01)
    for p, g in zip(params, grads):
        p.grad = g
    for _ in range(2):
        opt.step()
    assert opt._plan.recorded
    for k, j, written in [(40, 3, "param"), (3, 60, "param"), (20, 21, "param"), (21, 20, "exp_avg"),
                          (63, 0, "exp_avg_sq"), (0, 63, "exp_avg"), (33, 33, "exp_avg_sq")]:
        target = params[j].data if written == "param" else opt.state[params[j]][written]
        params[k].grad = target.reshape(-1)
        before = snapshot(opt)
        with pytest.raises(ValueError, match="share memory"):
            opt.step()
        assert_unchanged(opt, before)
        params[k].grad = grads[k]
        opt.step()  # and the next step replays again
    assert opt._plan.recorded


# A replayed step reads .data and .grad of a Parameter from its slots (rust/ferroptim-py
# src/slots.rs) for as long as the class's attribute lookup is that slot read; a
# class changed after the plan was recorded is read through getattr again.
_GRAD = fo.Parameter.__dict__["grad"]


def _doubled_grad(self):
    g = _GRAD.__get__(self)
    return None if g is None else g * 2


@pytest.fixture
def restore_parameter():
    saved = {k: fo.Parameter.__dict__[k] for k in ("data", "grad")}
    yield
    for k, v in saved.items():
        setattr(fo.Parameter, k, v)
    if "__getattribute__" in fo.Parameter.__dict__:
        del fo.Parameter.__getattribute__


def _getattribute_doubling(self, name):
    value = object.__getattribute__(self, name)
    return value * 2 if name == "grad" and value is not None else value


CLASS_CHANGES = {
    "grad property": lambda: setattr(fo.Parameter, "grad", property(_doubled_grad, _GRAD.__set__)),
    "__getattribute__": lambda: setattr(fo.Parameter, "__getattribute__", _getattribute_doubling),
}


class _Duck:
    """A parameter that is not a ``Parameter``: read through getattr, unaffected by
    changes to the class."""

    def __init__(self, data):
        self.data, self.grad = data, None


@pytest.mark.parametrize("change", list(CLASS_CHANGES))
def test_a_parameter_class_changed_after_recording_is_read_through_getattr(change, restore_parameter):
    """After the change every gradient reads doubled: the planned step must use the
    doubled gradients, as the step checked in full does, and as an optimizer over
    duck parameters handed the doubled gradients does."""
    worlds = [world(fo.Adam, dict(lr=0.1), planned) for planned in (True, False)]
    ducks = [_Duck(p.data.copy()) for p in make_params(np.float64, shapes=SHAPES)]
    twin = fo.Adam(ducks, lr=0.1)
    for t in range(4):
        if t == 3:
            assert worlds[0][0]._plan.recorded
            CLASS_CHANGES[change]()
        step_both(worlds, t)
        for d, g in zip(ducks, grads_for(ducks, 500 + t)):
            d.grad = 2 * g if t == 3 else g
        twin.step()
    assert_same([worlds[0], (twin, ducks)])


def test_a_parameter_subclass_is_read_through_getattr():
    class Doubled(fo.Parameter):
        __slots__ = ()

        @property
        def grad(self):
            return _doubled_grad(self)

        @grad.setter
        def grad(self, value):
            _GRAD.__set__(self, value)

    def params(cls):
        return [cls(np.linspace(-1, 1, 6).reshape(2, 3) * (k + 1)) for k in range(3)]

    plain, doubled = params(fo.Parameter), params(Doubled)
    opts = [fo.Adam(plain, lr=0.1), fo.Adam(doubled, lr=0.1)]
    for t in range(4):
        for a, b in zip(plain, doubled):
            g = np.full(a.data.shape, 0.5 + t)
            a.grad, b.grad = 2 * g, g
        for opt in opts:
            opt.step()
    assert opts[1]._plan.recorded
    for a, b in zip(plain, doubled):
        assert np.array_equal(a.data, b.data)


def test_a_deleted_gradient_slot_raises_as_getattr_does():
    worlds = [world(fo.Adam, dict(lr=0.1), planned) for planned in (True, False)]
    for t in range(3):
        step_both(worlds, t)
    for opt, params in worlds:
        before, grad = snapshot(opt), params[1].grad
        object.__delattr__(params[1], "grad")
        with pytest.raises(AttributeError, match="grad"):
            opt.step()
        params[1].grad = grad  # for the snapshot, which reads every gradient
        assert_unchanged(opt, before)
