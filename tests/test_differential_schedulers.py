"""Every scheduler side by side with torch's (the live oracle; skipped without torch):
the same optimizer, the same steps — chained, by epoch (deprecated, closed forms and
fractional epochs), with metrics — and after each step the same LRs and momenta to
1e-15 relative, and the same scalar attributes in ``state_dict``, of the same Python
types (``T_cur`` stays an int where torch's does)."""

from __future__ import annotations

import warnings
from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import pytest

import ferroptim as fo

torch = pytest.importorskip("torch")

RTOL = 1e-15


def both(make: Callable[[Any, Any], Any], momentum: bool = True, adam: bool = False):
    """A torch and a ferroptim optimizer of two groups, and `make(module, optimizer)`
    on each (module: torch.optim.lr_scheduler or fo.lr_scheduler)."""
    kw = {"betas": (0.9, 0.99)} if adam else ({"momentum": 0.9} if momentum else {})
    cls_t = torch.optim.Adam if adam else torch.optim.SGD
    cls_f = fo.Adam if adam else fo.SGD
    ot = cls_t([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1}, {"params": [torch.nn.Parameter(torch.zeros(3))], "lr": 0.02}], lr=0.1, **kw)
    of = cls_f([{"params": [fo.Parameter(np.zeros(2))], "lr": 0.1}, {"params": [fo.Parameter(np.zeros(3))], "lr": 0.02}], lr=0.1, **kw)
    return (ot, make(torch.optim.lr_scheduler, ot)), (of, make(fo.lr_scheduler, of))


def scalars(sched: Any) -> List[Any]:
    return sorted((k, v, type(v).__name__) for k, v in sched.state_dict().items() if isinstance(v, (int, float)))


def check(t, f, what: str) -> None:
    (ot, st), (of, sf) = t, f
    for gt, gf in zip(ot.param_groups, of.param_groups):
        for key in ("lr", "momentum", "betas", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "swa_lr"):
            if key in gt:
                want, got = np.atleast_1d(gt[key]), np.atleast_1d(gf[key])
                np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=f"{what}: {key}")
    assert scalars(sf) == scalars(st), what


CASES = [
    ("StepLR", lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), [None] * 7 + [11, 4, None]),
    ("MultiStepLR", lambda m, o: m.MultiStepLR(o, milestones=[2, 2, 5], gamma=0.3), [None] * 7 + [1, 6, None]),
    ("ConstantLR", lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=3), [None] * 5 + [1, 4]),
    ("LinearLR", lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=4), [None] * 6 + [2, 7]),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.8), [None] * 4 + [9, None]),
    ("PolynomialLR", lambda m, o: m.PolynomialLR(o, total_iters=6, power=1.7), [None] * 8 + [3, None]),
    ("CosineAnnealingLR", lambda m, o: m.CosineAnnealingLR(o, T_max=4, eta_min=0.001), [None] * 11 + [6, None]),
    ("LambdaLR", lambda m, o: m.LambdaLR(o, [lambda e: 0.9**e, lambda e: 1 / (e + 1)]), [None] * 5),
    ("MultiplicativeLR", lambda m, o: m.MultiplicativeLR(o, lambda e: 0.95), [None] * 5),
    (
        "CosineAnnealingWarmRestarts",
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
        [None] * 5 + [10, 2.5, None, 7, None, 0.5, 3, 21.25],
    ),
    ("CosineAnnealingWarmRestarts-1", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3), [None] * 4 + [10, 2.5, None, 7.5]),
    (
        "CyclicLR",
        lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=2, step_size_down=3, mode="exp_range", gamma=0.9),
        [None] * 12,
    ),
    ("CyclicLR-triangular2", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=1, mode="triangular2"), [None] * 9),
    (
        "CyclicLR-scale_fn",
        lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, scale_fn=lambda x: 1 / (x + 1), scale_mode="iterations"),
        [None] * 9,
    ),
    ("OneCycleLR", lambda m, o: m.OneCycleLR(o, [0.5, 0.3], total_steps=12), [None] * 12),
    (
        "OneCycleLR-three-linear",
        lambda m, o: m.OneCycleLR(o, 0.5, epochs=2, steps_per_epoch=5, three_phase=True, anneal_strategy="linear"),
        [None] * 10,
    ),
    # counts given as floats without a fraction (`epochs / 10`), which torch takes as the ints
    ("StepLR-float", lambda m, o: m.StepLR(o, step_size=3.0, gamma=0.5), [None] * 7 + [11, 4, None]),
    ("MultiStepLR-float", lambda m, o: m.MultiStepLR(o, milestones=[2.0, 5.0], gamma=0.3), [None] * 7 + [1, 6, None]),
    ("ConstantLR-float", lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=3.0), [None] * 5 + [1, 4]),
    ("LinearLR-float", lambda m, o: m.LinearLR(o, start_factor=0.2, total_iters=np.float64(4.0)), [None] * 6 + [2, 7]),
    ("PolynomialLR-float", lambda m, o: m.PolynomialLR(o, total_iters=6.0, power=1.7), [None] * 8 + [3, None]),
    ("CosineAnnealingLR-float", lambda m, o: m.CosineAnnealingLR(o, T_max=4.0, eta_min=0.001), [None] * 11 + [6, None]),
    (
        "SequentialLR",
        lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.5, total_iters=2), m.ExponentialLR(o, 0.9)], [3]),
        [None] * 6,
    ),
    # a milestone at 0: the scheduler after it makes the first step (torch 2.15)
    (
        "SequentialLR-milestone-0",
        lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.5, total_iters=2), m.ExponentialLR(o, 0.9)], [0]),
        [None] * 4,
    ),
    (
        "SequentialLR-milestones-0-2",
        lambda m, o: m.SequentialLR(
            o, [m.ConstantLR(o, factor=0.5), m.LinearLR(o, 0.2, total_iters=3), m.ExponentialLR(o, 0.9)], [0, 2]
        ),
        [None] * 5,
    ),
]


@pytest.mark.parametrize("name, make, steps", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("adam", [False, True], ids=["SGD", "Adam"])
def test_side_by_side_with_torch(name: str, make: Callable[[Any, Any], Any], steps: Sequence[Optional[float]], adam: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecated epoch argument
        t, f = both(make, adam=adam)
        check(t, f, f"{name}: built")
        for k, epoch in enumerate(steps):
            for opt, sched in (t, f):
                opt.step()
                sched.step() if epoch is None else sched.step(epoch)
            check(t, f, f"{name}: step {k} (epoch {epoch})")


def test_plateau_side_by_side_with_torch() -> None:
    metrics = [1.0, 2.0, 2.0, 2.0, 1.0, 3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    for kw in (
        {"patience": 1, "cooldown": 1, "threshold_mode": "abs", "mode": "max"},
        {"patience": 0, "factor": 0.5, "min_lr": [0.03, 0.001]},
        {"patience": 2, "threshold": 0.1, "eps": 0.05},
    ):
        t, f = both(lambda m, o: m.ReduceLROnPlateau(o, **kw))
        for k, metric in enumerate(metrics):
            for opt, sched in (t, f):
                opt.step()
                sched.step(metric)
            check(t, f, f"{kw}: step {k}")


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 4])
def test_swalr_side_by_side_with_torch(strategy: str, anneal_epochs: int) -> None:
    def make(m: Any, o: Any) -> Any:
        swa = torch.optim.swa_utils if m is torch.optim.lr_scheduler else fo.swa_utils
        return swa.SWALR(o, swa_lr=[0.05, 0.01], anneal_epochs=anneal_epochs, anneal_strategy=strategy)

    t, f = both(make)
    check(t, f, "built")
    for k in range(8):
        for opt, sched in (t, f):
            opt.step()
            sched.step()
        check(t, f, f"step {k}")
