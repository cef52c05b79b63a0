"""ferroptim.distributed on 2 ranks (run it under mpiexec; it needs mpi4py):

    mpiexec -n 2 python benches/distributed.py              # the tables
    mpiexec -n 2 python benches/distributed.py --out F      # also written to F (rank 0)

1. ``allreduce_gradients`` over 1000 × 4096 float32 gradients against one raw mpi4py
   ``Allreduce`` of a single buffer of the same total size (what the packing into
   buckets, the averaging and the copies back cost on top of the communication),
   alternated, medians of the repetitions.
2. A ZeRO step (``ZeroRedundancyOptimizer(params, fo.Adam)``: the rank's share
   stepped, then every parameter sent from its owner) on 2 ranks against one process
   stepping ``fo.Adam`` on all of it (rank 0 alone, while the other waits), and the
   optimizer state bytes each rank holds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, List

import numpy as np

import ferroptim as fo
from ferroptim.distributed import MPI, ZeroRedundancyOptimizer, allreduce_gradients

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import machine  # noqa: E402

COMM = MPI.COMM_WORLD


def timed(f: Callable[[], None], reps: int) -> List[float]:
    """Seconds of each call of ``f``, the ranks starting each call together."""
    out = []
    for _ in range(reps):
        COMM.Barrier()
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    # a call lasts as long as its slowest rank
    return [max(ts) for ts in zip(*COMM.allgather(out))]


def state_bytes(opt: fo.Optimizer) -> int:
    return sum(v.nbytes for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--out")
    args = ap.parse_args()
    rng = np.random.default_rng(COMM.rank)
    lines = [machine() + f"; {COMM.size} ranks ({MPI.Get_library_version().splitlines()[0].strip()})", ""]

    params = [fo.Parameter(rng.standard_normal(4096).astype(np.float32)) for _ in range(1000)]
    for p in params:
        p.grad = rng.standard_normal(4096).astype(np.float32)
    flat = np.concatenate([p.grad.ravel() for p in params])
    ours, raw = [], []
    for _ in range(args.reps):
        ours += timed(lambda: allreduce_gradients(params), 1)
        raw += timed(lambda: COMM.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM), 1)
    flat = fo.FlatParameters([(4096,)] * 1000)
    flat.grad[...] = rng.standard_normal(flat.grad.size)
    flat_times = []
    for _ in range(args.reps):
        flat_times += timed(lambda: allreduce_gradients(flat.params), 1)
    a, r, f = float(np.median(ours)), float(np.median(raw)), float(np.median(flat_times))
    lines += [
        "allreduce_gradients, 1000 × 4096 float32 (16.4 MB), ms per call (median): separate arrays (packed into",
        "buckets and back) and a FlatParameters' gradients (one buffer, reduced where it lies)",
        "",
        "| allreduce_gradients | ratio | FlatParameters | ratio | raw Allreduce of one buffer |",
        "|---|---|---|---|---|",
        f"| {a * 1e3:.2f} | {a / r:.2f} | {f * 1e3:.2f} | {f / r:.2f} | {r * 1e3:.2f} |",
        "",
    ]

    n = 1 << 22
    shapes = [n // 4] * 2 + [n // 8] * 4  # 4M float32 elements in 6 parameters
    zparams = [fo.Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    single = [fo.Parameter(p.data.copy()) for p in zparams]
    for p, q in zip(zparams, single):
        p.grad = q.grad = np.ones_like(p.data)
    zero = ZeroRedundancyOptimizer(zparams, fo.Adam, lr=1e-3)
    one = fo.Adam(single, lr=1e-3)
    z = timed(zero.step, args.reps)
    o = timed(lambda: one.step() if COMM.rank == 0 else None, args.reps)
    per_rank = COMM.allgather(state_bytes(zero.optim))
    total = state_bytes(one)
    lines += [
        f"ZeRO Adam step, {n / 1e6:.1f}M float32 elements in {len(shapes)} parameters, ms per step (median)",
        "",
        "| ZeRO on the ranks | one process | state bytes per rank | one process's state bytes |",
        "|---|---|---|---|",
        f"| {np.median(z) * 1e3:.2f} | {np.median(o) * 1e3:.2f} | {', '.join(map(str, per_rank))} | {total} |",
    ]
    if COMM.rank == 0:
        text = "\n".join(lines) + "\n"
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()
