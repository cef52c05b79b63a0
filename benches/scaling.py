"""Many small parameters: Adam float32 on the same elements split into k parameters.

    python benches/scaling.py                  # 4M elements, k = 1 … 65536
    python benches/scaling.py --quick          # fewer repetitions
    python benches/scaling.py --out benches/scaling.md

The bytes a step moves do not depend on k (28 per element: θ and both moments read
and written, g read), so neither does its bandwidth bound: ``_core.stream`` moving
one contiguous parameter, gradient and two buffers of all the elements, timed in the
same run. What k adds is the fixed cost of each parameter: the general path (one
``fo.Parameter`` per array: its arrays looked up and compared with the last step's
verified plan every step) pays it per parameter; ``fo.FlatParameters`` (views into
one buffer, the optimizer's state in one buffer too) steps each group as one
tensor. Next to them, when torch is installed, torch's own Adam on the same split,
``fused=True`` and ``foreach=True``. A second table does the same for 2000 × 64
(the small-parameter case of ``bench.py``) against one parameter of 128,000.

Each row times its contenders in turn (a, b, c, a, b, c, …: a slow phase of a shared
machine slows them alike), each sample a burst of consecutive steps of one contender
(about 5 ms: its steady state, as in a training loop, not the first step after
another contender had the caches), and reports medians, in ns per element per step,
and the ratio to the bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import ferroptim as fo
from ferroptim import _core

sys.path.insert(0, os.path.dirname(__file__))
from bench import machine, median_times  # noqa: E402

ELEMENTS = 1 << 22  # 4,194,304
SPLITS = (1, 16, 256, 1024, 4096, 16384, 65536)

try:
    import torch
except ImportError:  # the torch columns stay empty
    torch = None


def ferroptim_general(k: int, n: int, rng: np.random.Generator) -> Callable[[], Any]:
    params = [fo.Parameter(rng.standard_normal(n).astype(np.float32)) for _ in range(k)]
    for p in params:
        p.grad = rng.standard_normal(n).astype(np.float32)
    opt = fo.Adam(params, lr=1e-3)
    opt.step()  # the first step creates the state
    return opt.step


def ferroptim_flat(k: int, n: int, rng: np.random.Generator) -> Callable[[], Any]:
    flat = fo.FlatParameters([(n,)] * k, dtype=np.float32, init=None)
    flat.data[:] = rng.standard_normal(k * n).astype(np.float32)
    flat.grad[:] = rng.standard_normal(k * n).astype(np.float32)
    opt = fo.Adam(flat.params, lr=1e-3)
    opt.step()
    return opt.step


def torch_adam(k: int, n: int, rng: np.random.Generator, how: str) -> Optional[Callable[[], Any]]:
    if torch is None:
        return None
    params = [torch.from_numpy(rng.standard_normal(n).astype(np.float32)).requires_grad_() for _ in range(k)]
    for p in params:
        p.grad = torch.from_numpy(rng.standard_normal(n).astype(np.float32))
    opt = torch.optim.Adam(params, lr=1e-3, **{how: True})
    opt.step()

    def step() -> None:
        with torch.no_grad():
            opt.step()

    return step


def bound(elements: int, rng: np.random.Generator) -> Callable[[], Any]:
    """The cheapest loop moving the bytes of the step: θ, g and two buffers of all the
    elements, in one array each (adding 0·g: nothing changes)."""
    data = [rng.standard_normal(elements).astype(np.float32)]
    grads = [rng.standard_normal(elements).astype(np.float32)]
    buffers = [[np.zeros(elements, np.float32), np.zeros(elements, np.float32)]]
    return lambda: _core.stream(data, grads, buffers, scale=0.0)


def measure(k: int, n: int, reps: int) -> Dict[str, float]:
    """ns per element of each contender over k parameters of n elements."""
    rng = np.random.default_rng(k)
    makers: Dict[str, Callable[[], Optional[Callable[[], Any]]]] = {
        "general": lambda: ferroptim_general(k, n, rng),
        "flat": lambda: ferroptim_flat(k, n, rng),
        "torch fused": lambda: torch_adam(k, n, rng, "fused"),
        "torch foreach": lambda: torch_adam(k, n, rng, "foreach"),
        "bound": lambda: bound(k * n, rng),
    }
    fns = {name: make() for name, make in makers.items()}
    live = {name: burst(fn) for name, fn in fns.items() if fn is not None}
    times = dict(zip(live, median_times([fn for fn, _ in live.values()], reps)))
    per = 1e9 / (k * n)
    return {name: times[name] / live[name][1] * per if name in times else float("nan") for name in fns}


def burst(fn: Callable[[], Any], seconds: float = 0.005) -> Tuple[Callable[[], Any], int]:
    """``fn`` run enough times in a row to take about ``seconds`` (at least once), and
    that count: a sample then times steps in their steady state, each after the last,
    not the first step after another contender has had the caches."""
    fn()
    t = time.perf_counter()
    fn()
    count = max(1, int(seconds / max(time.perf_counter() - t, 1e-9)))

    def run() -> None:
        for _ in range(count):
            fn()

    return run, count


def table(title: str, rows: List[str], results: List[Dict[str, float]]) -> List[str]:
    cols = ["general", "flat", "torch fused", "torch foreach"]
    head = "| params | " + " | ".join(f"{c} ns/elem (× bound)" for c in cols) + " | bound ns/elem | flat ÷ one param |"
    lines = [f"### {title}", "", head, "|" + "---|" * (len(cols) + 3)]
    base = results[0]["general"]  # one plain parameter of all the elements
    for label, r in zip(rows, results):
        cells = " | ".join(f"{r[c]:.3f} ({r[c] / r['bound']:.2f})" for c in cols)
        lines.append(f"| {label} | {cells} | {r['bound']:.3f} | {r['flat'] / base:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", help="also write the tables (markdown) to this file")
    parser.add_argument("--threads", type=int, help="ferroptim threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        fo.set_num_threads(args.threads)
    reps = 5 if args.quick else 15
    lines = [f"Machine: {machine()}; torch {torch.__version__ if torch else 'not installed'}", ""]
    print("\n".join(lines), flush=True)

    results = []
    for k in SPLITS:
        results.append(measure(k, ELEMENTS // k, reps))
        print(f"k={k}: " + ", ".join(f"{c} {v:.3f}" for c, v in results[-1].items()), flush=True)
    lines += table(f"Adam float32, {ELEMENTS:,} elements in k parameters", [f"{k} × {ELEMENTS // k:,}" for k in SPLITS],
                   results)

    small = [measure(1, 128_000, reps * 2), measure(2000, 64, reps * 2)]
    lines += [""] + table("Adam float32, 2000 × 64 against one parameter of 128,000", ["1 × 128,000", "2000 × 64"],
                          small)
    print("\n".join(lines), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
