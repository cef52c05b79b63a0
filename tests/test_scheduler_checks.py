"""The constructor checks of the schedulers that check their arguments one by one
(CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts, ReduceLROnPlateau, SWALR),
side by side with torch's: each argument in turn given odd values (ints and floats
at and past the bounds, bools, NaN, infinities, NumPy scalars, strings, None, lists
of every length), on an optimizer with momentum, one with betas and one with
neither. Both must accept, or both raise the same exception; with the same message,
except a TypeError, where torch's arithmetic names the operation that failed
(``unsupported operand type(s) for -: 'float' and 'str'``) and ferroptim's reading
of the number says that it is none (``must be real number, not str``)."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest

import ferroptim as fo

torch = pytest.importorskip("torch")

VALUES: Dict[str, Any] = {
    "0": 0,
    "1": 1,
    "-1": -1,
    "3": 3,
    "0.0": 0.0,
    "0.5": 0.5,
    "-0.5": -0.5,
    "1.0": 1.0,
    "1.5": 1.5,
    "2.0": 2.0,
    "True": True,
    "False": False,
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "np.int64(3)": np.int64(3),
    "np.float64(0.5)": np.float64(0.5),
    "np.float32(0.5)": np.float32(0.5),
    "'a'": "a",
    "'min'": "min",
    "'max'": "max",
    "'abs'": "abs",
    "'cos'": "cos",
    "'linear'": "linear",
    "'exp_range'": "exp_range",
    "None": None,
    "[0.1]": [0.1],
    "[0.1, 0.2]": [0.1, 0.2],
    "(0.1, 0.2)": (0.1, 0.2),
    "[0.1, 0.2, 0.3]": [0.1, 0.2, 0.3],
    "['a', 'b']": ["a", "b"],
    "{}": {},
}

# each scheduler: the arguments that make a valid call, and the arguments varied
CASES: Dict[str, Tuple[Dict[str, Any], List[str]]] = {
    "CyclicLR": (
        {"base_lr": 0.01, "max_lr": 0.1},
        ["base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma", "scale_mode", "cycle_momentum"]
        + ["base_momentum", "max_momentum", "last_epoch"],
    ),
    "OneCycleLR": (
        {"max_lr": 0.1, "total_steps": 10},
        ["max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start", "anneal_strategy", "cycle_momentum"]
        + ["base_momentum", "max_momentum", "div_factor", "final_div_factor", "three_phase"],
    ),
    "CosineAnnealingWarmRestarts": ({"T_0": 3}, ["T_0", "T_mult", "eta_min"]),
    "ReduceLROnPlateau": (
        {},
        ["mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"],
    ),
    "SWALR": ({"swa_lr": 0.05}, ["swa_lr", "anneal_epochs", "anneal_strategy"]),
}

OPTIMIZERS = {
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "Adam": {"lr": 0.1},
    "Adagrad": {"lr": 0.1},
}


def _optimizer(lib: str, kind: str) -> Any:
    if lib == "torch":
        params: List[Any] = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
        cls = getattr(torch.optim, kind)
    else:
        params = [np.zeros(2) for _ in range(2)]
        cls = getattr(fo, kind)
    return cls([{"params": [p]} for p in params], **OPTIMIZERS[kind])


def _scheduler(lib: str, name: str) -> Callable[..., Any]:
    if name == "SWALR":
        return torch.optim.swa_utils.SWALR if lib == "torch" else fo.swa_utils.SWALR
    return getattr(torch.optim.lr_scheduler if lib == "torch" else fo.lr_scheduler, name)


def _outcome(lib: str, name: str, kwargs: Dict[str, Any], optimizer: str) -> Tuple[str, str]:
    opt = _optimizer(lib, optimizer)
    before = [dict(g, params=None) for g in opt.param_groups]
    try:
        _scheduler(lib, name)(opt, **kwargs)
    except Exception as e:  # noqa: BLE001 - every exception is compared
        if lib == "fo":
            # a refused scheduler leaves the optimizer as it was
            assert [dict(g, params=None) for g in opt.param_groups] == before, (name, kwargs)
        return type(e).__name__, str(e)
    return "ok", ""


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("name, arg", [(n, a) for n, (_, args) in CASES.items() for a in args])
def test_constructor_checks_as_torchs(name: str, arg: str, optimizer: str) -> None:
    base, _ = CASES[name]
    differ = []
    for spelled, value in VALUES.items():
        kwargs = dict(base)
        if arg in ("epochs", "steps_per_epoch"):
            kwargs.pop("total_steps")
            kwargs.update(epochs=2, steps_per_epoch=3)
        kwargs[arg] = value
        want = _outcome("torch", name, kwargs, optimizer)
        got = _outcome("fo", name, kwargs, optimizer)
        same = got[0] == want[0] and (got[1] == want[1] or got[0] == "TypeError")
        if not same:
            differ.append(f"{arg}={spelled}: torch {want}, ferroptim {got}")
    assert not differ, "\n".join(differ)




def _lr_scheduler(lib: str) -> Any:
    return torch.optim.lr_scheduler if lib == "torch" else fo.lr_scheduler


def _f(epoch: int) -> float:
    return 0.9


# (name, the call given a library's lr_scheduler module and two optimizers, whether
# the message quotes an optimizer's repr, which differs between the libraries)
CALLS: List[Tuple[str, Callable[[Any, Any, Any], Any], bool]] = [
    ("LambdaLR, one function", lambda S, o, p: S.LambdaLR(o, _f), False),
    ("LambdaLR, a list of 1 for 2 groups", lambda S, o, p: S.LambdaLR(o, [_f]), False),
    ("LambdaLR, a tuple of 3", lambda S, o, p: S.LambdaLR(o, (_f, _f, _f)), False),
    ("LambdaLR, no function", lambda S, o, p: S.LambdaLR(o, 0.9), False),
    ("MultiplicativeLR, no function", lambda S, o, p: S.MultiplicativeLR(o, 0.9), False),
    ("MultiplicativeLR, one of two no function", lambda S, o, p: S.MultiplicativeLR(o, [_f, 3]), False),
    ("MultiplicativeLR, a list of 1", lambda S, o, p: S.MultiplicativeLR(o, [_f]), False),
    ("SequentialLR, none", lambda S, o, p: S.SequentialLR(o, [], []), False),
    ("SequentialLR, a milestone too many", lambda S, o, p: S.SequentialLR(o, [S.StepLR(o, 2)], [1]), False),
    ("SequentialLR, no scheduler", lambda S, o, p: S.SequentialLR(o, [object()], []), False),
    ("SequentialLR, another optimizer's", lambda S, o, p: S.SequentialLR(o, [S.StepLR(p, 2)], []), True),
    ("SequentialLR, two", lambda S, o, p: S.SequentialLR(o, [S.StepLR(o, 2), S.ExponentialLR(o, 0.9)], [3]), False),
    ("ChainedScheduler, none", lambda S, o, p: S.ChainedScheduler([]), False),
    ("ChainedScheduler, no scheduler", lambda S, o, p: S.ChainedScheduler([object()]), False),
    ("ChainedScheduler, two optimizers", lambda S, o, p: S.ChainedScheduler([S.StepLR(o, 2), S.StepLR(p, 2)]), True),
    ("ChainedScheduler, given another", lambda S, o, p: S.ChainedScheduler([S.StepLR(o, 2)], optimizer=p), True),
    ("StepLR resumed without initial_lr", lambda S, o, p: S.StepLR(o, 2, last_epoch=3), False),
    ("StepLR resumed at 'a'", lambda S, o, p: S.StepLR(o, 2, last_epoch="a"), False),
    ("StepLR, no optimizer", lambda S, o, p: S.StepLR("sgd", 2), False),
]


@pytest.mark.parametrize("name, call, quotes_repr", CALLS, ids=[c[0] for c in CALLS])
def test_function_and_composite_checks_as_torchs(name: str, call: Callable[..., Any], quotes_repr: bool) -> None:
    outcomes = []
    for lib in ("torch", "fo"):
        try:
            call(_lr_scheduler(lib), _optimizer(lib, "SGD"), _optimizer(lib, "SGD"))
            outcomes.append(("ok", ""))
        except Exception as e:  # noqa: BLE001 - every exception is compared
            outcomes.append((type(e).__name__, "" if quotes_repr else str(e)))
    assert outcomes[1] == outcomes[0]
