"""The optimizers beyond torch.optim side by side with the live implementations they
follow (timm, pytorch-optimizer, schedulefree, prodigyopt, on torch): random
configurations, compared after every step, at the end (state dicts through
``fo.interop``), and across a hand-over of ferroptim's state to the implementation.

Each trial draws an optimizer, hyperparameters from its valid domain (caution and
corrected weight decay included), 1–3 parameters (0-d and empty included) in one or two
param groups, float32 or float64 and ``None`` gradients. Parameters must agree after
every step (float64 1e-9, float32 2e-5 relative, as the recorded cases).

Seeded: ``FERROPTIM_DIFF_SEED`` (default 0), ``FERROPTIM_BEYOND_TRIALS`` (default 400).
Skipped without torch and the four packages.
"""

from __future__ import annotations

import importlib
import os
import random
import warnings
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest

import ferroptim as fo

torch = pytest.importorskip("torch")
pytest.importorskip("timm.optim")
for _package in ("schedulefree", "prodigyopt", "pytorch_optimizer"):
    pytest.importorskip(_package)

TRIALS = int(os.environ.get("FERROPTIM_BEYOND_TRIALS", "400"))
SEED = int(os.environ.get("FERROPTIM_DIFF_SEED", "0"))
RTOL = {np.float32: 2e-5, np.float64: 1e-9}
# the implementations read these group options without a default (fo.interop drops
# torch's device flags; torch.optim fills them back in when it loads, these do not)
GROUP_DEFAULTS = {"foreach": False}


def u(r: random.Random, lo: float, hi: float) -> float:
    return r.uniform(lo, hi)


def flag(r: random.Random, p: float = 0.3) -> bool:
    return r.random() < p


def _lion(r):
    corrected = flag(r, 0.2)
    return dict(lr=u(r, 1e-4, 1e-2), betas=(u(r, 0.5, 0.99), u(r, 0.5, 0.999)), weight_decay=u(r, 0, 0.2) * flag(r, 0.6),
                caution=flag(r), corrected_weight_decay=corrected, maximize=flag(r, 0.2))


def _lamb(r):
    return dict(lr=u(r, 1e-4, 1e-2), bias_correction=not flag(r, 0.2), betas=(u(r, 0.5, 0.99), u(r, 0.9, 0.9999)),
                eps=10 ** u(r, -8, -5), weight_decay=u(r, 0, 0.1) * flag(r, 0.7), grad_averaging=not flag(r, 0.2),
                max_grad_norm=r.choice([None, 1.0, 0.1, 10.0]), trust_clip=flag(r), always_adapt=flag(r),
                caution=flag(r, 0.2), decoupled_decay=flag(r), corrected_weight_decay=flag(r, 0.2))


def _lars(r):
    momentum = u(r, 0, 0.95) * flag(r, 0.7)
    nesterov = momentum > 0 and flag(r)
    return dict(lr=u(r, 1e-3, 0.5), momentum=momentum, dampening=0.0 if nesterov else u(r, 0, 0.5) * flag(r),
                weight_decay=u(r, 0, 0.05) * flag(r, 0.6), nesterov=nesterov, trust_coeff=u(r, 1e-4, 1e-2),
                eps=10 ** u(r, -9, -6), trust_clip=flag(r), always_adapt=flag(r))


def _adan(r):
    return dict(lr=u(r, 1e-4, 1e-2), betas=(u(r, 0.5, 0.99), u(r, 0.5, 0.99), u(r, 0.9, 0.999)),
                eps=10 ** u(r, -9, -6), weight_decay=u(r, 0, 0.1) * flag(r, 0.6), no_prox=flag(r), caution=flag(r, 0.2))


def _adopt(r):
    return dict(lr=u(r, 1e-4, 1e-2), betas=(u(r, 0.5, 0.99), u(r, 0.9, 0.9999)), eps=10 ** u(r, -8, -5),
                clip_exp=r.choice([None, 0.333, 0.25]), weight_decay=u(r, 0, 0.1) * flag(r, 0.6), decoupled=flag(r),
                corrected_weight_decay=flag(r, 0.2), caution=flag(r, 0.2), maximize=flag(r, 0.2))


def _ademamix(r):
    return dict(lr=u(r, 1e-4, 1e-2), betas=(u(r, 0.5, 0.95), u(r, 0.9, 0.999), u(r, 0.99, 0.9999)),
                weight_decay=u(r, 0, 0.1) * flag(r, 0.6), weight_decouple=flag(r), fixed_decay=flag(r, 0.2),
                alpha=u(r, 0, 8), t_alpha_beta3=r.choice([None, 5, 20]), eps=10 ** u(r, -9, -6), maximize=flag(r, 0.2))


def _sf_adamw(r):
    return dict(lr=u(r, 1e-4, 1e-2), betas=(u(r, 0.5, 0.95), u(r, 0.9, 0.999)), eps=10 ** u(r, -9, -6),
                weight_decay=u(r, 0, 0.1) * flag(r, 0.6), warmup_steps=r.choice([0, 2, 5]), r=r.choice([0.0, 0.5]),
                weight_lr_power=r.choice([2.0, 1.0]))


def _sf_sgd(r):
    return dict(lr=u(r, 1e-3, 0.3), momentum=u(r, 0.5, 0.95), weight_decay=u(r, 0, 0.05) * flag(r, 0.6),
                warmup_steps=r.choice([0, 3]), r=r.choice([0.0, 0.5]), weight_lr_power=r.choice([2, 1.0]))


def _sf_radam(r):
    return dict(lr=u(r, 1e-4, 1e-2), betas=(u(r, 0.5, 0.95), u(r, 0.5, 0.999)), eps=10 ** u(r, -9, -6),
                weight_decay=u(r, 0, 0.1) * flag(r, 0.6), r=r.choice([0.0, 0.5]), weight_lr_power=r.choice([2.0, 1.0]),
                silent_sgd_phase=not flag(r))


def _prodigy(r):
    return dict(betas=(u(r, 0.0, 0.95) * (not flag(r, 0.15)), u(r, 0.9, 0.999)), beta3=r.choice([None, 0.99]),
                eps=10 ** u(r, -9, -6), weight_decay=u(r, 0, 0.1) * flag(r, 0.6), decouple=not flag(r),
                use_bias_correction=flag(r), safeguard_warmup=flag(r), d0=10 ** u(r, -7, -5),
                d_coef=u(r, 0.5, 2.0), growth_rate=r.choice([float("inf"), 1.02]), slice_p=r.choice([1, 1, 2, 3]))


# ferroptim name -> (implementation, draw kwargs, per-group options a second group may set)
DRAWS: Dict[str, Tuple[str, Callable[[random.Random], Dict[str, Any]], Tuple[str, ...]]] = {
    "Lion": ("timm.optim.Lion", _lion, ("lr", "weight_decay", "caution")),
    "LAMB": ("timm.optim.Lamb", _lamb, ("lr", "weight_decay", "trust_clip")),
    "LARS": ("timm.optim.Lars", _lars, ("lr", "weight_decay")),
    "Adan": ("timm.optim.Adan", _adan, ("lr", "weight_decay", "no_prox")),
    "ADOPT": ("timm.optim.Adopt", _adopt, ("lr", "weight_decay", "clip_exp")),
    "AdEMAMix": ("pytorch_optimizer.AdEMAMix", _ademamix, ("lr", "weight_decay", "alpha")),
    "ScheduleFreeAdamW": ("schedulefree.AdamWScheduleFree", _sf_adamw, ("lr", "weight_decay")),
    "ScheduleFreeSGD": ("schedulefree.SGDScheduleFree", _sf_sgd, ("lr", "weight_decay")),
    "ScheduleFreeRAdam": ("schedulefree.RAdamScheduleFree", _sf_radam, ("lr", "weight_decay")),
    "Prodigy": ("prodigyopt.Prodigy", _prodigy, ("weight_decay", "safeguard_warmup", "betas", "eps")),
}
NAMES = list(DRAWS)


def klass(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def draw(r: random.Random) -> Dict[str, Any]:
    name = NAMES[r.randrange(len(NAMES))]
    impl, kwargs, group_keys = DRAWS[name]
    kw = kwargs(r)
    dtype = r.choice([np.float32, np.float64])
    shapes = [r.choice([(), (0,), (1,), (7,), (3, 5), (2, 1, 4), (40,)]) for _ in range(r.randint(1, 3))]
    groups = None
    if len(shapes) > 1 and flag(r, 0.5):
        override = {k: v for k, v in kwargs(r).items() if k in group_keys}
        groups = [{"params": [0]}, dict(override, params=list(range(1, len(shapes))))]
    steps = r.randint(1, 8)
    nones = {(t, i) for t in range(steps) for i in range(len(shapes)) if flag(r, 0.1)}
    return dict(name=name, impl=impl, kw=kw, dtype=dtype, shapes=shapes, groups=groups, steps=steps, nones=nones,
                seed=r.randrange(2**32), handover=r.randint(1, steps))


def build(case: Dict[str, Any], params: List[Any], make: Any) -> Any:
    spec: Any = params
    if case["groups"]:
        spec = [dict({k: v for k, v in g.items() if k != "params"}, params=[params[i] for i in g["params"]])
                for g in case["groups"]]
    opt = make(spec, **case["kw"])
    if hasattr(opt, "train"):
        opt.train()
    return opt


def assert_params(mine: List[fo.Parameter], theirs: List[Any], case: Dict[str, Any], what: str) -> None:
    for i, (a, b) in enumerate(zip(mine, theirs)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=RTOL[case["dtype"]], atol=1e-300,
                                   err_msg=f"{case['name']} {case['kw']} param {i} {what}")


def run(case: Dict[str, Any]) -> None:
    rng = np.random.default_rng(case["seed"])
    init = [np.array(rng.standard_normal(s) * 0.5, dtype=case["dtype"]) for s in case["shapes"]]
    grads = [[np.array(rng.standard_normal(s), dtype=case["dtype"]) for s in case["shapes"]] for _ in range(case["steps"])]
    mine = [fo.Parameter(x.copy()) for x in init]
    theirs = [torch.nn.Parameter(torch.from_numpy(x.copy())) for x in init]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = build(case, mine, getattr(fo, case["name"]))
        ref = build(case, theirs, klass(case["impl"]))
    for t in range(case["steps"]):
        for i in range(len(mine)):
            g = None if (t, i) in case["nones"] else grads[t][i]
            mine[i].grad = g
            theirs[i].grad = None if g is None else torch.from_numpy(g.copy())
        opt.step()
        ref.step()
        assert_params(mine, theirs, case, f"after step {t + 1}")
        if t + 1 == case["handover"]:  # ferroptim's state into a new implementation optimizer
            sd = fo.interop.to_torch_state_dict(opt.state_dict(), group_defaults=GROUP_DEFAULTS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fresh = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in mine]
                ref = build(case, fresh, klass(case["impl"]))
                ref.load_state_dict(sd)
            theirs = fresh
    # and the implementation's state into a new ferroptim optimizer, which continues as it
    back = [fo.Parameter(p.detach().numpy().copy()) for p in theirs]
    again = build(case, back, getattr(fo, case["name"]))
    again.load_state_dict(fo.interop.from_torch_state_dict(ref.state_dict()))
    for i, g in enumerate(grads[-1]):
        back[i].grad = g
        theirs[i].grad = torch.from_numpy(g.copy())
    again.step()
    ref.step()
    assert_params(back, theirs, case, "after a step from the implementation's state")


R = random.Random(SEED)
CASES = [draw(R) for _ in range(TRIALS)]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']}-{k}" for k, c in enumerate(CASES)])
def test_agrees_with_the_implementation(case):
    run(case)
