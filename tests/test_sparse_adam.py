"""SparseAdam and SparseGrad: torch's lazy Adam over the rows a sparse gradient lists.

torch's reference data has no SparseAdam case (sparse tensors), so the numbers are
checked against torch's ``_functional.sparse_adam`` written out below in NumPy, one
tensor operation at a time, with NumPy's float32 rules matching torch's."""

import math

import numpy as np
import pytest

import ferroptim as fo
from helpers import DuckParam, assert_unchanged, raw_sparse_grad, snapshot
from reference_data import RTOL


def torch_sparse_adam(param, state, indices, values, lr, betas, eps, maximize):
    """torch 2.15 ``SparseAdam.step`` for one parameter (state: step, exp_avg, exp_avg_sq)."""
    state["step"] += 1
    grad = -values if maximize else values
    # grad.coalesce(): sorted unique indices, duplicate rows summed
    rows, inverse = np.unique(indices, return_inverse=True)
    grad_values = np.zeros((len(rows),) + values.shape[1:], values.dtype)
    np.add.at(grad_values, inverse, grad)
    if grad_values.size == 0 and len(indices) == 0:
        return
    beta1, beta2 = betas
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    old_exp_avg_values = exp_avg[rows]
    exp_avg_update_values = (grad_values - old_exp_avg_values) * (1 - beta1)
    exp_avg[rows] += exp_avg_update_values
    old_exp_avg_sq_values = exp_avg_sq[rows]
    exp_avg_sq_update_values = (grad_values**2 - old_exp_avg_sq_values) * (1 - beta2)
    exp_avg_sq[rows] += exp_avg_sq_update_values
    numer = exp_avg_update_values + old_exp_avg_values
    denom = np.sqrt(exp_avg_sq_update_values + old_exp_avg_sq_values) + eps
    step = state["step"]
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    param[rows] += -step_size * (numer / denom)


CASES = [
    dict(),
    dict(lr=0.05, betas=(0.5, 0.9), eps=1e-6, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", CASES, ids=["defaults", "maximize"])
def test_matches_torch_sparse_adam(dtype, kw):
    rng = np.random.default_rng(0)
    shapes = [(50, 4), (9,), (6, 2, 3)]
    params = [fo.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
    ref = [p.data.copy() for p in params]
    ref_state = [dict(step=0, exp_avg=np.zeros_like(r), exp_avg_sq=np.zeros_like(r)) for r in ref]
    opt = fo.SparseAdam(params, **kw)
    hyper = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False) | kw
    for step in range(6):
        for k, p in enumerate(params):
            rows = p.data.shape[0]
            nnz = 0 if (step == 3 and k == 1) else int(rng.integers(1, 2 * rows))
            indices = rng.integers(0, rows, nnz)  # unsorted, with duplicates
            values = rng.standard_normal((nnz,) + p.data.shape[1:]).astype(dtype)
            p.grad = fo.SparseGrad(indices, values)
            torch_sparse_adam(ref[k], ref_state[k], indices, values, **hyper)
        opt.step()
        for k, p in enumerate(params):
            st = opt.state[p]
            np.testing.assert_allclose(p.data, ref[k], rtol=RTOL[np.dtype(dtype).name], atol=0)
            np.testing.assert_allclose(st["exp_avg"], ref_state[k]["exp_avg"], rtol=RTOL[np.dtype(dtype).name], atol=1e-30)
            np.testing.assert_allclose(st["exp_avg_sq"], ref_state[k]["exp_avg_sq"], rtol=RTOL[np.dtype(dtype).name])
            assert st["step"] == ref_state[k]["step"] == step + 1


def test_only_listed_rows_change():
    p = fo.Parameter(np.arange(12, dtype=np.float64).reshape(6, 2))
    before = p.data.copy()
    opt = fo.SparseAdam([p], lr=0.1)
    p.grad = fo.SparseGrad([4, 1, 4], np.ones((3, 2)))
    opt.step()
    touched = np.zeros(6, bool)
    touched[[1, 4]] = True
    np.testing.assert_array_equal(p.data[~touched], before[~touched])
    assert np.all(p.data[touched] < before[touched])
    st = opt.state[p]
    assert np.all(st["exp_avg"][~touched] == 0) and np.all(st["exp_avg_sq"][~touched] == 0)
    np.testing.assert_allclose(st["exp_avg"][4], 0.2)  # row 4 listed twice: gradient 2


def test_every_row_once_is_close_to_adam():
    """With every row listed every step the lazy update is Adam's, up to rounding and
    where eps enters (SparseAdam adds it before the bias correction of v, Adam after)."""
    rng = np.random.default_rng(1)
    a = fo.Parameter(rng.standard_normal((20, 3)))
    b = fo.Parameter(a.data.copy())
    sparse, dense = fo.SparseAdam([a], lr=0.01, eps=1e-30), fo.Adam([b], lr=0.01, eps=1e-30)
    for _ in range(10):
        g = rng.standard_normal((20, 3))
        order = rng.permutation(20)
        a.grad = fo.SparseGrad(order, g[order])
        b.grad = g
        sparse.step()
        dense.step()
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12)
    np.testing.assert_allclose(sparse.state[a]["exp_avg_sq"], dense.state[b]["exp_avg_sq"], rtol=1e-12)


def test_mixed_dtypes_and_groups_in_one_step():
    p32 = fo.Parameter(np.ones((4, 2), np.float32))
    p64 = fo.Parameter(np.ones(5))
    untouched = fo.Parameter(np.ones(3))
    opt = fo.SparseAdam([{"params": [p32]}, {"params": [p64, untouched], "lr": 0.5}], lr=0.1)
    p32.grad = fo.SparseGrad([0], np.ones((1, 2)))  # float64 values, cast to float32
    p64.grad = fo.SparseGrad(np.array([2], np.uint8), [1.0])
    opt.step()
    assert p32.grad.values.dtype == np.float32
    np.testing.assert_allclose(p32.data[0], 0.9, rtol=1e-6)
    np.testing.assert_allclose(p64.data[2], 0.5, rtol=1e-6)
    assert untouched not in opt.state


def test_empty_gradient_counts_a_step_and_zero_grad_keeps_it_sparse():
    p = fo.Parameter(np.ones((3, 2), np.float32))
    opt = fo.SparseAdam([p])
    p.grad = fo.SparseGrad([1], np.ones((1, 2)))
    opt.step()
    opt.zero_grad(set_to_none=False)
    assert isinstance(p.grad, fo.SparseGrad) and p.grad.nnz == 0 and p.grad.values.shape == (0, 2)
    before = p.data.copy()
    opt.step()
    np.testing.assert_array_equal(p.data, before)
    assert opt.state[p]["step"] == 2


def test_state_dict_round_trip_and_torch_int_step():
    rng = np.random.default_rng(2)
    p = fo.Parameter(rng.standard_normal((8, 3)))
    opt = fo.SparseAdam([p], lr=0.01)
    for _ in range(3):
        p.grad = fo.SparseGrad(rng.integers(0, 8, 5), rng.standard_normal((5, 3)))
        opt.step()
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["param_groups"][0] == dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, maximize=False, params=[0])
    q = fo.Parameter(p.data.copy())
    other = fo.SparseAdam([q], lr=0.01)
    torch_style = {"state": {0: dict(sd["state"][0], step=3)}, "param_groups": sd["param_groups"]}
    other.load_state_dict(torch_style)  # torch keeps step as a Python int
    g = fo.SparseGrad([0, 7], rng.standard_normal((2, 3)))
    p.grad = q.grad = g
    opt.step()
    other.step()
    np.testing.assert_array_equal(p.data, q.data)
    assert other.state[q]["step"] == 4


def test_load_checks_the_state_against_the_parameter():
    p = fo.Parameter(np.zeros((4, 2)))
    opt = fo.SparseAdam([p])
    good = {"step": 1, "exp_avg": np.zeros((4, 2)), "exp_avg_sq": np.zeros((4, 2))}
    groups = opt.state_dict()["param_groups"]
    for bad, error, match in [
        (dict(good, exp_avg=np.zeros(8)), ValueError, r"'exp_avg' has shape \(8,\) but should have shape \(4, 2\)"),
        (dict(good, momentum_buffer=np.zeros((4, 2))), ValueError, "unknown key 'momentum_buffer'"),
        (dict(good, step=[1, 2]), ValueError, "'step' must be a single number"),
        (dict(good, exp_avg_sq=np.zeros((4, 2), complex)), TypeError, "not a real number type"),
    ]:
        with pytest.raises(error, match=match):
            opt.load_state_dict({"state": {0: bad}, "param_groups": groups})
        assert not opt.state


# ------------------------------------------------------------------ bad input
def test_constructor_checks_as_torch():
    p = fo.Parameter(np.zeros(2))
    for kw, match in [
        (dict(lr=0.0), "Invalid learning rate: 0.0"),
        (dict(eps=0.0), "Invalid epsilon value: 0.0"),
        (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    ]:
        with pytest.raises(ValueError, match=match):
            fo.SparseAdam([p], **kw)


def test_sparse_grad_checks():
    with pytest.raises(TypeError, match="indices must be integers"):
        fo.SparseGrad([0.5], [1.0])
    with pytest.raises(ValueError, match="1-d"):
        fo.SparseGrad([[0]], [[1.0]])
    with pytest.raises(ValueError, match="one row per index: 2 indices"):
        fo.SparseGrad([0, 1], [1.0])
    with pytest.raises(TypeError, match="real numbers"):
        fo.SparseGrad([0], ["a"])
    p = fo.Parameter(np.zeros((3, 2)))
    with pytest.raises(IndexError, match="row index -1 is out of range for a parameter with 3 rows"):
        p.grad = fo.SparseGrad([-1], np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"rows have shape \(3,\) but the parameter's rows have shape \(2,\)"):
        p.grad = fo.SparseGrad([0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="0-d parameter"):
        fo.Parameter(np.zeros(())).grad = fo.SparseGrad([0], [1.0])
    g = fo.SparseGrad([2, 0, 2], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(g.to_dense((3, 2)), [[3, 4], [0, 0], [6, 8]])
    with pytest.raises(IndexError):
        g.to_dense((2, 2))


def test_dense_gradient_is_refused_as_torch_does():
    p, q = fo.Parameter(np.zeros((3, 2))), fo.Parameter(np.zeros(2))
    opt = fo.SparseAdam([p, q])
    p.grad = fo.SparseGrad([0], np.ones((1, 2)))
    q.grad = np.ones(2)
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please consider Adam instead"):
        opt.step()
    assert_unchanged(opt, before)
    assert not opt.state


def test_other_optimizers_refuse_a_sparse_gradient():
    p = fo.Parameter(np.zeros((3, 2)))
    opt = fo.Adam([p])
    p.grad = fo.SparseGrad([0], np.ones((1, 2)))
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[0\].*only SparseAdam takes one"):
        opt.step()
    assert not opt.state and np.all(p.data == 0)


def test_rust_checks_what_python_checked_too():
    """A SparseGrad changed after it was assigned is checked again at the step."""
    d = DuckParam(np.zeros((3, 2)))
    ok = fo.Parameter(np.zeros(4))
    opt = fo.SparseAdam([ok, d])
    ok.grad = fo.SparseGrad([1], [1.0])
    opt.step()
    ok.grad = fo.SparseGrad([1], [1.0])
    cases = [
        (fo.SparseGrad([5], np.ones((1, 2))), IndexError, r"\['params'\]\[1\]: row index 5 is out of range for 3 rows"),
        (fo.SparseGrad([-2], np.ones((1, 2))), IndexError, "row index -2 is out of range"),
        (fo.SparseGrad([0, 1], np.ones((2, 3))), ValueError, r"gradient of param_groups\[0\]\['params'\]\[1\].*shape"),
        (fo.SparseGrad([0], d.data[:1]), ValueError, "share memory"),
        (raw_sparse_grad([0], np.array([["a", "b"]])), TypeError, "not a real number type"),
    ]
    for grad, error, match in cases:
        d.grad = grad  # a duck parameter's grad is not checked on assignment
        before = snapshot(opt)
        with pytest.raises(error, match=match):
            opt.step()
        assert_unchanged(opt, before)
    d.grad = raw_sparse_grad(np.array([0.0]), np.ones((1, 2)))  # float indices
    with pytest.raises(TypeError, match="indices must be a 1-d numpy array of int64"):
        opt.step()


def test_odd_layouts_give_the_same_numbers():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((16, 4))
    values = rng.standard_normal((24, 8))[:, ::2]  # not contiguous
    indices = rng.integers(0, 16, 24)
    out = []
    for arr in (base.copy(), base.astype(">f8"), np.asfortranarray(base)):
        p = fo.Parameter(arr)
        opt = fo.SparseAdam([p], lr=0.1)
        for _ in range(3):
            p.grad = fo.SparseGrad(indices, values.astype(">f8"))
            opt.step()
        out.append(np.array(arr, dtype=np.float64))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
