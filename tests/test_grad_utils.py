"""ferroptim.utils against NumPy versions of torch.nn.utils' formulas: per-tensor norms
(float64 sums, rounded to each dtype), the norm of the norms, torch's clipping
coefficient, clamping; big arrays (the pool), mixed dtypes, views, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import ferroptim as fo
from ferroptim import utils

BIG = 1_100_000
NORMS = [2.0, 1.0, float("inf"), float("-inf"), 0.0, 3.0]


def np_norm(x, p):
    x = np.abs(np.asarray(x, dtype=np.float64).ravel())
    if p == float("inf"):
        return x.max(initial=0.0)
    if p == float("-inf"):
        return x.min(initial=np.inf) if x.size else 0.0
    if p == 0.0:
        return float(np.count_nonzero(x))
    return (x**p).sum() ** (1.0 / p)


def params(dtypes=(np.float32, np.float64, np.float32), sizes=(7, BIG, 33), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for dt, n in zip(dtypes, sizes):
        p = fo.Parameter(np.zeros(n, dt))
        p.grad = rng.standard_normal(n).astype(dt)
        out.append(p)
    return out


@pytest.mark.parametrize("p", NORMS)
def test_total_norm_is_the_norm_of_the_rounded_norms(p):
    ps = params()
    grads = [q.grad for q in ps]
    got = utils.get_total_norm(grads, p)
    per = np.array([g.dtype.type(np_norm(g, p)) for g in grads], dtype=np.float64)
    want = np_norm(per, p)
    assert got.dtype == np.float64 and got.shape == ()
    assert got == pytest.approx(want, rel=1e-12)
    f32 = utils.get_total_norm([g for g in grads if g.dtype == np.float32], p)
    assert f32.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 1e9])
def test_clip_grad_norm_scales_by_torchs_coefficient(dtype, max_norm):
    ps = params(dtypes=(dtype,) * 3)
    before = [q.grad.copy() for q in ps]
    total = utils.clip_grad_norm_(ps, max_norm)
    t = dtype
    coef = min((t(1) / (total + t(1e-6))) * t(max_norm), t(1.0))
    for q, b in zip(ps, before):
        np.testing.assert_array_equal(q.grad, b * coef)
    if max_norm < 1:
        assert utils.get_total_norm([q.grad for q in ps]) == pytest.approx(max_norm, rel=1e-5)


def test_views_none_grads_and_a_single_parameter():
    base = np.arange(20.0)
    p = fo.Parameter(np.zeros(10))
    p.grad = base[::2]  # a view: scaled through a scratch copy, written back
    q = fo.Parameter(np.zeros(3))  # no grad: skipped
    utils.clip_grad_norm_([p, q], 1.0)
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-6)
    assert q.grad is None
    single = fo.Parameter(np.zeros(2))
    single.grad = np.array([3.0, 4.0])
    assert float(utils.clip_grad_norm_(single, 1.0)) == 5.0
    assert float(utils.clip_grad_norm_([q], 1.0)) == 0.0


def test_non_finite_total():
    ps = params()
    ps[1].grad[5] = np.nan
    before = [q.grad.copy() for q in ps]
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from `parameters` is non-finite"):
        utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    for q, b in zip(ps, before):
        np.testing.assert_array_equal(q.grad, b)
    assert np.isnan(utils.clip_grad_norm_(ps, 1.0))  # torch scales by the NaN norm
    assert np.isnan(ps[0].grad).all()
    assert np.isnan(utils.get_total_norm([np.array([1.0, np.inf, np.nan])], float("inf")))


def test_clip_grad_value():
    ps = params()
    ps[2].grad[3] = np.nan
    before = [q.grad.copy() for q in ps]
    utils.clip_grad_value_(ps, 0.5)
    for q, b in zip(ps, before):
        want = np.where(np.isnan(b), b, np.clip(b, -0.5, 0.5))
        np.testing.assert_array_equal(q.grad, want)


def test_bad_gradients_are_clean_errors_and_change_nothing():
    p = fo.Parameter(np.zeros(3))
    p.grad = np.ones(3)
    r = fo.Parameter(np.zeros(3))
    r.grad = np.ones(3)
    r.grad.flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[1\]: the array is read-only"):
        utils.clip_grad_norm_([p, r], 0.1)
    np.testing.assert_array_equal(p.grad, np.ones(3))
    assert utils.get_total_norm([r.grad]) == pytest.approx(np.sqrt(3))  # reading a read-only array is fine
    with pytest.raises(TypeError, match=r"grads\[0\]: unsupported dtype int64"):
        utils.get_total_norm([np.arange(3)])
    s = fo.Parameter(np.zeros((4, 2)))
    s.grad = fo.SparseGrad(np.array([1]), np.ones((1, 2)))
    with pytest.raises(TypeError, match="SparseGrad"):
        utils.clip_grad_value_([s], 1.0)
    shared = np.ones(4)
    with pytest.raises(ValueError, match=r"grads\[0\] and grads\[1\] share memory"):
        fo._core.grad_scale_([shared, shared[1:]], 2.0)
