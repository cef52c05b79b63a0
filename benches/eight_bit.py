"""bitsandbytes' 8-bit optimizers against their float32 twins, on one 16.8M float32 parameter.

    python benches/eight_bit.py                  # the table
    python benches/eight_bit.py --quick --out F  # fewer repetitions, also written to F

For each 8-bit optimizer, its step and its float32 twin's step are timed in turn on
the same kind of parameter (the twin's numbers are not the 8-bit ones: the point is the
cost of the state format), with the state's bytes per parameter element measured on
the arrays ``opt.state[p]`` holds, and the peak resident memory growth while stepping
(no allocation proportional to the parameter after the first step). When bitsandbytes
(and torchao) are installed, their CPU 8-bit optimizers are timed on the same size.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import warnings
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import machine, median_time, median_times, peak_growth_mib  # noqa: E402

import ferroptim as fo  # noqa: E402

N = 1 << 24
Make = Callable[[List[Any]], fo.Optimizer]

#: (8-bit optimizer, its float32 twin, the twin's name, bitsandbytes class, target ratio)
PAIRS: List[Tuple[str, Make, Make, str, float]] = [
    ("Adam8bit", lambda ps: fo.Adam8bit(ps), lambda ps: fo.Adam(ps), "Adam", 1.0),
    ("AdamW8bit", lambda ps: fo.AdamW8bit(ps), lambda ps: fo.AdamW(ps), "AdamW", 1.2),
    ("Lion8bit", lambda ps: fo.Lion8bit(ps), lambda ps: fo.Lion(ps), "Lion", 1.2),
    ("SGD8bit", lambda ps: fo.SGD8bit(ps, lr=0.01, momentum=0.9), lambda ps: fo.SGD(ps, lr=0.01, momentum=0.9),
     "SGD-momentum", 1.2),
    ("RMSprop8bit", lambda ps: fo.RMSprop8bit(ps), lambda ps: fo.RMSprop(ps), "RMSprop", 1.2),
    ("Adagrad8bit", lambda ps: fo.Adagrad8bit(ps), lambda ps: fo.Adagrad(ps), "Adagrad", 1.2),
    ("AdEMAMix8bit", lambda ps: fo.AdEMAMix8bit(ps), lambda ps: fo.AdEMAMix(ps), "AdEMAMix", 1.2),
]

BNB_ARGS: Dict[str, Dict[str, Any]] = {"SGD8bit": dict(lr=0.01, momentum=0.9)}


def setup(make: Make, seed: int) -> Tuple[fo.Optimizer, fo.Parameter]:
    rng = np.random.default_rng(seed)
    p = fo.Parameter(rng.standard_normal(N).astype(np.float32))
    p.grad = rng.standard_normal(N).astype(np.float32)
    opt = make([p])
    opt.step()  # the first step creates the state
    return opt, p


def state_bytes(opt: fo.Optimizer, p: Any) -> float:
    """Bytes of state per parameter element: every distinct array in ``opt.state[p]``."""
    arrays = {id(v): v.nbytes for v in opt.state[p].values() if isinstance(v, np.ndarray)}
    return sum(arrays.values()) / N


def peer_ns(name: str, reps: int) -> Tuple[float, float]:
    """bitsandbytes' and torchao's step on the same size, ns per element (NaN if absent)."""
    if importlib.util.find_spec("torch") is None:
        return float("nan"), float("nan")
    import torch

    out = []
    for module, cls in (("bitsandbytes.optim", name), ("torchao.optim", name if name == "AdamW8bit" else "")):
        if not cls or importlib.util.find_spec(module.split(".")[0]) is None:
            out.append(float("nan"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(module)
                p = torch.nn.Parameter(torch.randn(N))
                p.grad = torch.randn(N)
                opt = getattr(mod, cls)([p], **BNB_ARGS.get(name, {}))
                opt.step()
                out.append(median_time(opt.step, max(2, reps // 3)) * 1e9 / N)
        except Exception as e:  # a peer that does not run on this machine's CPU
            print(f"{module}.{cls}: {type(e).__name__}: {e}", file=sys.stderr)
            out.append(float("nan"))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    parser.add_argument("--no-peers", action="store_true", help="skip bitsandbytes and torchao")
    args = parser.parse_args()
    reps = 5 if args.quick else 15
    header = ("| optimizer | ns/elem | float32 twin | twin ns/elem | ratio | target | state bytes/elem | "
              "twin state bytes/elem | peak growth MiB | bitsandbytes ns/elem | torchao ns/elem |")
    lines = [f"Machine: {machine()}", "", "1 × 16.8M float32 parameter", "", header, "|" + "---|" * 11]
    print("\n".join(lines), flush=True)
    for name, make8, make32, twin, target in PAIRS:
        opt8, p8 = setup(make8, 1)
        opt32, p32 = setup(make32, 2)
        t8, t32 = median_times([opt8.step, opt32.step], reps)
        growth = peak_growth_mib(lambda: [opt8.step() for _ in range(3)])
        b8, b32 = state_bytes(opt8, p8), state_bytes(opt32, p32)
        del opt32, p32
        bnb, torchao = (float("nan"), float("nan")) if args.no_peers else peer_ns(name, reps)
        ns8, ns32 = t8 * 1e9 / N, t32 * 1e9 / N
        lines.append(f"| {name} | {ns8:.3f} | {twin} | {ns32:.3f} | {t8 / t32:.2f} | ≤ {target:.1f} | {b8:.3f} | "
                     f"{b32:.3f} | {growth:.1f} | {bnb:.2f} | {torchao:.2f} |")
        print(lines[-1], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
