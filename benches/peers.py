"""The optimizers beyond torch.optim next to the implementations they follow.

    python benches/peers.py [--quick] [--out FILE]

Times one step of each ferroptim optimizer and of its canonical implementation (timm's
Lion, Lamb, Lars, Adan, Adopt; pytorch-optimizer's AdEMAMix; schedulefree's three;
prodigyopt's Prodigy) on the same float32 parameters, both on this machine's threads
(torch on CPU with as many threads as ferroptim), and prints a Markdown table: time per
element and the ratio. Needs torch and the four packages (timm imports torchvision);
the main benchmark (bench.py) needs none of them.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

import ferroptim as fo

# name: (implementation, kwargs given to both)
PEERS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "Lion": ("timm.optim.Lion", dict(weight_decay=0.1)),
    "LAMB": ("timm.optim.Lamb", dict()),
    "LARS": ("timm.optim.Lars", dict(lr=0.1, momentum=0.9, weight_decay=1e-4)),
    "Adan": ("timm.optim.Adan", dict(weight_decay=0.02)),
    "ADOPT": ("timm.optim.Adopt", dict()),
    "AdEMAMix": ("pytorch_optimizer.AdEMAMix", dict()),
    "ScheduleFreeAdamW": ("schedulefree.AdamWScheduleFree", dict()),
    "ScheduleFreeSGD": ("schedulefree.SGDScheduleFree", dict()),
    "ScheduleFreeRAdam": ("schedulefree.RAdamScheduleFree", dict()),
    "Prodigy": ("prodigyopt.Prodigy", dict()),
}
SHAPES = {"1 × 16.8M": (1, 16_777_216), "1000 × 4096": (1000, 4096), "2000 × 64": (2000, 64)}


def klass(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def median_time(step: Callable[[], Any], reps: int) -> float:
    step()  # the first step creates the state
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def one(name: str, count: int, size: int, reps: int) -> Tuple[float, float]:
    import torch

    impl, kw = PEERS[name]
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(size).astype(np.float32) for _ in range(count)]
    grads = [rng.standard_normal(size).astype(np.float32) for _ in range(count)]
    params = [fo.Parameter(d.copy()) for d in data]
    for p, g in zip(params, grads):
        p.grad = g
    mine = getattr(fo, name)(params, **kw)
    tparams = [torch.nn.Parameter(torch.from_numpy(d.copy())) for d in data]
    for p, g in zip(tparams, grads):
        p.grad = torch.from_numpy(g.copy())
    theirs = klass(impl)(tparams, **kw)
    for opt in (mine, theirs):
        if hasattr(opt, "train"):
            opt.train()
    elements = count * size
    return median_time(mine.step, reps) / elements * 1e9, median_time(theirs.step, reps) / elements * 1e9


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    torch.set_num_threads(fo.get_num_threads())
    lines: List[str] = [
        f"ferroptim and the implementations it follows; float32, {fo.get_num_threads()} threads each, "
        f"torch {torch.__version__} on CPU",
        "",
        "| shape | optimizer | follows | ferroptim ns/elem | implementation ns/elem | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for shape, (count, size) in SHAPES.items():
        reps = 5 if args.quick else (20 if count * size < 10_000_000 else 10)
        for name, (impl, _) in PEERS.items():
            ours, ref = one(name, count, size, reps)
            line = f"| {shape} | {name} | `{impl}` | {ours:.3f} | {ref:.3f} | {ref / ours:.1f}× |"
            print(line, flush=True)
            lines.append(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
