"""ferroptim.functional: torch 2.15's signatures, and bit for bit the class's step."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ferroptim as fo
import ferroptim.functional as F

SHAPES = [(4, 5), (7,), (3, 2)]


def arrays(seed, dtype):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def zeros(dtype):
    return [np.zeros(s, dtype) for s in SHAPES]


def steps():
    return [np.zeros((), np.float64) for _ in SHAPES]


# name: (class, class kwargs, function kwargs, state lists in positional order with
#        the class's state key each (None: an empty list), extra positional/keyword args)
CASES = {
    "sgd": (fo.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
            dict(weight_decay=0.1, momentum=0.9, lr=0.1, dampening=0.0, nesterov=True, maximize=False)),
    "adam": (fo.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1),
             dict(amsgrad=True, beta1=0.9, beta2=0.999, lr=0.01, weight_decay=0.1, eps=1e-8, maximize=False)),
    "adamw": (fo.AdamW, dict(lr=0.01),
              dict(amsgrad=False, beta1=0.9, beta2=0.999, lr=0.01, weight_decay=1e-2, eps=1e-8, maximize=False)),
    "adagrad": (fo.Adagrad, dict(lr=0.1, lr_decay=0.01),
                dict(lr=0.1, weight_decay=0.0, lr_decay=0.01, eps=1e-10, maximize=False)),
    "adadelta": (fo.Adadelta, dict(weight_decay=0.1),
                 dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.1, maximize=False)),
    "adamax": (fo.Adamax, dict(maximize=True),
               dict(eps=1e-8, beta1=0.9, beta2=0.999, lr=2e-3, weight_decay=0.0)),
    "asgd": (fo.ASGD, dict(t0=1, weight_decay=0.1),
             dict(lambd=1e-4, lr=1e-2, t0=1, alpha=0.75, weight_decay=0.1)),
    "nadam": (fo.NAdam, dict(weight_decay=0.1),
              dict(beta1=0.9, beta2=0.999, lr=2e-3, weight_decay=0.1, momentum_decay=4e-3, eps=1e-8)),
    "radam": (fo.RAdam, dict(weight_decay=0.1, decoupled_weight_decay=True),
              dict(beta1=0.9, beta2=0.999, lr=1e-3, weight_decay=0.1, eps=1e-8)),
    "rmsprop": (fo.RMSprop, dict(momentum=0.5, centered=True),
                dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.5, centered=True)),
    "rprop": (fo.Rprop, dict(),
              dict(step_size_min=1e-6, step_size_max=50.0, etaminus=0.5, etaplus=1.2)),
    "adafactor": (fo.Adafactor, dict(weight_decay=0.1),
                  dict(d=1.0, lr=1e-2, beta2_decay=-0.8, weight_decay=0.1, eps1=None, eps2=1e-3, maximize=False)),
}


def functional_call(name, params, grads, st, dtype, t):
    """One functional step, its state lists in ``st`` (made on the first call)."""
    kw = CASES[name][2]
    if not st:
        st.update(dict(
            sgd=lambda: dict(bufs=[None] * len(SHAPES)),
            adam=lambda: dict(m=zeros(dtype), v=zeros(dtype), vmax=zeros(dtype), s=steps()),
            adamw=lambda: dict(m=zeros(dtype), v=zeros(dtype), vmax=[], s=steps()),
            adagrad=lambda: dict(sum=zeros(dtype), s=steps()),
            adadelta=lambda: dict(sq=zeros(dtype), acc=zeros(dtype), s=steps()),
            adamax=lambda: dict(m=zeros(dtype), u=zeros(dtype), s=steps()),
            asgd=lambda: dict(ax=zeros(dtype), mu=[np.ones((), np.float64) for _ in SHAPES],
                              eta=[np.full((), 1e-2) for _ in SHAPES], s=steps()),
            nadam=lambda: dict(m=zeros(dtype), v=zeros(dtype), mu=[np.ones((), np.float64) for _ in SHAPES],
                               s=steps()),
            radam=lambda: dict(m=zeros(dtype), v=zeros(dtype), s=steps()),
            rmsprop=lambda: dict(sq=zeros(dtype), ga=zeros(dtype), buf=zeros(dtype), s=steps()),
            rprop=lambda: dict(prev=zeros(dtype), size=[np.full(s, 1e-2, dtype) for s in SHAPES], s=steps()),
            adafactor=lambda: dict(
                row=[np.zeros(s[:-1] + (1,), dtype) if len(s) > 1 else None for s in SHAPES],
                col=[np.zeros(s[:-2] + (1,) + s[-1:], dtype) if len(s) > 1 else None for s in SHAPES],
                var=[None if len(s) > 1 else np.zeros(s, dtype) for s in SHAPES], s=steps()),
        )[name]())
    f = getattr(F, name)
    if name == "sgd":
        f(params, grads, st["bufs"], **kw)
    elif name in ("adam", "adamw"):
        f(params, grads, st["m"], st["v"], st["vmax"], st["s"], **kw)
    elif name == "adagrad":
        f(params, grads, st["sum"], st["s"], **kw)
    elif name == "adadelta":
        f(params, grads, st["sq"], st["acc"], st["s"], **kw)
    elif name == "adamax":
        f(params, grads, st["m"], st["u"], st["s"], maximize=True, **kw)
    elif name == "asgd":
        f(params, grads, st["ax"], st["mu"], st["eta"], st["s"], **kw)
    elif name == "nadam":
        f(params, grads, st["m"], st["v"], st["mu"], st["s"], **kw)
    elif name == "radam":
        f(params, grads, st["m"], st["v"], st["s"], decoupled_weight_decay=True, **kw)
    elif name == "rmsprop":
        f(params, grads, st["sq"], st["ga"], st["buf"], st["s"], **kw)
    elif name == "rprop":
        f(params, grads, st["prev"], st["size"], st["s"], **kw)
    elif name == "adafactor":
        f(params, grads, st["row"], st["col"], st["var"], st["s"], **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_step_is_the_class_step_bit_for_bit(name, dtype):
    cls, class_kw, _ = CASES[name]
    init = arrays(0, dtype)
    params = [fo.Parameter(a.copy()) for a in init]
    opt = cls(params, **class_kw)
    flat = [a.copy() for a in init]
    st: dict = {}
    for t in range(4):
        grads = arrays(100 + t, dtype)
        opt.step(grads=[g.copy() for g in grads])
        functional_call(name, flat, grads, st, dtype, t)
        for p, a in zip(params, flat):
            np.testing.assert_array_equal(p.data, a, err_msg=f"{name} step {t + 1}")
    if "s" in st:  # the functions advance state_steps in place, as torch's
        assert [float(s) for s in st["s"]] == [4.0] * len(SHAPES)
    if name == "sgd":  # the buffers sgd made
        for p, b in zip(params, st["bufs"]):
            np.testing.assert_array_equal(opt.state[p]["momentum_buffer"], b)


def test_muon_and_sparse_adam_functional():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 4))
    p = fo.Parameter(w.copy())
    opt = fo.Muon([p], lr=0.02)
    flat, buf = w.copy(), np.zeros_like(w)
    for t in range(3):
        g = rng.standard_normal(w.shape)
        opt.step(grads=[g])
        F.muon([flat], [g], [buf], lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True,
               ns_coefficients=(3.4445, -4.775, 2.0315), ns_steps=5, eps=1e-7, adjust_lr_fn=None, has_complex=False)
        np.testing.assert_array_equal(p.data, flat)
    e = fo.Parameter(w.copy())
    sparse = fo.SparseAdam([e], lr=0.1)
    flat, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    counts = [0]
    for t in range(3):
        g = fo.SparseGrad(np.array([0, 3]), rng.standard_normal((2, 4)))
        e.grad = g
        sparse.step()
        counts[0] += 1
        F.sparse_adam([flat], [g], [m], [v], counts, eps=1e-8, beta1=0.9, beta2=0.999, lr=0.1, maximize=False)
        np.testing.assert_array_equal(e.data, flat)
    assert counts == [3]  # ints, not incremented


def test_signatures_are_torchs():
    params = inspect.signature(F.adam).parameters
    assert list(params)[:6] == ["params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs", "state_steps"]
    assert params["lr"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["decoupled_weight_decay"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert inspect.signature(F.muon).parameters["foreach"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sorted(F.__all__) == sorted(
        ["adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "asgd", "muon", "nadam", "radam",
         "rmsprop", "rprop", "sgd", "sparse_adam"])


def test_bad_state_steps_are_refused_before_anything_changes():
    p, g, m, v = np.zeros(3), np.ones(3), np.zeros(3), np.zeros(3)
    with pytest.raises(TypeError, match=r"state_steps\[0\] must be a writeable 0-d float64 array"):
        F.adam([p], [g], [m], [v], [], [0], amsgrad=False, beta1=0.9, beta2=0.999, lr=0.1, weight_decay=0.0,
               eps=1e-8, maximize=False)
    with pytest.raises(ValueError, match="the exp_avg list has 0 entries for 1 params"):
        F.adam([p], [g], [], [v], [], [np.zeros(())], amsgrad=False, beta1=0.9, beta2=0.999, lr=0.1,
               weight_decay=0.0, eps=1e-8, maximize=False)
    np.testing.assert_array_equal(p, 0.0)
