"""The ferroptim benchmark: optimizer steps against the memory-bandwidth bound.

    python benches/bench.py                     # the full table (about ten minutes)
    python benches/bench.py --quick             # fewer repetitions
    python benches/bench.py --only Adam,Muon    # some optimizers
    python benches/bench.py --out benches/results.md

An elementwise step is memory-bound: fp32 Adam reads and writes the parameter, reads
the gradient and reads and writes two state buffers, 7 arrays' worth, 28 bytes per
element. In the same run, timed in turn with the step and on the step's own arrays
(adding 0·g, so that nothing changes), the benchmark times ``ferroptim._core.stream``
— the cheapest loop moving a parameter, its gradient and the optimizer's buffers, on
the same thread pool: that is the optimizer's bound, and the table gives each step as
a ratio to it, next to a NumPy version of the same update (``numpy_optimizers.py``).
A step of several passes (Adafactor, LARS, LAMB, Prodigy) is probed pass by pass, each
pass moving what the step's pass moves (``access``: which arrays it reads, which it
also writes back), all in one call as the step makes them: a pass that reads more than it
writes back moves fewer bytes per nanosecond on many machines (reads wait for memory,
write-backs overlap them), so one pass of as many bytes would understate its bound;
the note gives the step's ratio to that too. It
also checks that steps after the first allocate nothing proportional to the
parameters (the process's peak resident memory does not grow while stepping).

Muon and L-BFGS are not bandwidth-bound and are reported with what bounds them: Muon
by matrix-product throughput (its Newton–Schulz FLOPs over the float32 matmul rate
NumPy's BLAS reaches on this machine), L-BFGS by its closure and the passes of its
two-loop recursion over the history.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import ferroptim as fo
from ferroptim import _core
from numpy_optimizers import STEPS

# name: (parameter count, shape of each)
SHAPES = {"1 × 16.8M": (1, (16_777_216,)), "1000 × 4096": (1000, (4096,)), "2000 × 64": (2000, (64,))}
# Muon takes matrices: the same element counts as 2-D parameters.
MUON_SHAPES = {"1 × 16.8M": (256, 65536), "1000 × 4096": (64, 64), "2000 × 64": (8, 8)}
# SparseAdam takes rows (an embedding's): the same element counts in rows of 64.
ROW = 64
LBFGS_HISTORY = 10


def _train(opt: Any) -> Any:
    opt.train()  # a schedule-free optimizer steps in train mode
    return opt


@dataclass
class Case:
    make: Callable[[List[Any]], fo.Optimizer]
    #: the state buffers the bandwidth probe moves with the parameter and gradient
    probe: Tuple[str, ...]
    note: str = ""
    #: the step's passes, each as the arrays (θ, g, then ``probe``) it leaves alone
    #: ('-'), reads ('r') or reads and writes back ('w'); by default one pass reading
    #: g and updating θ and every buffer
    passes: Tuple[str, ...] = ()

    def access(self) -> Tuple[str, ...]:
        return self.passes or ("wr" + "w" * len(self.probe),)

    def units(self) -> int:
        """Arrays of the parameter's size the step moves (read: 1, read and write: 2)."""
        return sum(a.count("r") + 2 * a.count("w") for a in self.access())


BANDWIDTH_CASES: Dict[str, Case] = {
    "Adam": Case(lambda ps: fo.Adam(ps, lr=1e-3), ("exp_avg", "exp_avg_sq")),
    "AdamW": Case(lambda ps: fo.AdamW(ps, lr=1e-3, weight_decay=1e-2), ("exp_avg", "exp_avg_sq")),
    "SGD-momentum": Case(lambda ps: fo.SGD(ps, lr=1e-3, momentum=0.9), ("momentum_buffer",)),
    "Adagrad": Case(lambda ps: fo.Adagrad(ps), ("sum",)),
    "Adadelta": Case(lambda ps: fo.Adadelta(ps), ("square_avg", "acc_delta")),
    "Adamax": Case(lambda ps: fo.Adamax(ps), ("exp_avg", "exp_inf")),
    "NAdam": Case(lambda ps: fo.NAdam(ps), ("exp_avg", "exp_avg_sq")),
    "RAdam": Case(lambda ps: fo.RAdam(ps), ("exp_avg", "exp_avg_sq")),
    "RMSprop": Case(lambda ps: fo.RMSprop(ps), ("square_avg",)),
    "Rprop": Case(lambda ps: fo.Rprop(ps), ("prev", "step_size")),
    "ASGD": Case(lambda ps: fo.ASGD(ps), ("ax",)),
    # two passes: RMS(θ) and the variance (θ, g read, v read and written), then the
    # update (θ read and written, g and v read)
    "Adafactor": Case(lambda ps: fo.Adafactor(ps), ("variance",), "2 passes", passes=("rrw", "wrr")),
    # every row listed once, in order; plus 8 bytes of index per row of 64
    "SparseAdam": Case(lambda ps: fo.SparseAdam(ps), ("exp_avg", "exp_avg_sq"), f"rows of {ROW}"),
    # beyond torch.optim (no NumPy version: its column is empty)
    "Lion": Case(lambda ps: fo.Lion(ps, weight_decay=0.1), ("exp_avg",)),
    # pass 1: ‖θ‖, ‖g‖ (θ, g read); pass 2: θ, b read and written, g read
    "LARS": Case(
        lambda ps: fo.LARS(ps, lr=0.1, momentum=0.9, weight_decay=1e-4), ("momentum_buffer",), "2 passes", ("rr-", "wrw")
    ),
    # ‖g‖ (g read: 1), ‖θ‖ and ‖u‖ (θ, g read, m, v read and written: 6), update (θ read and
    # written, m, v read: 4)
    "LAMB": Case(lambda ps: fo.LAMB(ps), ("exp_avg", "exp_avg_sq"), "3 passes", ("-r--", "rrww", "w-rr")),
    "Adan": Case(lambda ps: fo.Adan(ps, weight_decay=0.02), ("exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad")),
    "ADOPT": Case(lambda ps: fo.ADOPT(ps), ("exp_avg", "exp_avg_sq")),
    "AdEMAMix": Case(lambda ps: fo.AdEMAMix(ps), ("exp_avg", "exp_avg_sq", "exp_avg_slow")),
    "ScheduleFreeAdamW": Case(lambda ps: _train(fo.ScheduleFreeAdamW(ps)), ("z", "exp_avg_sq")),
    "ScheduleFreeSGD": Case(lambda ps: _train(fo.ScheduleFreeSGD(ps)), ("z",)),
    "ScheduleFreeRAdam": Case(lambda ps: _train(fo.ScheduleFreeRAdam(ps)), ("z", "exp_avg_sq")),
    # pass 1: θ, g, θ₀ read, m, v, s read and written; pass 2: θ read and written, m, v read
    "Prodigy": Case(lambda ps: fo.Prodigy(ps), ("exp_avg", "exp_avg_sq", "s", "p0"), "2 passes", ("rrwwwr", "w-rr--")),
}
ALL = list(BANDWIDTH_CASES) + ["Muon", "LBFGS"]


# ------------------------------------------------------------------ timing
def median_times(fns: List[Callable[[], Any]], reps: int) -> List[float]:
    """The median time of each of ``fns``, timed in turn (a, b, a, b, …) so that a
    slow phase of a shared machine slows them alike."""
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def median_time(fn: Callable[[], Any], reps: int) -> float:
    return median_times([fn], reps)[0]


def peak_growth_mib(fn: Callable[[], Any]) -> float:
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


def numpy_state(opt: fo.Optimizer, p: Any, shape: Tuple[int, ...], dtype) -> Dict[str, Any]:
    """A copy of a parameter's ferroptim state for the NumPy version, with scratch arrays."""
    s = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state[p].items()}
    s["tmp"], s["tmp2"] = np.empty(shape, dtype), np.empty(shape, dtype)
    return s


def row(dtype, shape_name: str, name: str, r: Dict[str, Any]) -> str:
    return (
        f"| {np.dtype(dtype).name} | {shape_name} | {name} | {r['bytes']} | {r['step']:.3f} | {r['bound']:.3f} | "
        f"{r['ratio']:.2f} | {r['numpy']:.2f} | {r['speedup']:.1f}× | {r['growth']:.1f} | {r['note']} |"
    )


def result(bytes_: str, elements: int, step_s: float, bound_s: float, numpy_s: float, growth: float, note: str):
    """One row's figures, per element."""
    ns = 1e9 / elements
    return {
        "bytes": bytes_,
        "step": step_s * ns,
        "bound": bound_s * ns,
        "ratio": step_s / bound_s,
        "numpy": numpy_s * ns,
        "speedup": numpy_s / step_s,
        "growth": growth,
        "note": note,
    }


def bench_bandwidth(dtype, shape_name: str, name: str, reps: int, trials: int) -> Dict[str, Any]:
    """One row: the step against its probe in each of ``trials`` independent set-ups
    (fresh arrays: where the kernel places their pages moves both by up to tens of
    percent from one allocation to the next), keeping the trial of median ratio."""
    count, shape = SHAPES[shape_name]
    case = BANDWIDTH_CASES[name]
    sparse = name == "SparseAdam"
    if sparse:
        shape = (shape[0] // ROW, ROW)
    elements = count * int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize

    def trial(seed: int) -> Tuple[float, float, Any]:
        rng = np.random.default_rng(seed)
        params = [fo.Parameter(rng.standard_normal(shape).astype(dtype)) for _ in range(count)]
        dense = [rng.standard_normal(shape).astype(dtype) for _ in params]
        for p, g in zip(params, dense):
            p.grad = fo.SparseGrad(np.arange(shape[0]), g) if sparse else g
        opt = case.make(params)
        opt.step()  # the first step creates the state
        data = [p.data for p in params]
        buffers = [[opt.state[p][k] for k in case.probe] for p in params]
        # The probe makes the step's passes over the step's own arrays (the same
        # pages), adding 0·(what it reads), which changes nothing.
        fns = [opt.step, lambda: _core.stream(data, dense, buffers, access=case.access(), scale=0.0)]
        if case.passes:  # and, for comparison, one pass moving as many bytes
            fns.append(lambda: _core.stream(data, dense, buffers, scale=0.0))
        times = median_times(fns, reps)
        return times[0], times[1], (opt, params, times[2:])

    runs = sorted((trial(seed) for seed in range(trials)), key=lambda r: r[0] / r[1])
    step_s, bound_s, (opt, params, one_pass) = runs[len(runs) // 2]
    growth = peak_growth_mib(lambda: [opt.step() for _ in range(3)])
    states = [numpy_state(opt, p, shape, dtype) for p in params]

    ref = STEPS.get(name)
    data, grads = [p.data for p in params], [p.grad for p in params]
    numpy_s = median_time(lambda: ref(data, grads, states, 10), max(3, reps // 3)) if ref else float("nan")
    nbytes = case.units() * itemsize + (8 / ROW if sparse else 0)
    note = f"{nbytes * elements / step_s / 1e9:.1f} GB/s" + (f"; {case.note}" if case.note else "")
    if one_pass:
        # the bound of a one-pass step of the same bytes (θ, g and the probed buffers
        # moved once, scaled to the step's bytes)
        scale = case.units() / (3 + 2 * len(case.probe))
        note += f" ({step_s / (one_pass[0] * scale):.2f}× one pass of its bytes)"
    if trials > 1:
        note += f"; median of {trials} set-ups: {', '.join(f'{s / p:.2f}' for s, p, _ in runs)}"
    return result(f"{nbytes:g}", elements, step_s, bound_s, numpy_s, growth, note)


def matmul_rate() -> float:
    """float32 FLOP/s of NumPy's BLAS on this machine (a 1024³ product, all threads)."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    a @ a
    return 2 * 1024**3 / median_time(lambda: a @ a, 7)


def bench_muon(dtype, shape_name: str, reps: int, rate: float) -> Dict[str, Any]:
    count = SHAPES[shape_name][0]
    shape = MUON_SHAPES[shape_name]
    rng = np.random.default_rng(0)
    params = [fo.Parameter(rng.standard_normal(shape).astype(dtype)) for _ in range(count)]
    for p in params:
        p.grad = rng.standard_normal(shape).astype(dtype)
    opt = fo.Muon(params)
    opt.step()
    reps = 3 if shape_name == "1 × 16.8M" else reps
    step_s = median_time(opt.step, reps)
    growth = peak_growth_mib(opt.step)
    a, b = min(shape), max(shape)
    flops = count * 5 * (4 * a * a * b + 2 * a**3)  # ns_steps × (X·Xᵀ, G·G, (bG + cG²)·X)
    bound_s = flops / rate
    states = [numpy_state(opt, p, shape, dtype) for p in params]
    data, grads = [p.data for p in params], [p.grad for p in params]
    numpy_s = median_time(lambda: STEPS["Muon"](data, grads, states, 10), reps)
    note = f"{a}×{b} matrices; {flops / step_s / 1e9:.0f} GFLOP/s (BLAS: {rate / 1e9:.0f})"
    return result("—", count * a * b, step_s, bound_s, numpy_s, growth, note)


def bench_lbfgs(dtype, shape_name: str, reps: int) -> Dict[str, Any]:
    """One iteration per step (max_iter=1) once the history is full, on a quadratic
    whose closure writes the gradients in place."""
    count, shape = SHAPES[shape_name]
    rng = np.random.default_rng(0)
    params = [fo.Parameter(rng.standard_normal(shape).astype(dtype)) for _ in range(count)]
    curvature = [rng.uniform(0.5, 2.0, shape).astype(dtype) for _ in params]
    for p in params:
        p.grad = np.empty(shape, dtype)

    def closure() -> float:
        loss = 0.0
        for p, a in zip(params, curvature):
            np.multiply(a, p.data, out=p.grad)
            loss += 0.5 * float(np.vdot(p.grad, p.data))
        return loss

    opt = fo.LBFGS(params, lr=0.01, max_iter=1, history_size=LBFGS_HISTORY)
    for _ in range(LBFGS_HISTORY + 2):
        opt.step(closure)
    step_s = median_time(lambda: opt.step(closure), reps)
    closure_s = median_time(closure, reps)
    growth = peak_growth_mib(lambda: opt.step(closure))
    elements = count * int(np.prod(shape))
    # the two-loop recursion reads s and y and updates q (or d) in two passes per pair
    # and loop; y, s, q, d, the step and the gradient copy add about 22 more arrays
    units = 10 * len(opt.state[params[0]]["old_dirs"]) + 22
    data = [p.data for p in params]
    grads = [p.grad for p in params]
    probe_s = median_time(lambda: _core.stream(data, grads, [[] for _ in params], scale=0.0), reps)
    bound_s = closure_s + probe_s * units / 3
    s0 = opt.state[params[0]]
    state = dict(
        old_dirs=[x.copy() for x in s0["old_dirs"]],
        old_stps=[x.copy() for x in s0["old_stps"]],
        ro=[float(r) for r in s0["ro"]],
        H_diag=float(s0["H_diag"]),
    )
    numpy_s = median_time(lambda: (closure(), STEPS["LBFGS"](data, grads, [state], 10, lr=0.0)), reps)
    note = f"history {LBFGS_HISTORY}; closure {closure_s * 1e9 / elements:.2f} ns/elem of the bound"
    return result(f"{units * np.dtype(dtype).itemsize}", elements, step_s, bound_s, numpy_s, growth, note)


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
    parser.add_argument("--only", help="comma-separated optimizer names (default: all)")
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    parser.add_argument("--threads", type=int, help="ferroptim threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        fo.set_num_threads(args.threads)
    names: List[str] = args.only.split(",") if args.only else ALL
    unknown = set(names) - set(ALL)
    if unknown:
        parser.error(f"unknown optimizers {sorted(unknown)}; choose from {', '.join(ALL)}")

    rate: Optional[float] = matmul_rate() if "Muon" in names else None
    header = (
        "| dtype | params | optimizer | bytes/elem | ferroptim ns/elem | bound ns/elem | "
        "ratio to bound | NumPy ns/elem | vs NumPy | peak growth MiB | notes |"
    )
    lines = [f"Machine: {machine()}", "", header, "|" + "---|" * 11]
    print("\n".join(lines), flush=True)
    for dtype in (np.float32, np.float64):
        for shape_name in SHAPES:
            big = shape_name == "1 × 16.8M"
            reps = 5 if args.quick else (15 if big else 40)
            trials = 3 if big and not args.quick else 1
            for name in names:
                if name == "Muon":
                    r = bench_muon(dtype, shape_name, reps, rate)
                elif name == "LBFGS":
                    r = bench_lbfgs(dtype, shape_name, reps)
                else:
                    r = bench_bandwidth(dtype, shape_name, name, reps, trials)
                lines.append(row(dtype, shape_name, name, r))
                print(lines[-1], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
