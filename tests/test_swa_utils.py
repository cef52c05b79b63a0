"""swa_utils against NumPy computations of torch's formulas: the running mean (the
CPU default), the multi-tensor SWA and EMA (torch's lerp), the per-parameter
functions, SWALR's LR table; bad input changes nothing."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import ferroptim as fo
from ferroptim import swa_utils as swa
from helpers import fma

BIG = 1_100_000  # over the serial threshold: the pool runs it


def lerp(a, c, weight):
    """torch's (2.15) lerp, in the arrays' dtype: one fused multiply-add from the nearer end."""
    w = a.dtype.type(weight)
    diff = c - a
    return fma(w, diff, a) if abs(w) < 0.5 else fma(-diff, a.dtype.type(1) - w, c)


def models(dtype, k, shapes=((3, 4), (BIG,), (7,))):
    rng = np.random.default_rng(0)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(k)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_default_is_torchs_running_mean(dtype):
    snaps = models(dtype, 5)
    params = [fo.Parameter(a.copy()) for a in snaps[0]]
    avg = swa.AveragedModel(params)
    want = None
    for n, snap in enumerate(snaps):
        for p, a in zip(params, snap):
            p.data[...] = a
        avg.update_parameters(params)
        want = [a.copy() for a in snap] if want is None else [w + (c - w) / (n + 1) for w, c in zip(want, snap)]
    assert int(avg.n_averaged) == 5
    for p, w in zip(avg.parameters(), want):
        np.testing.assert_array_equal(p.data, w)
        assert p.data.dtype == dtype
    mean = [np.mean([s[i].astype(np.float64) for s in snaps], axis=0) for i in range(3)]
    for p, m in zip(avg.parameters(), mean):
        np.testing.assert_allclose(p.data, m, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ema_multi_avg_fn_is_torchs_lerp(dtype):
    decay = 0.9
    snaps = models(dtype, 4)
    avg = swa.AveragedModel(snaps[0], multi_avg_fn=swa.get_ema_multi_avg_fn(decay))
    want = None
    for snap in snaps:
        avg.update_parameters(snap)
        want = [a.copy() for a in snap] if want is None else [lerp(w, c, 1 - decay) for w, c in zip(want, snap)]
    for p, w in zip(avg.parameters(), want):
        np.testing.assert_array_equal(p.data, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_swa_multi_avg_fn_weighs_in_float32_like_torch(dtype):
    snaps = models(dtype, 4)
    avg = swa.AveragedModel(snaps[0], multi_avg_fn=swa.get_swa_multi_avg_fn())
    want = None
    for n, snap in enumerate(snaps):
        avg.update_parameters(snap)
        # torch: 1 / (n_averaged + 1) with a long tensor is a float32 tensor
        weight = float(np.float32(1) / np.float32(n + 1))
        want = [a.copy() for a in snap] if want is None else [lerp(w, c, weight) for w, c in zip(want, snap)]
    for p, w in zip(avg.parameters(), want):
        np.testing.assert_array_equal(p.data, w)


def test_per_parameter_functions():
    snaps = models(np.float64, 3, shapes=((5,),))
    ema = swa.AveragedModel(snaps[0], avg_fn=swa.get_ema_avg_fn(0.5))
    mean = swa.AveragedModel(snaps[0], avg_fn=swa.get_swa_avg_fn())
    for snap in snaps:
        ema.update_parameters(snap)
        mean.update_parameters(snap)
    a, b, c = (s[0] for s in snaps)
    np.testing.assert_array_equal(ema.parameters()[0].data, 0.5 * (0.5 * a + 0.5 * b) + 0.5 * c)
    np.testing.assert_array_equal(mean.parameters()[0].data, (a + (b - a) / 2) + (c - (a + (b - a) / 2)) / 3)


def test_mixed_dtypes_and_views_in_one_model():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 8))
    current = [base[:, ::2], base.astype(np.float32)[::3], np.float16(base[0])]  # non-contiguous views, float16
    avg = swa.AveragedModel(current)
    avg.update_parameters(current)
    moved = [c * 2 for c in current]
    avg.update_parameters(moved)
    for p, c, m in zip(avg.parameters(), current, moved):
        np.testing.assert_array_equal(p.data, c + (m - c) / 2)
        assert p.data.dtype == c.dtype


def test_model_with_parameters_method():
    class Net:
        def __init__(self):
            self.w = fo.Parameter(np.ones(3))

        def parameters(self):
            return [self.w]

    net = Net()
    avg = swa.AveragedModel(net)
    avg.update_parameters(net)
    net.w.data[...] = 3.0
    avg.update_parameters(net)
    np.testing.assert_array_equal(avg.parameters()[0].data, [2.0, 2.0, 2.0])


def test_bad_input_changes_nothing():
    snaps = models(np.float64, 2, shapes=((4,), (2, 2)))
    avg = swa.AveragedModel(snaps[0])
    avg.update_parameters(snaps[0])
    before = [p.data.copy() for p in avg.parameters()]
    with pytest.raises(ValueError, match="got 1 parameters, the averaged model holds 2"):
        avg.update_parameters(snaps[1][:1])
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(4,\), its average \(2, 2\)"):
        avg.update_parameters([snaps[1][0], np.zeros(4)])
    with pytest.raises(ValueError, match="Only one of avg_fn and multi_avg_fn"):
        swa.AveragedModel(snaps[0], avg_fn=swa.get_swa_avg_fn(), multi_avg_fn=swa.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match=r"Invalid decay value 1.5 provided. Please provide a value in \[0,1\] range."):
        swa.get_ema_multi_avg_fn(1.5)
    with pytest.raises(TypeError, match="iterable of parameters"):
        swa.AveragedModel(fo.Parameter(np.zeros(3)))
    with pytest.raises(ValueError, match="share memory"):
        fo._core.average_([before[0]], [before[0]], "lerp", 0.5)
    for p, b in zip(avg.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
    assert int(avg.n_averaged) == 1


def test_state_dict_round_trip_and_pickle():
    snaps = models(np.float32, 3, shapes=((4,),))
    avg = swa.AveragedModel(snaps[0])
    for s in snaps[:2]:
        avg.update_parameters(s)
    saved = pickle.loads(pickle.dumps(avg.state_dict()))
    other = swa.AveragedModel(snaps[0])
    other.load_state_dict(saved)
    avg.update_parameters(snaps[2])
    other.update_parameters(snaps[2])
    np.testing.assert_array_equal(avg.parameters()[0].data, other.parameters()[0].data)
    with pytest.raises(ValueError, match="n_averaged must be a non-negative integer"):
        other.load_state_dict(dict(saved, n_averaged=-1))


def test_update_bn_is_the_no_op_torch_runs_without_batchnorm():
    assert swa.update_bn([np.zeros(3)], swa.AveragedModel([np.zeros(3)])) is None
    assert "BatchNorm" in swa.update_bn.__doc__


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 4])
def test_swalr_anneals_to_the_swa_lr(strategy, anneal_epochs):
    opt = fo.SGD([{"params": [fo.Parameter(np.zeros(2))], "lr": 0.1}, {"params": [fo.Parameter(np.zeros(2))], "lr": 0.02}])
    sched = swa.SWALR(opt, swa_lr=[0.05, 0.01], anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    alpha = (lambda t: (1 - math.cos(math.pi * t)) / 2) if strategy == "cos" else (lambda t: t)
    for k in range(8):
        step = max(1, k) if anneal_epochs == 0 else k
        t = min(1, step / max(1, anneal_epochs))
        want = [swa_lr * alpha(t) + lr0 * (1 - alpha(t)) for swa_lr, lr0 in [(0.05, 0.1), (0.01, 0.02)]]
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(want, rel=1e-12)
        opt.step()
        sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    assert state["_anneal_strategy"] == strategy


def test_swalr_resumes_mid_run():
    def build():
        opt = fo.SGD([fo.Parameter(np.zeros(2))], lr=0.1, momentum=0.9)
        return opt, swa.SWALR(opt, swa_lr=0.02, anneal_epochs=5)

    opt, sched = build()
    want = []
    for _ in range(9):
        opt.step()
        sched.step()
        want.append(opt.param_groups[0]["lr"])
    opt, sched = build()
    for _ in range(3):
        opt.step()
        sched.step()
    saved = pickle.loads(pickle.dumps((opt.state_dict(), sched.state_dict())))
    opt2, sched2 = build()
    opt2.load_state_dict(saved[0])
    sched2.load_state_dict(saved[1])
    got = want[:3]
    for _ in range(6):
        opt2.step()
        sched2.step()
        got.append(opt2.param_groups[0]["lr"])
    assert got == want
