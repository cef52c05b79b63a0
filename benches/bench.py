"""The ferroptim benchmark: optimizer steps against the memory-bandwidth bound.

    python benches/bench.py                 # the full table (about two minutes)
    python benches/bench.py --quick         # fewer repetitions
    python benches/bench.py --out benches/results.md

An elementwise step is memory-bound: fp32 Adam reads and writes the parameter, reads
the gradient and reads and writes two state buffers, 28 bytes per element. In the same
run and on the same arrays, the benchmark times ``ferroptim._core.stream`` — the
cheapest loop moving those bytes, on the same thread pool — and reports each optimizer
as a ratio to it, next to a hand-written NumPy version of the same update. It also
checks that steps after the first allocate nothing proportional to the parameters
(the process's peak resident memory does not grow while stepping).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

import ferroptim as fo
from ferroptim import _core

SHAPES = {"1 × 16.8M": (1, (16_777_216,)), "1000 × 4096": (1000, (4096,)), "2000 × 64": (2000, (64,))}
# name: (class, kwargs, state buffers it keeps)
OPTIMIZERS = {
    "Adam": (fo.Adam, dict(lr=1e-3), ("exp_avg", "exp_avg_sq")),
    "AdamW": (fo.AdamW, dict(lr=1e-3, weight_decay=1e-2), ("exp_avg", "exp_avg_sq")),
    "SGD-momentum": (fo.SGD, dict(lr=1e-3, momentum=0.9), ("momentum_buffer",)),
}


# ------------------------------------------------------------ NumPy versions
def numpy_adam(decoupled: bool) -> Callable:
    def step(ps, gs, states, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=1e-2 if decoupled else 0.0):
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        for p, g, (m, v, tmp) in zip(ps, gs, states):
            if decoupled:
                p *= 1 - lr * wd
            m *= b1
            np.multiply(g, 1 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= bc2**0.5
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= -lr / bc1
            p += tmp

    return step


def numpy_sgd_momentum(ps, gs, states, t, lr=1e-3, momentum=0.9):
    for p, g, (buf, tmp) in zip(ps, gs, states):
        buf *= momentum
        buf += g
        np.multiply(buf, lr, out=tmp)
        p -= tmp


NUMPY = {"Adam": numpy_adam(False), "AdamW": numpy_adam(True), "SGD-momentum": numpy_sgd_momentum}


# ------------------------------------------------------------------ timing
def median_time(fn: Callable[[], None], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_growth_mib(fn: Callable[[], None]) -> float:
    """How far the peak resident memory rises above the current one while ``fn`` runs
    (Linux: resets the peak through /proc/self/clear_refs); NaN elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))

    before = status("VmRSS:")
    fn()
    return (status("VmHWM:") - before) / 1024


def bench_case(dtype, shape_name: str, opt_name: str, reps: int) -> Dict[str, float]:
    count, shape = SHAPES[shape_name]
    cls, kwargs, buffer_names = OPTIMIZERS[opt_name]
    rng = np.random.default_rng(0)
    params = [fo.Parameter(rng.standard_normal(shape).astype(dtype)) for _ in range(count)]
    for p in params:
        p.grad = rng.standard_normal(shape).astype(dtype)
    opt = cls(params, **kwargs)
    opt.step()  # the first step creates the state
    elements = count * int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    nbytes = (3 + 2 * len(buffer_names)) * itemsize  # r/w param, r grad, r/w each buffer

    step_s = median_time(opt.step, reps)
    growth = peak_growth_mib(lambda: [opt.step() for _ in range(3)])
    data = [p.data for p in params]
    grads = [p.grad for p in params]
    buffers = [[opt.state[p][k] for k in buffer_names] for p in params]
    # NumPy's copy of the state, taken before the probe adds to the buffers.
    states = [[b.copy() for b in bs] + [np.empty(shape, dtype)] for bs in buffers]
    bound_s = median_time(lambda: _core.stream(data, grads, buffers), reps)

    ref = NUMPY[opt_name]
    numpy_s = median_time(lambda: ref(data, grads, states, 10), max(3, reps // 3))
    ns = 1e9 / elements
    return {
        "bytes": nbytes,
        "step": step_s * ns,
        "bound": bound_s * ns,
        "ratio": step_s / bound_s,
        "numpy": numpy_s * ns,
        "speedup": numpy_s / step_s,
        "gbs": nbytes * elements / step_s / 1e9,
        "growth": growth,
    }


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        cpu = platform.processor() or platform.machine()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {fo.get_num_threads()} ferroptim threads; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, ferroptim {fo.__version__}; "
        f"{datetime.date.today().isoformat()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    parser.add_argument("--threads", type=int, help="ferroptim threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        fo.set_num_threads(args.threads)

    header = (
        "| dtype | params | optimizer | bytes/elem | ferroptim ns/elem | bound ns/elem | "
        "ratio to bound | GB/s | NumPy ns/elem | vs NumPy | peak growth MiB |"
    )
    lines = [f"Machine: {machine()}", "", header, "|" + "---|" * 11]
    print("\n".join(lines), flush=True)
    for dtype in (np.float32, np.float64):
        for shape_name in SHAPES:
            reps = 5 if args.quick else (15 if shape_name == "1 × 16.8M" else 40)
            for opt_name in OPTIMIZERS:
                r = bench_case(dtype, shape_name, opt_name, reps)
                line = (
                    f"| {np.dtype(dtype).name} | {shape_name} | {opt_name} | {r['bytes']} | {r['step']:.3f} | "
                    f"{r['bound']:.3f} | {r['ratio']:.2f} | {r['gbs']:.1f} | {r['numpy']:.2f} | "
                    f"{r['speedup']:.1f}× | {r['growth']:.1f} |"
                )
                lines.append(line)
                print(line, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
