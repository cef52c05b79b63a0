"""Records torch's scheduler state dicts for the Rust crate's tests.

    python scripts/record_scheduler_state_dicts.py rust/ferroptim/tests/data/scheduler_state_dicts.fo

For each case: an SGD optimizer with two param groups (lr 0.1 and 0.01, momentum 0.9,
as in tests/reference/torch-2.15/schedulers.json), the scheduler built on it, `steps`
steps (optimizer, then scheduler; ReduceLROnPlateau with `metrics`), then torch's
`state_dict()` and the groups' LRs of `more` further steps. Saved with `fo.save`
(torch's values as Python numbers), so `ferroptim::state_dict::load` reads it; the
Rust tests build the same scheduler, compare their state dict with torch's, and
resume from torch's. Needs torch (any CPU build).
"""

import math
import sys
import warnings

import torch

import ferroptim as fo

L = torch.optim.lr_scheduler
CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5], gamma=0.5)),
    ("ConstantLR", dict(factor=0.5, total_iters=4)),
    ("LinearLR", dict(start_factor=0.25, end_factor=1.0, total_iters=6)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("PolynomialLR", dict(total_iters=8, power=2.0)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("LambdaLR", dict(lr_lambda="0.95 ** epoch")),
    ("MultiplicativeLR", dict(lr_lambda="0.9")),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=4, mode="exp_range", gamma=0.9)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=20)),
    ("OneCycleLR", dict(max_lr=[1.0, 0.5], total_steps=20, three_phase=True, anneal_strategy="linear")),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("ReduceLROnPlateau", dict(factor=0.5, patience=1, cooldown=1)),
    ("SWALR", dict(swa_lr=0.05, anneal_epochs=3)),
]
STEPS, MORE = 5, 6
METRICS = [1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.98, 0.85, 0.9, 0.92, 0.93, 0.94]


def build(name, kwargs):
    p1, p2 = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.01}], lr=0.1, momentum=0.9)
    kw = dict(kwargs)
    if "lr_lambda" in kw:
        expr = kw["lr_lambda"]
        kw["lr_lambda"] = lambda epoch, expr=expr: eval(expr, {"math": math}, {"epoch": epoch})
    cls = torch.optim.swa_utils.SWALR if name == "SWALR" else getattr(L, name)
    return opt, cls(opt, **kw)


def step(opt, sched, name, t):
    opt.step()
    if name == "ReduceLROnPlateau":
        sched.step(METRICS[t])
    else:
        sched.step()


def plain(v):
    """torch's values as what fo.save writes: Python numbers, lists, dicts."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, torch.Tensor):
        return v.item()
    return v


def main(out):
    warnings.simplefilter("ignore")
    cases = []
    for name, kwargs in CASES:
        opt, sched = build(name, kwargs)
        for t in range(STEPS):
            step(opt, sched, name, t)
        sd = plain(sched.state_dict())
        lrs = []
        for t in range(STEPS, STEPS + MORE):
            step(opt, sched, name, t)
            lrs.append([g["lr"] for g in opt.param_groups])
        cases.append({"name": name, "kwargs": kwargs, "steps": STEPS, "state_dict": sd, "lrs": lrs,
                      "metrics": METRICS})
    fo.save({"torch_version": torch.__version__, "cases": cases}, out)


if __name__ == "__main__":
    main(sys.argv[1])
