"""What tests/test_distributed.py runs under ``mpiexec -n N``: ``python cases.py NAME``
runs case NAME on every rank. A rank that fails prints its traceback and aborts the
whole job (MPI_Abort), so no rank is left waiting."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Callable, Dict, List

import numpy as np

import ferroptim as fo
from ferroptim.distributed import (
    MPI,
    DistributedOptimizer,
    ZeroRedundancyOptimizer,
    allreduce_gradients,
    broadcast_parameters,
)

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.rank, COMM.size
CASES: Dict[str, Callable[[], None]] = {}


def case(f: Callable[[], None]) -> Callable[[], None]:
    CASES[f.__name__] = f
    return f


SHAPES = [(64, 33), (4096 + 7,), (5,), (3, 3), (1,), (300,), (17, 2)]


def model(dtype: Any, seed: int = 0, shapes: List[tuple] = SHAPES) -> List[fo.Parameter]:
    rng = np.random.default_rng(seed)
    return [fo.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]


def grads_of(rank: int, params: List[fo.Parameter], step: int) -> List[np.ndarray]:
    """Integer-valued gradients (their sums over ranks are exact in any order)."""
    rng = np.random.default_rng(1000 * step + rank)
    return [rng.integers(-8, 9, p.data.shape).astype(p.data.dtype) for p in params]


def averaged(params: List[fo.Parameter], step: int) -> List[np.ndarray]:
    total = [np.zeros_like(p.data) for p in params]
    for r in range(SIZE):
        for t, g in zip(total, grads_of(r, params, step)):
            t += g
    return [t / SIZE for t in total]


def same_everywhere(arrays: List[np.ndarray]) -> None:
    everyone = COMM.allgather(arrays)
    for r, theirs in enumerate(everyone):
        for a, b in zip(arrays, theirs):
            assert a.tobytes() == b.tobytes(), f"rank {r} differs"


def assert_same(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), where
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} vs {b!r}"


def raises_everywhere(kind: type, fragment: str, f: Callable[[], Any]) -> str:
    try:
        f()
    except kind as e:
        message = str(e)
        assert fragment in message, message
    else:
        raise AssertionError(f"no {kind.__name__} on rank {RANK}")
    messages = COMM.allgather(message)
    assert all(m == messages[0] for m in messages), messages
    return message


@case
def broadcast() -> None:
    params = model(np.float32, seed=RANK) + model(np.float64, seed=10 + RANK)
    root = SIZE - 1
    broadcast_parameters(params, root=root, bucket_cap_mb=0.01)
    want = model(np.float32, seed=root) + model(np.float64, seed=10 + root)
    for p, w in zip(params, want):
        assert p.data.tobytes() == w.data.tobytes()
    arrays = [np.full(3, RANK, np.float64), np.full((2, 2), RANK, np.float32)]
    broadcast_parameters(arrays)
    assert (arrays[0] == 0).all() and (arrays[1] == 0).all()


@case
def allreduce() -> None:
    params = model(np.float32) + model(np.float64)
    for p, g in zip(params, grads_of(RANK, params, 0)):
        p.grad = g
    held = params[0].grad
    params[2].grad = None if RANK == 0 else params[2].grad  # None on one rank only: zeros there
    params[3].grad = None  # None everywhere: stays None
    want = averaged(params, 0)
    want[2] = sum((grads_of(r, params, 0)[2] for r in range(1, SIZE)), np.zeros_like(want[2])) / SIZE
    allreduce_gradients(params, bucket_cap_mb=0.005)
    assert params[0].grad is held  # in place
    assert params[3].grad is None
    if SIZE == 1:
        assert params[2].grad is None  # None on the only rank
    for i, (p, w) in enumerate(zip(params, want)):
        if i != 3 and not (i == 2 and SIZE == 1):
            assert p.grad.tobytes() == w.tobytes(), i
    # a FlatParameters' gradients, views of one buffer, are reduced where they lie
    flat = fo.FlatParameters([p.data.shape for p in params[:7]])
    for p, g in zip(flat.params, grads_of(RANK, params[:7], 0)):
        p.grad[...] = g
    allreduce_gradients(flat.params, bucket_cap_mb=0.01)
    for i, p in enumerate(flat.params):
        assert p.grad.base is flat.grad and p.grad.tobytes() == averaged(params[:7], 0)[i].tobytes(), i
    for p, g in zip(params, grads_of(RANK, params, 1)):
        p.grad = g
    allreduce_gradients(params, average=False)
    total = [w * SIZE for w in averaged(params, 1)]
    for p, w in zip(params, total):
        assert p.grad.tobytes() == w.tobytes()


@case
def distributed_optimizer() -> None:
    for dtype in (np.float32, np.float64):
        params, single = model(dtype), model(dtype)
        opt = DistributedOptimizer(fo.AdamW(params, lr=1e-2, weight_decay=0.1))
        ref = fo.AdamW(single, lr=1e-2, weight_decay=0.1)
        sched = fo.lr_scheduler.StepLR(opt.optimizer, 1, gamma=0.5)
        ref_sched = fo.lr_scheduler.StepLR(ref, 1, gamma=0.5)
        for step in range(3):
            opt.step(grads=grads_of(RANK, params, step))
            ref.step(grads=averaged(single, step))
            sched.step()
            ref_sched.step()
        for p, q in zip(params, single):
            assert p.data.tobytes() == q.data.tobytes()
        assert_same(opt.state_dict(), ref.state_dict())


@case
def distributed_lbfgs() -> None:
    # rank r's loss: ½‖x − c_r‖²; the average's minimum is the mean of the c_r
    centres = [np.arange(6, dtype=np.float64) * (r + 1) for r in range(SIZE)]
    x = fo.Parameter(np.zeros(6))
    opt = DistributedOptimizer(fo.LBFGS([x], lr=1, max_iter=20, line_search_fn="strong_wolfe"))

    def closure() -> float:
        d = x.data - centres[RANK]
        x.grad = d.copy()
        return 0.5 * float(d @ d)

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(x.data, np.mean(centres, axis=0), rtol=1e-9, atol=1e-12)
    same_everywhere([x.data])


ZERO_CASES = [
    (fo.Adam, {}),
    (fo.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (fo.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (fo.Adagrad, {}),
    (fo.Adadelta, {}),
    (fo.Adamax, {}),
    (fo.ASGD, dict(t0=1)),
    (fo.NAdam, dict(decoupled_weight_decay=True, weight_decay=0.1)),
    (fo.RAdam, {}),
    (fo.RMSprop, dict(momentum=0.9, centered=True)),
    (fo.Rprop, {}),
    (fo.Lion, dict(weight_decay=0.1)),
    (fo.LAMB, dict(max_grad_norm=None)),
    (fo.LARS, dict(lr=0.1, momentum=0.9)),
    (fo.Adan, {}),
    (fo.ADOPT, {}),
    (fo.AdEMAMix, {}),
    (fo.Adafactor, {}),
    (fo.ScheduleFreeAdamW, {}),
    (fo.ScheduleFreeSGD, {}),
    (fo.ScheduleFreeRAdam, {}),
    (fo.Adam8bit, dict(min_8bit_size=256)),
    (fo.AdamW8bit, dict(min_8bit_size=256)),
    (fo.Lion8bit, dict(min_8bit_size=256)),
    (fo.SGD8bit, dict(lr=0.01, momentum=0.9, min_8bit_size=256)),
    (fo.RMSprop8bit, dict(min_8bit_size=256)),
    (fo.Adagrad8bit, dict(min_8bit_size=256)),
    (fo.AdEMAMix8bit, dict(min_8bit_size=256)),
    (fo.Muon, {}),
]


def zero_against_single(cls: type, kwargs: Dict[str, Any], dtype: Any, shapes: List[tuple] = SHAPES) -> None:
    params, single = model(dtype, shapes=shapes), model(dtype, shapes=shapes)
    groups = [{"params": params[:4]}, {"params": params[4:], "lr": 3e-3}]
    zero = ZeroRedundancyOptimizer(groups, cls, **kwargs)
    ref = cls([{"params": single[:4]}, {"params": single[4:], "lr": 3e-3}], **kwargs)
    if hasattr(ref, "train"):  # schedule-free: train mode around the steps, eval mode after
        zero.train()
        ref.train()
    for step in range(3):
        zero.step(grads=averaged(params, step))
        ref.step(grads=averaged(single, step))
    if hasattr(ref, "eval"):
        zero.eval()
        ref.eval()
    for i, (p, q) in enumerate(zip(params, single)):
        assert p.data.tobytes() == q.data.tobytes(), f"{cls.__name__} {np.dtype(dtype).name} parameter {i}"
    zero.consolidate_state_dict(to=0)
    if RANK == 0:
        assert_same(zero.state_dict(), ref.state_dict(), cls.__name__)
    else:
        raises_everywhere_local(RuntimeError, "consolidate_state_dict", zero.state_dict)


def raises_everywhere_local(kind: type, fragment: str, f: Callable[[], Any]) -> None:
    try:
        f()
    except kind as e:
        assert fragment in str(e), str(e)
    else:
        raise AssertionError("no error")


@case
def zero_is_one_process() -> None:
    for cls, kwargs in ZERO_CASES:
        for dtype in (np.float32, np.float64):
            shapes = [(64, 33), (3, 3), (17, 2), (8, 8), (5, 4), (2, 7)] if cls is fo.Muon else SHAPES
            zero_against_single(cls, kwargs, dtype, shapes)
    # SparseAdam, with sparse gradients (rows 1 and 3 of each parameter)
    sparse_shapes = [(64, 33), (4103,), (5,), (17, 2)]
    params, single = model(np.float32, shapes=sparse_shapes), model(np.float32, shapes=sparse_shapes)
    zero, ref = ZeroRedundancyOptimizer(params, fo.SparseAdam), fo.SparseAdam(single)
    for step in range(3):
        sparse = [fo.SparseGrad([1, 3], g[[1, 3]]) for g in averaged(params, step)]
        zero.step(grads=sparse)
        ref.step(grads=sparse)
    for p, q in zip(params, single):
        assert p.data.tobytes() == q.data.tobytes(), "SparseAdam"
    # fewer parameters than ranks: some ranks own nothing
    zero_against_single(fo.Adam, {}, np.float32, shapes=[(10,), (3,)])


@case
def zero_partition_and_memory() -> None:
    shapes = [(1000,), (10,), (500,), (499,), (2,), (3, 100)]
    params = model(np.float32, shapes=shapes)
    zero = ZeroRedundancyOptimizer(params, fo.Adam, lr=1e-3)
    # torch's rule: largest first, each to the rank with the fewest elements so far
    sizes, owner = [0] * SIZE, {}
    for k in sorted(range(len(shapes)), key=lambda k: -int(np.prod(shapes[k]))):
        r = sizes.index(min(sizes))
        owner[k] = r
        sizes[r] += int(np.prod(shapes[k]))
    mine = [id(p) for g in zero.optim.param_groups for p in g["params"]]
    assert sorted(mine) == sorted(id(params[k]) for k in owner if owner[k] == RANK)
    zero.step(grads=averaged(params, 0))
    state = sum(v.nbytes for s in zero.optim.state.values() for v in s.values() if isinstance(v, np.ndarray))
    assert state == sum(2 * 4 * int(np.prod(shapes[k])) + 4 for k in owner if owner[k] == RANK) or state == sum(
        2 * 4 * int(np.prod(shapes[k])) + 8 for k in owner if owner[k] == RANK
    ), state
    totals = COMM.allgather(state)
    if RANK == 0:
        print(f"ZeRO state bytes per rank: {totals} (one process: {sum(totals)})")


@case
def zero_load_groups_scheduler_hooks() -> None:
    params, single = model(np.float32), model(np.float32)
    ref = fo.AdamW(single, lr=1e-2)
    for step in range(2):
        ref.step(grads=averaged(single, step))
    for p, q in zip(params, single):
        p.data[...] = q.data
    zero = ZeroRedundancyOptimizer(params, fo.AdamW, lr=1e-2)
    zero.load_state_dict(ref.state_dict())
    calls = []
    zero.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    sched = fo.lr_scheduler.ExponentialLR(zero, 0.5)
    ref_sched = fo.lr_scheduler.ExponentialLR(ref, 0.5)
    extra, extra_ref = model(np.float32, seed=5, shapes=[(20,), (7,)]), model(np.float32, seed=5, shapes=[(20,), (7,)])
    zero.add_param_group({"params": extra, "lr": 1e-3})
    ref.add_param_group({"params": extra_ref, "lr": 1e-3})
    for step in range(2, 5):
        zero.step(grads=averaged(params + extra, step))
        ref.step(grads=averaged(single + extra_ref, step))
        sched.step()
        ref_sched.step()
    assert calls == ["pre"] * 3
    for p, q in zip(params + extra, single + extra_ref):
        assert p.data.tobytes() == q.data.tobytes()
    zero.consolidate_state_dict(to=SIZE - 1)
    if RANK == SIZE - 1:
        assert_same(zero.state_dict(), ref.state_dict())


@case
def zero_sharded_checkpoints() -> None:
    import tempfile

    directory = COMM.bcast(tempfile.mkdtemp() if RANK == 0 else None, root=0)
    params, single = model(np.float32), model(np.float32)
    zero = ZeroRedundancyOptimizer(params, fo.AdamW, lr=1e-2)
    ref = fo.AdamW(single, lr=1e-2)
    for step in range(2):
        zero.step(grads=averaged(params, step))
        ref.step(grads=averaged(single, step))
    zero.save_sharded(directory)
    zero.step(grads=averaged(params, 2))
    zero.save_sharded(directory)  # replaces the first
    ref.step(grads=averaged(single, 2))
    if RANK == 0:
        assert sorted(os.listdir(directory)) == ["LATEST", "ckpt-1"], os.listdir(directory)
    # load on every smaller number of ranks too (ranks split off into their own comm)
    for size in range(1, SIZE + 1):
        sub = COMM.Split(0 if RANK < size else MPI.UNDEFINED, RANK)
        if sub != MPI.COMM_NULL:
            fresh = model(np.float32)
            for p, q in zip(fresh, single):
                p.data[...] = q.data
            loaded = ZeroRedundancyOptimizer(fresh, fo.AdamW, comm=sub, lr=0.5)
            loaded.load_sharded(directory)
            loaded.consolidate_state_dict(to=0)
            if sub.rank == 0:
                assert_same(loaded.state_dict(), ref.state_dict(), f"loaded on {size} ranks")
            sub.Free()
        COMM.Barrier()
    wrong = ZeroRedundancyOptimizer(model(np.float32, shapes=SHAPES[:3]), fo.AdamW)
    raises_everywhere(ValueError, "are not this optimizer's", lambda: wrong.load_sharded(directory))
    other = ZeroRedundancyOptimizer(model(np.float32), fo.Adam)
    raises_everywhere(ValueError, "holds AdamW state", lambda: other.load_sharded(directory))
    COMM.Barrier()
    if RANK == 0:
        import shutil

        shutil.rmtree(directory)


@case
def bad_input_is_refused_everywhere() -> None:
    shapes = list(SHAPES)
    if RANK == SIZE - 1 and SIZE > 1:
        shapes[1] = (4096,)
    params = model(np.float32, shapes=shapes)
    if SIZE > 1:
        m = raises_everywhere(ValueError, "the ranks disagree on the parameters", lambda: broadcast_parameters(params))
        assert "(4096,)" in m and "(4103,)" in m, m
        raises_everywhere(
            ValueError, "disagree", lambda: ZeroRedundancyOptimizer(params, fo.Adam, lr=1e-3 if RANK else 2e-3)
        )
    params = model(np.float32)
    raises_everywhere(TypeError, "L-BFGS keeps one history", lambda: ZeroRedundancyOptimizer(params, fo.LBFGS))
    raises_everywhere(TypeError, "max_grad_norm", lambda: ZeroRedundancyOptimizer(params, fo.LAMB))
    raises_everywhere(TypeError, "Prodigy", lambda: ZeroRedundancyOptimizer(params, fo.Prodigy))
    raises_everywhere(ValueError, "Invalid learning rate", lambda: ZeroRedundancyOptimizer(params, fo.Adam, lr=-1.0))
    # a bad parameter on one rank only: every rank raises that rank's message
    odd = params[:2] + [np.zeros(3, np.int32) if RANK == 0 else np.zeros(3, np.float32)]
    raises_everywhere(TypeError, "(on rank 0)" if SIZE > 1 else "(on this rank)", lambda: ZeroRedundancyOptimizer(odd, fo.Adam))
    # a gradient of the wrong shape on one rank
    for p, g in zip(params, grads_of(RANK, params, 0)):
        p.grad = g
    if RANK == 0:
        object.__setattr__(params[1], "grad", np.zeros(3, np.float32))
    raises_everywhere(ValueError, "the gradient of parameter 1", lambda: allreduce_gradients(params))
    # a state dict that one rank cannot load: no rank changes
    params = model(np.float32)
    zero = ZeroRedundancyOptimizer(params, fo.Adam, lr=1e-3)
    zero.step(grads=averaged(params, 0))
    ref = fo.Adam(model(np.float32), lr=1e-3)
    ref.step(grads=averaged(params, 0))
    sd = ref.state_dict()
    owner = {id(p): r for r, gs in enumerate(zero._partition_parameters()) for g in gs for p in g["params"]}
    victim = next(k for k, p in enumerate(params) if owner[id(p)] == SIZE - 1)
    if RANK == SIZE - 1:
        sd["state"][victim]["exp_avg"] = np.zeros(1, np.float32)
    before = {id(p): {k: np.array(v, copy=True) for k, v in s.items()} for p, s in zero.optim.state.items()}
    raises_everywhere(ValueError, "", lambda: zero.load_state_dict(sd))
    if SIZE > 1:
        other = ref.state_dict()
        other["param_groups"] = [dict(g, lr=0.5 if RANK else 1e-3) for g in other["param_groups"]]
        raises_everywhere(ValueError, "disagree on the state dict's param groups", lambda: zero.load_state_dict(other))
    after = {id(p): s for p, s in zero.optim.state.items()}
    assert_same(before, after)


def main() -> None:
    name = sys.argv[1]
    try:
        CASES[name]()
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        COMM.Abort(1)
    COMM.Barrier()
    if RANK == 0:
        print(f"{name}: ok on {SIZE} ranks")


if __name__ == "__main__":
    main()
