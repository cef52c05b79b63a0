"""What the API and bad-input tests share: optimizer configurations and snapshots."""

from __future__ import annotations

import copy
import pickle
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest

import ferroptim as fo

# Every ferroptim optimizer, in a configuration that keeps state.
CONFIGS: List[Tuple[str, Callable[..., fo.Optimizer], Dict[str, Any]]] = [
    ("SGD", fo.SGD, dict(lr=0.1)),
    ("SGD-nesterov", fo.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam-amsgrad", fo.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", fo.AdamW, dict(lr=0.01)),
    ("Adagrad", fo.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adadelta", fo.Adadelta, dict(weight_decay=0.1)),
    ("Adamax", fo.Adamax, dict(weight_decay=0.1)),
    ("NAdam", fo.NAdam, dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", fo.RAdam, dict(weight_decay=0.1)),
    ("RMSprop-centered", fo.RMSprop, dict(centered=True, weight_decay=0.1)),
    ("RMSprop-momentum", fo.RMSprop, dict(momentum=0.5, centered=True)),
    ("Rprop", fo.Rprop, dict()),
    ("ASGD", fo.ASGD, dict(t0=1, weight_decay=0.1)),
    ("Adafactor", fo.Adafactor, dict(weight_decay=0.1)),
    ("SparseAdam", lambda params, **kw: SparseAdamAllRows(params, **kw), dict(lr=0.01, betas=(0.8, 0.9))),
    # beyond torch.optim
    ("Lion-caution", fo.Lion, dict(lr=0.01, weight_decay=0.1, caution=True)),
    ("LAMB", fo.LAMB, dict(lr=0.01)),
    ("LAMB-caution", fo.LAMB, dict(lr=0.01, caution=True, decoupled_decay=True)),
    ("LARS-momentum", fo.LARS, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("Adan", fo.Adan, dict(lr=0.01, weight_decay=0.02)),
    ("ADOPT", fo.ADOPT, dict(lr=0.01, weight_decay=0.1, decoupled=True)),
    ("AdEMAMix", fo.AdEMAMix, dict(lr=0.01, t_alpha_beta3=10)),
    ("ScheduleFreeAdamW", lambda params, **kw: training(fo.ScheduleFreeAdamW(params, **kw)), dict(lr=0.01, weight_decay=0.1)),
    ("ScheduleFreeSGD", lambda params, **kw: training(fo.ScheduleFreeSGD(params, **kw)), dict(lr=0.1)),
    ("ScheduleFreeRAdam", lambda params, **kw: training(fo.ScheduleFreeRAdam(params, **kw)), dict(lr=0.01)),
    ("Prodigy", fo.Prodigy, dict(weight_decay=0.1)),
    # bitsandbytes' 8-bit optimizers (min_8bit_size=1: the small test parameters get 8-bit state)
    ("Adam8bit", fo.Adam8bit, dict(lr=0.01, weight_decay=0.1, min_8bit_size=1)),
    ("AdamW8bit-float32-state", fo.AdamW8bit, dict(lr=0.01)),
    ("Lion8bit", fo.Lion8bit, dict(lr=0.01, weight_decay=0.1, min_8bit_size=1)),
    ("SGD8bit", fo.SGD8bit, dict(lr=0.1, momentum=0.9, weight_decay=0.01, min_8bit_size=1)),
    ("RMSprop8bit", fo.RMSprop8bit, dict(weight_decay=0.1, min_8bit_size=1)),
    ("Adagrad8bit", fo.Adagrad8bit, dict(min_8bit_size=1)),
    ("AdEMAMix8bit", fo.AdEMAMix8bit, dict(lr=0.01, t_alpha=5, t_beta3=5, min_8bit_size=1)),
]
CONFIG_IDS = [c[0] for c in CONFIGS]


def training(opt: Any) -> Any:
    """A schedule-free optimizer switched to train mode, as its package requires before a step."""
    opt.train()
    return opt


class SparseAdamAllRows(fo.SparseAdam):
    """SparseAdam for the suites that hand out dense gradients: at the step, each
    becomes a SparseGrad listing every row once, unchecked, so that what the suite
    sees are the kernel's own checks of the rows and values."""

    def _grad_of(self, p: Any, grad: Any) -> Any:
        g = grad
        if isinstance(g, np.ndarray) and g.ndim > 0:
            return raw_sparse_grad(np.arange(g.shape[0]), g)
        return super()._grad_of(p, grad)


class DuckParam:
    """A parameter from another library: .data and .grad, nothing else."""

    def __init__(self, data):
        self.data = data
        self.grad = None


def make_params(dtype=np.float32, seed=0, shapes=((4, 5), (7,), (2, 1, 3))) -> List[fo.Parameter]:
    rng = np.random.default_rng(seed)
    return [fo.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]


def grads_for(params, seed) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.data.shape).astype(p.data.dtype) for p in params]


def train(opt: fo.Optimizer, params, steps: int, start: int = 0) -> None:
    """``steps`` steps with gradients that depend only on the step number."""
    for t in range(start, start + steps):
        for p, g in zip(params, grads_for(params, 1000 + t)):
            p.grad = g
        opt.step()


def grad_copy(grad: Any) -> Any:
    if isinstance(grad, fo.SparseGrad):
        return (grad.indices.copy(), np.array(grad.values))
    return None if grad is None else np.array(grad)


def raw_sparse_grad(indices: Any, values: Any) -> fo.SparseGrad:
    """A SparseGrad holding whatever it is given, unchecked (as one changed after it
    was made would): for tests of the checks at the step."""
    g = object.__new__(fo.SparseGrad)
    g.indices, g.values = np.asarray(indices), np.asarray(values)
    return g


def snapshot(opt: fo.Optimizer) -> Dict[str, Any]:
    """Everything a failing call must leave as it was."""
    params = [p for g in opt.param_groups for p in g["params"]]
    return {
        "data": [p.data.copy() for p in params],
        "grad": [grad_copy(p.grad) for p in params],
        "state": pickle.dumps(opt.state_dict()),
        "groups": copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]),
        "param_ids": [[id(p) for p in g["params"]] for g in opt.param_groups],
    }


def assert_unchanged(opt: fo.Optimizer, before: Dict[str, Any]) -> None:
    after = snapshot(opt)
    for a, b in zip(before["data"], after["data"]):
        np.testing.assert_array_equal(a, b)
    assert before["param_ids"] == after["param_ids"]
    assert before["groups"] == after["groups"]
    sa, sb = pickle.loads(before["state"]), pickle.loads(after["state"])
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        if not isinstance(sa["state"][k], dict):
            assert sa["state"][k] == sb["state"][k]
            continue
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for key in sa["state"][k]:
            np.testing.assert_array_equal(sa["state"][k][key], sb["state"][k][key])


def refused(opt: fo.Optimizer, error: type, match: str) -> None:
    """A step that must raise and leave everything as it was."""
    before = snapshot(opt)
    with pytest.raises(error, match=match):
        opt.step()
    assert_unchanged(opt, before)


def fma(a: Any, b: Any, c: Any) -> np.ndarray:
    """``a·b + c`` rounded once, elementwise, in the arrays' dtype (NumPy has no fma):
    float32 through float64, where the product is exact; float64 by Dekker's exact
    product and Knuth's two-sum, the three exact parts added smallest first."""
    a, b, c = np.broadcast_arrays(*(np.asarray(x) for x in (a, b, c)))
    dtype = np.result_type(a, b, c)
    if dtype == np.float32:
        return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)
    a, b, c = (x.astype(np.float64) for x in (a, b, c))
    split = 134217729.0  # 2**27 + 1

    def halves(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        t = split * x
        hi = t - (t - x)
        return hi, x - hi

    with np.errstate(over="ignore", invalid="ignore"):
        p = a * b
        (ah, al), (bh, bl) = halves(a), halves(b)
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # a·b = p + e exactly
        s = p + c
        bb = s - p
        t = (p - (s - bb)) + (c - bb)  # p + c = s + t exactly
        out = s + (t + e)
        return np.where(np.isfinite(out), out, p + c)
