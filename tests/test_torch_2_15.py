"""What torch 2.15 changed and what side-by-side runs found (issue 11): LBFGS maximize,
its line-search budget and no-parameter step, Adagrad's accumulator start, Adam's
betas, parameters without a hash (mygrad tensors, dataclasses), a read-only ``.grad``,
the message for a non-NumPy ``.data``. Each test fails on the 2.13-era code."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import ferroptim as fo
from reference_data import rosenbrock


def rosenbrock_closure(p):
    def closure():
        loss, g = rosenbrock(p.data)
        p.grad = g
        return loss

    return closure


# ------------------------------------------------------------------ L-BFGS
def test_lbfgs_line_search_gets_what_is_left_of_max_eval():
    # torch: max_ls = max_eval - current_evals = 1 - 1 = 0, so the search never moves
    p = fo.Parameter(np.array([-1.2, 1.0]))
    opt = fo.LBFGS([p], lr=1, max_iter=1, line_search_fn="strong_wolfe")
    for _ in range(5):
        opt.step(rosenbrock_closure(p))
    np.testing.assert_array_equal(p.data, [-1.2, 1.0])


def test_lbfgs_maximize_negates_the_objective_and_returns_the_closures_value():
    x0 = np.array([0.3, -0.2, 0.5])

    def run(maximize):
        p = fo.Parameter(x0.copy())
        opt = fo.LBFGS([p], max_iter=5, maximize=maximize)
        sign = -1.0 if maximize else 1.0

        def closure():
            loss, g = rosenbrock(p.data)
            p.grad = sign * g
            return sign * loss

        returned = opt.step(closure)
        return p.data, returned, opt

    minimized, loss_min, _ = run(False)
    maximized, loss_max, opt = run(True)
    np.testing.assert_array_equal(minimized, maximized)  # max of −f is min of f, step for step
    assert loss_max == -loss_min  # step returns the closure's own value
    assert opt.defaults["maximize"] is True and opt.param_groups[0]["maximize"] is True


def test_lbfgs_state_dict_without_maximize_loads_as_minimizing():
    p = fo.Parameter(np.array([0.3, -0.2]))
    opt = fo.LBFGS([p], maximize=True)
    sd = opt.state_dict()
    del sd["param_groups"][0]["maximize"]  # saved by torch 2.13
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["maximize"] is False


def test_lbfgs_without_parameters_returns_the_closures_loss():
    opt = fo.LBFGS([{"params": []}])
    assert opt.step(lambda: 3.5) == 3.5
    assert len(opt.state) == 0


def test_lbfgs_lr_is_checked():
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        fo.LBFGS([fo.Parameter(np.zeros(2))], lr=-1)


# ----------------------------------------------------------------- Adagrad
def test_adagrad_sum_starts_from_the_constructors_value():
    p, q, r = (fo.Parameter(np.ones(3)) for _ in range(3))
    opt = fo.Adagrad([{"params": [p]}, {"params": [q], "initial_accumulator_value": 5.0}], initial_accumulator_value=0.5)
    np.testing.assert_array_equal(opt.state[q]["sum"], 0.5)  # torch: the constructor's, not the group's
    opt.add_param_group({"params": [r], "initial_accumulator_value": 7.0})
    assert r not in opt.state  # created at its first step, as torch does
    for x in (p, q, r):
        x.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(opt.state[r]["sum"], 1.5)  # self.defaults' 0.5 + g²


# -------------------------------------------------------------- Adam betas
@pytest.mark.parametrize("cls", [fo.Adam, fo.AdamW])
def test_adam_keeps_the_first_two_betas(cls):
    opt = cls([fo.Parameter(np.zeros(2))], betas=(0.8, 0.9, 0.99))
    assert opt.defaults["betas"] == (0.8, 0.9)


@pytest.mark.parametrize("cls", [fo.Adam, fo.AdamW])
def test_adam_betas_must_be_floats(cls):
    with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
        cls([fo.Parameter(np.zeros(2))], betas=(0, 0.9))


# ------------------------------------------- parameters that have no hash
class ValueTensor:
    """Like a mygrad tensor: ``==`` compares values elementwise, so no hash; ``.grad``
    is a read-only property, cleared by ``null_grad()``."""

    def __init__(self, data):
        self.data = data
        self._grad = None

    @property
    def grad(self):
        return self._grad

    def backward(self, g):
        self._grad = np.asarray(g, dtype=self.data.dtype)

    def null_grad(self):
        self._grad = None

    def __eq__(self, other):
        return self.data == getattr(other, "data", other)


@dataclasses.dataclass
class DataclassParam:
    data: np.ndarray
    grad: object = None


@pytest.mark.parametrize("cls, kw", [(fo.SGD, dict(lr=0.1, momentum=0.9)), (fo.Adam, dict(lr=0.1)),
                                     (fo.Adafactor, dict()), (fo.Adagrad, dict())])
def test_unhashable_parameters_are_tracked_by_identity(cls, kw):
    a = DataclassParam(np.zeros(3))
    b = DataclassParam(np.zeros(3))  # equal to a, but another parameter
    opt = cls([a, b], **kw)
    ref = cls([fo.Parameter(np.zeros(3)), fo.Parameter(np.zeros(3))], **kw)
    for t in range(3):
        a.grad, b.grad = np.full(3, 1.0 + t), np.full(3, -2.0)
        for p, g in zip(ref.param_groups[0]["params"], (a.grad, b.grad)):
            p.grad = g.copy()
        opt.step()
        ref.step()
    np.testing.assert_array_equal(a.data, ref.param_groups[0]["params"][0].data)
    np.testing.assert_array_equal(b.data, ref.param_groups[0]["params"][1].data)
    assert len(opt.state) == 2 and opt.state[a] is not opt.state[b]
    assert [k is a or k is b for k in opt.state] == [True, True]
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1}
    again = cls([DataclassParam(np.zeros(3)), DataclassParam(np.zeros(3))], **kw)
    again.load_state_dict(sd)
    assert len(again.state) == 2


def test_unhashable_duplicates_are_found_by_identity():
    a = DataclassParam(np.zeros(3))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        fo.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        fo.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)


def test_read_only_grad_is_cleared_its_own_way():
    p = ValueTensor(np.zeros(3))
    opt = fo.SGD([p], lr=0.1)
    p.backward(np.ones(3))
    opt.step()
    np.testing.assert_array_equal(p.data, -0.1)
    opt.zero_grad()  # null_grad(), no AttributeError
    assert p.grad is None
    p.backward(np.ones(3))
    opt.zero_grad(set_to_none=False)  # zero-filled in place
    np.testing.assert_array_equal(p.grad, 0.0)


@pytest.mark.parametrize("cls, kw", [(fo.SGD, dict(lr=0.1)), (fo.Adam, dict(lr=0.1)), (fo.Adafactor, dict()),
                                     (fo.Adagrad, dict())])
def test_step_grads_reach_the_kernel_without_assigning_a_read_only_grad(cls, kw):
    p, q = ValueTensor(np.zeros(3)), fo.Parameter(np.zeros(3))
    opt = cls([p, q], **kw)
    ref = cls([fo.Parameter(np.zeros(3)), fo.Parameter(np.zeros(3))], **kw)
    opt.step(grads=[np.ones(3), np.full(3, 2.0)])
    ref.step(grads=[np.ones(3), np.full(3, 2.0)])
    assert p.grad is None  # not assigned
    np.testing.assert_array_equal(q.grad, 2.0)  # assigned, as before
    np.testing.assert_array_equal(p.data, ref.param_groups[0]["params"][0].data)
    np.testing.assert_array_equal(q.data, ref.param_groups[0]["params"][1].data)
    opt.step()  # the given gradients were for that step only: p has none now
    np.testing.assert_array_equal(p.data, ref.param_groups[0]["params"][0].data)


def test_skip_nonfinite_sees_given_gradients():
    p = ValueTensor(np.zeros(3))
    guarded = fo.SkipNonFinite(fo.SGD([p], lr=0.1))
    guarded.step(grads=[np.array([1.0, np.nan, 0.0])])
    assert guarded.skipped_steps == 1
    np.testing.assert_array_equal(p.data, 0.0)


# ------------------------------------------------------------- messages
def test_parameter_of_a_foreign_array_says_np_array():
    class JaxLike:
        shape = (2,)

    with pytest.raises(TypeError, match=r"np\.array\(\.\.\.\)"):
        fo.Parameter(JaxLike())


def test_set_of_params_warns_like_torch():
    p = fo.Parameter(np.zeros(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fo.SGD({p}, lr=0.1)
    assert [w.category for w in caught] == [FutureWarning]


def test_adagrad_state_made_for_a_refused_step_is_not_kept():
    p = fo.Parameter(np.ones(3))
    opt = fo.Adagrad([p])
    q = fo.Parameter(np.ones(3))
    opt.add_param_group({"params": [q]})
    p.grad, q.grad = np.ones(3), np.ones(3)
    q.data.flags.writeable = False  # the kernel refuses the step
    with pytest.raises(ValueError, match="read-only"):
        opt.step()
    assert q not in opt.state
