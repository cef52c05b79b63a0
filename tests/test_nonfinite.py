"""SkipNonFinite: a step with a NaN or Inf gradient changes nothing and is counted;
finite steps are the wrapped optimizer's own; without the wrapper NaN propagates as
in torch."""

from __future__ import annotations

import numpy as np
import pytest

import ferroptim as fo
from helpers import assert_unchanged, snapshot

BIG = 1_100_000


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["Adam", "SGD", "Adafactor", "RMSprop"])
def test_a_non_finite_gradient_skips_the_step(name, bad):
    rng = np.random.default_rng(0)
    ps = [fo.Parameter(rng.standard_normal(s).astype(np.float32)) for s in ((BIG,), (3, 4))]
    opt = getattr(fo, name)(ps, lr=0.01)
    guarded = fo.SkipNonFinite(opt)
    for p in ps:
        p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
    guarded.step()  # a finite step: taken
    twin = [p.data.copy() for p in ps]
    before = snapshot(opt)
    ps[0].grad[BIG // 2] = bad
    guarded.step()
    assert_unchanged(opt, before)
    assert (guarded.skipped_steps, guarded.consecutive_skips) == (1, 1)
    guarded.step(grads=[rng.standard_normal(p.data.shape).astype(np.float32) for p in ps])
    assert (guarded.skipped_steps, guarded.consecutive_skips) == (1, 0)
    assert all(not np.array_equal(p.data, t) for p, t in zip(ps, twin))


def test_finite_steps_are_the_optimizers_own_and_attributes_pass_through():
    rng = np.random.default_rng(1)
    a, b = fo.Parameter(np.ones(5)), fo.Parameter(np.ones(5))
    oa, ob = fo.AdamW([a], lr=0.1), fo.AdamW([b], lr=0.1)
    guarded = fo.SkipNonFinite(ob)
    sched = fo.lr_scheduler.StepLR(ob, 1, gamma=0.5)
    for _ in range(3):
        g = rng.standard_normal(5)
        a.grad, b.grad = g, g.copy()
        oa.step()
        guarded.step()
        sched.step()
        oa.param_groups[0]["lr"] *= 0.5
    np.testing.assert_array_equal(a.data, b.data)
    guarded.zero_grad()
    assert b.grad is None and guarded.param_groups is ob.param_groups
    assert "skipped_steps=0" in repr(guarded)


def test_without_the_wrapper_nan_propagates_as_in_torch():
    p = fo.Parameter(np.ones(3))
    p.grad = np.array([1.0, np.nan, 1.0])
    fo.SGD([p], lr=0.1).step()
    assert np.isnan(p.data[1]) and not np.isnan(p.data[0])


def test_sparse_gradients_and_closures():
    emb = fo.Parameter(np.ones((6, 2)))
    opt = fo.SparseAdam([emb], lr=0.1)
    guarded = fo.SkipNonFinite(opt)
    emb.grad = fo.SparseGrad(np.array([1, 3]), np.array([[1.0, np.inf], [1.0, 1.0]]))
    before = snapshot(opt)
    assert guarded.step(closure=lambda: 4.0) == 4.0
    assert_unchanged(opt, before)
    assert guarded.skipped_steps == 1


def test_what_cannot_be_wrapped():
    with pytest.raises(TypeError, match="str is not an Optimizer"):
        fo.SkipNonFinite("adam")
    with pytest.raises(TypeError, match="L-BFGS evaluates its closure"):
        fo.SkipNonFinite(fo.LBFGS([fo.Parameter(np.ones(2))]))
