"""Property tests (hypothesis).

1. Random sequences of operations — steps with random and None gradients, zero_grad,
   add_param_group, a save/load round trip through a checkpoint, scheduler steps —
   give what a plain-NumPy implementation of torch's SGD and Adam/AdamW gives.
2. Random arrays thrown at the Rust boundary (dtypes, strides, misalignment, shared
   memory, read-only, wrong sizes, empty) only ever raise Python exceptions, and a
   refused step changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import ferroptim as fo  # noqa: E402
from ferroptim.checkpoint import dumps, loads  # noqa: E402

SEQUENCE_EXAMPLES = 150
BOUNDARY_EXAMPLES = 400


# ------------------------------------------------------------ the NumPy reference
class Reference:
    """torch's single-tensor SGD / Adam / AdamW in float64 NumPy, one parameter at a time."""

    def __init__(self, kind, hyper):
        self.kind, self.h = kind, hyper
        self.state = {}

    def step(self, i, p, g, lr):
        h, st_ = self.h, self.state.setdefault(i, {})
        if self.kind == "SGD":
            d = g + h["weight_decay"] * p if h["weight_decay"] else g.copy()
            if h["momentum"]:
                if "buf" not in st_:
                    st_["buf"] = d.copy()
                else:
                    st_["buf"] = st_["buf"] * h["momentum"] + d
                d = d + h["momentum"] * st_["buf"] if h["nesterov"] else st_["buf"]
            return p - lr * d
        t = st_["step"] = st_.get("step", 0) + 1
        m = st_.setdefault("m", np.zeros_like(p))
        v = st_.setdefault("v", np.zeros_like(p))
        if self.kind == "AdamW":
            p = p * (1 - lr * h["weight_decay"])
        elif h["weight_decay"]:
            g = g + h["weight_decay"] * p
        b1, b2 = h["betas"]
        st_["m"] = m = m + (g - m) * (1 - b1)
        st_["v"] = v = v * b2 + (1 - b2) * g * g
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        if h["amsgrad"]:
            st_["vmax"] = v = np.maximum(st_.get("vmax", v), v)
        denom = np.sqrt(v) / math.sqrt(bc2) + h["eps"]
        return p - (lr / bc1) * m / denom


KINDS = {
    "SGD": st.fixed_dictionaries(
        {"momentum": st.sampled_from([0.0, 0.9]), "nesterov": st.booleans(), "weight_decay": st.sampled_from([0.0, 0.01])}
    ),
    "Adam": st.fixed_dictionaries(
        {"betas": st.just((0.9, 0.99)), "eps": st.just(1e-8), "weight_decay": st.sampled_from([0.0, 0.01]),
         "amsgrad": st.booleans()}
    ),
    "AdamW": st.fixed_dictionaries(
        {"betas": st.just((0.8, 0.999)), "eps": st.just(1e-8), "weight_decay": st.just(0.1), "amsgrad": st.booleans()}
    ),
}

operation = st.one_of(
    st.tuples(st.just("step"), st.lists(st.one_of(st.none(), st.integers(0, 2**31)), min_size=4, max_size=4)),
    st.tuples(st.just("zero_grad")),
    st.tuples(st.just("add_group"), st.integers(1, 5)),
    st.tuples(st.just("save_load")),
    st.tuples(st.just("sched")),
)


@pytest.mark.filterwarnings("ignore:Detected call of")
@settings(max_examples=SEQUENCE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(KINDS)), data=st.data(), ops=st.lists(operation, min_size=1, max_size=12))
def test_operation_sequences_match_a_numpy_reference(kind, data, ops):
    hyper = data.draw(KINDS[kind])
    if kind == "SGD" and hyper["nesterov"] and not hyper["momentum"]:
        hyper["nesterov"] = False  # torch refuses nesterov without momentum
    lr = 0.05
    params = [fo.Parameter(np.linspace(-1, 1, n)) for n in (3, 5)]
    opt = getattr(fo, kind)(params, lr=lr, **hyper)
    sched = fo.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ref = Reference(kind, hyper)
    ref_params = [p.data.copy() for p in params]
    group_of = [0, 0]  # the group of each parameter (for its LR)
    ref_lrs = [lr]
    for op in ops:
        if op[0] == "step":
            for k, p in enumerate(params):
                seed = op[1][k % 4]
                p.grad = None if seed is None else np.random.default_rng(seed).standard_normal(p.data.shape)
            opt.step()
            for k, p in enumerate(params):
                if p.grad is not None:
                    ref_params[k] = ref.step(k, ref_params[k], p.grad, ref_lrs[group_of[k]])
        elif op[0] == "zero_grad":
            opt.zero_grad()
        elif op[0] == "add_group":
            p = fo.Parameter(np.full(op[1], 0.5))
            opt.add_param_group({"params": [p], "lr": lr, "initial_lr": lr})
            params.append(p)
            ref_params.append(p.data.copy())
            group_of.append(len(ref_lrs))
            ref_lrs.append(lr)
        elif op[0] == "save_load":
            saved = loads(dumps({"opt": opt.state_dict(), "sched": sched.state_dict()}))
            groups = [{"params": g["params"]} for g in opt.param_groups]
            opt = getattr(fo, kind)(groups, lr=lr, **hyper)
            opt.load_state_dict(saved["opt"])
            sched = fo.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
            sched.load_state_dict(saved["sched"])
        elif op[0] == "sched":
            sched.step()
            epoch = sched.last_epoch
            ref_lrs = [x * 0.5 if epoch % 2 == 0 else x for x in ref_lrs]
        for k, p in enumerate(params):
            np.testing.assert_allclose(p.data, ref_params[k], rtol=1e-10, atol=1e-12)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(ref_lrs, rel=1e-12)


# ------------------------------------------------------------ the Rust boundary
DTYPES = ["float32", "float64", "float16", "int32", "int64", "complex64", "bool", ">f8", "<f4", "object"]


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=3)))
    n = int(np.prod(shape)) if shape else 1
    layout = draw(st.sampled_from(["plain", "strided", "misaligned", "readonly", "fortran"]))
    if dtype == object:
        a = np.empty(shape, dtype=object)
        a[...] = 1.0
        return a
    if layout == "strided":
        a = np.arange(n * 2).astype(dtype)[::2].reshape(shape)
    elif layout == "misaligned" and dtype.itemsize > 1:
        raw = np.zeros(n * dtype.itemsize + 1, np.uint8)
        a = raw[1:].view(dtype).reshape(shape)
        a[...] = np.arange(n).reshape(shape).astype(dtype) if n else a
    elif layout == "fortran" and len(shape) > 1:
        a = np.asfortranarray(np.arange(n).reshape(shape).astype(dtype))
    else:
        a = np.arange(n).reshape(shape).astype(dtype)
        if layout == "readonly":
            a.flags.writeable = False
    return a


@settings(max_examples=BOUNDARY_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["SGD", "Adam", "Adagrad", "RMSprop", "Rprop", "Adafactor", "Muon"]),
    param=arrays(),
    grad=st.one_of(arrays(), st.sampled_from(["same", "overlap", "scalar", "list"])),
)
def test_bad_arrays_only_ever_raise_python_exceptions(name, param, grad):
    p = fo.Parameter(np.zeros(2))
    opt = fo.Muon([fo.Parameter(np.zeros((2, 2)))], lr=0.01) if name == "Muon" else getattr(fo, name)([p], lr=0.01)
    if name == "Muon":
        p = opt.param_groups[0]["params"][0]
    if isinstance(grad, str):
        grad = {"same": param, "overlap": param.reshape(-1)[::-1] if param.size else param, "scalar": 1.0,
                "list": [1.0] * max(param.size, 1)}[grad]
    # swap the arrays in behind the Parameter's own checks: the kernel boundary must check them
    object.__setattr__(p, "data", param)
    object.__setattr__(p, "grad", grad)
    before = param.copy() if param.dtype != object else None
    try:
        opt.step()
    except (TypeError, ValueError, RuntimeError, IndexError):
        if before is not None:
            np.testing.assert_array_equal(param, before)  # a refused step changes nothing
