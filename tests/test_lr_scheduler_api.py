"""The scheduler API beyond the reference tables: argument errors (torch's types and
messages), the warnings, closed forms, momentum cycling of Adam's betas, pickling
with lambdas, ReduceLROnPlateau inside SequentialLR / ChainedScheduler, preview,
and subclassing LRScheduler."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

import ferroptim as fo
from ferroptim import lr_scheduler as S


def sgd(momentum=0.0, lrs=(0.1, 0.01)):
    groups = [{"params": [fo.Parameter(np.zeros(2))], "lr": lr} for lr in lrs]
    return fo.SGD(groups, lr=0.1, momentum=momentum)


def adam():
    return fo.Adam([fo.Parameter(np.zeros(2))], lr=1e-3, betas=(0.9, 0.99))


def adagrad():
    return fo.Adagrad([fo.Parameter(np.zeros(2))])


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


# ---------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda o: S.StepLR("not an optimizer", 3), TypeError, "str is not an Optimizer"),
        (lambda o: S.StepLR(o, 3, last_epoch=4), KeyError, "param 'initial_lr' is not specified in param_groups"),
        (lambda o: S.ConstantLR(o, factor=1.5), ValueError, "Constant multiplicative factor expected to be between 0 and 1"),
        (lambda o: S.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor expected to be greater than 0"),
        (lambda o: S.LinearLR(o, end_factor=2), ValueError, "Ending multiplicative factor expected to be between 0 and 1"),
        (lambda o: S.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
        (lambda o: S.MultiplicativeLR(o, 0.9), TypeError, "lr_lambda should be a function, but got float"),
        (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "Expected positive integer T_0, but got 0"),
        (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5), ValueError, "Expected integer T_mult >= 1"),
        (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"), ValueError, "Expected float or int eta_min"),
        (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0."),
        (lambda o: S.ReduceLROnPlateau(o, mode="avg"), ValueError, "mode avg is unknown!"),
        (lambda o: S.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold mode x is unknown!"),
        (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
        (lambda o: S.CyclicLR(o, 0.01, 0.1, mode="sawtooth"), ValueError, "mode is invalid and scale_fn is None"),
        (lambda o: S.CyclicLR(o, [0.01], 0.1), ValueError, "base_lr must have the same length as optimizer.param_groups"),
        (lambda o: S.CyclicLR(adagrad(), 0.01, 0.1), ValueError, "optimizer must support momentum or beta1"),
        (lambda o: S.OneCycleLR(adagrad(), 0.1, total_steps=9), ValueError, "optimizer must support momentum or beta1"),
        (lambda o: S.OneCycleLR(o, 0.1), ValueError, r"You must define either total_steps OR \(epochs AND steps_per_epoch\)"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=0), ValueError, "Expected positive integer total_steps, but got 0"),
        (lambda o: S.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=-1), ValueError, "Expected positive integer steps_per_epoch"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=9, pct_start=1), ValueError, "Expected float between 0 and 1 pct_start"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=9, anneal_strategy="exp"), ValueError, "anneal_strategy must be one of"),
        (lambda o: S.SequentialLR(o, [], []), ValueError, "SequentialLR expects at least one scheduler"),
        (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 3)], []), ValueError, "number of milestones to be equal to 0"),
        (lambda o: S.SequentialLR(o, [object()], []), TypeError, "SequentialLR at index 0 should have `optimizer`"),
        (lambda o: S.SequentialLR(o, [S.StepLR(sgd(), 2)], []), ValueError, "expects all schedulers to belong to the same optimizer"),
        (lambda o: S.ChainedScheduler([]), ValueError, "ChainedScheduler expects at least one scheduler to be chained"),
        (lambda o: fo.swa_utils.SWALR(o, swa_lr=[0.1]), ValueError, "swa_lr must have the same length"),
        (lambda o: fo.swa_utils.SWALR(o, swa_lr=0.1, anneal_strategy="exp"), ValueError, "anneal_strategy must be one of"),
        (lambda o: fo.swa_utils.SWALR(o, swa_lr=0.1, anneal_epochs=-1), ValueError, "anneal_epochs must be equal or greater than 0"),
        (lambda o: fo.swa_utils.SWALR(o, swa_lr=0.1, anneal_epochs=2.0), ValueError, "anneal_epochs must be equal or greater than 0, got 2.0"),
        # torch's arithmetic at construction: a cycle of no length, or that never rises; a divisor of 0
        (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=0), ZeroDivisionError, "float division by zero"),
        (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=0, step_size_down=4), ZeroDivisionError, "float division by zero"),
        (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=float("nan")), ValueError, "cannot convert float NaN to integer"),
        (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up="a"), ValueError, "could not convert string to float: 'a'"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=9, div_factor=0), ZeroDivisionError, "float division by zero"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=9, final_div_factor=0.0), ZeroDivisionError, "float division by zero"),
        # the types torch's isinstance checks refuse, and the comparisons made before them
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=9.0), ValueError, "Expected positive integer total_steps, but got 9.0"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps="9"), TypeError, "'<=' not supported"),
        (lambda o: S.OneCycleLR(o, 0.1, epochs=np.int64(2), steps_per_epoch=3), ValueError, "positive integer epochs, but got 2"),
        (lambda o: S.OneCycleLR(o, 0.1, total_steps=9, pct_start=np.float32(0.5)), ValueError, "pct_start, but got 0.5"),
        (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2.0), ValueError, "Expected positive integer T_0, but got 2.0"),
        (lambda o: S.CosineAnnealingWarmRestarts(o, T_0="2"), TypeError, "'<=' not supported"),
        (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, eta_min=np.float32(0)), ValueError, "of type <class 'numpy.float32'>"),
        (lambda o: S.ReduceLROnPlateau(o, factor="0.5"), TypeError, "'>=' not supported"),
        (lambda o: S.ReduceLROnPlateau(o, mode=1), TypeError, "can only concatenate str"),
        (lambda o: S.ReduceLROnPlateau(o, mode=["min"]), TypeError, "unhashable type: 'list'"),
        (lambda o: S.ReduceLROnPlateau("not an optimizer", factor=2), ValueError, "Factor should be < 1.0."),
        (lambda o: S.ReduceLROnPlateau("not an optimizer"), TypeError, "str is not an Optimizer"),
        (lambda o: S.CyclicLR(o, 0.01, 0.1, mode=3), ValueError, "mode is invalid and scale_fn is None"),
    ],
)
def test_argument_errors(make, error, match):
    opt = sgd()
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(error, match=match):
        make(opt)
    if error is not KeyError:
        assert [{k: v for k, v in g.items() if k != "initial_lr"} for g in opt.param_groups] == [
            {k: v for k, v in g.items() if k != "initial_lr"} for g in before
        ]


def test_what_torch_accepts_is_accepted():
    """Python's truth for the flags, a gamma read by "exp_range" only, the bounds of
    each range, and the NaN that torch's comparisons let through (its LRs NaN too)."""
    S.OneCycleLR(sgd(momentum=0.9), 0.1, total_steps=9, cycle_momentum=1, three_phase=0)
    S.OneCycleLR(sgd(momentum=0.9), 0.1, total_steps=True)
    S.OneCycleLR(sgd(momentum=0.9), 0.1, total_steps=2, pct_start=1.0)
    S.CyclicLR(sgd(momentum=0.9), 0.01, 0.1, gamma="unused", cycle_momentum=0)
    S.CosineAnnealingWarmRestarts(sgd(), T_0=1, T_mult=True, eta_min=np.float64(0.5))
    S.ReduceLROnPlateau(sgd(), factor=float("nan"), min_lr=(0.0, 0.1))
    fo.swa_utils.SWALR(sgd(), swa_lr=[0.1, 0.2], anneal_epochs=0, anneal_strategy="linear")
    opt = sgd()
    sched = S.CosineAnnealingLR(opt, T_max=4, eta_min=float("nan"))
    opt.step()
    sched.step()
    assert all(math.isnan(lr) for lr in lrs(opt))  # as torch's


def test_a_count_given_as_a_float_without_a_fraction_is_the_int():
    """`total_iters=epochs / 10` works as in torch; a fraction of a step is refused."""
    runs = []
    for total_iters in (4, 4.0, np.float64(4.0)):
        opt = sgd()
        sched = S.LinearLR(opt, start_factor=0.2, total_iters=total_iters)
        seen = [lrs(opt)]
        for _ in range(6):
            opt.step()
            sched.step()
            seen.append(lrs(opt))
        runs.append(seen)
    assert runs[1] == runs[0] and runs[2] == runs[0]
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        S.StepLR(sgd(), step_size=1.5)


def test_a_plateau_state_of_an_unknown_mode_is_refused_and_changes_nothing():
    sched = S.ReduceLROnPlateau(sgd())
    state = sched.state_dict()
    with pytest.raises(ValueError, match="threshold mode x is unknown!"):
        sched.load_state_dict(dict(state, threshold_mode="x", patience=99))
    assert sched.state_dict() == state


def test_one_cycle_refuses_stepping_past_the_end():
    opt = sgd(momentum=0.9)
    sched = S.OneCycleLR(opt, 0.1, total_steps=3)
    for _ in range(2):
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        sched.step()
        sched.step()


# ------------------------------------------------------------------------ warnings
def test_scheduler_before_optimizer_warns():
    opt = sgd()
    sched = S.StepLR(opt, 2)
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        sched.step()


def test_optimizer_step_overridden_warns():
    opt = sgd()
    sched = S.StepLR(opt, 2)
    opt.step = lambda *a, **k: None
    with pytest.warns(UserWarning, match=r"Seems like `optimizer.step\(\)` has been overridden"):
        sched.step()


def test_right_order_does_not_warn():
    opt = sgd()
    sched = S.ExponentialLR(opt, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            opt.step()
            sched.step()


def test_get_lr_outside_step_warns_and_epoch_argument_is_deprecated():
    opt = sgd()
    sched = S.StepLR(opt, 2, gamma=0.5)
    with pytest.warns(UserWarning, match=r"please use `get_last_lr\(\)`"):
        sched.get_lr()
    opt.step()
    with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
        sched.step(5)  # the closed form: 0.1 · 0.5^(5 // 2)
    assert lrs(opt) == pytest.approx([0.1 * 0.25, 0.01 * 0.25], rel=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda o: S.StepLR(o, 3, gamma=0.5),
        lambda o: S.MultiStepLR(o, [2, 5, 5], gamma=0.5),
        lambda o: S.ConstantLR(o, factor=0.5, total_iters=4),
        lambda o: S.LinearLR(o, start_factor=0.25, total_iters=6),
        lambda o: S.ExponentialLR(o, 0.9),
        lambda o: S.PolynomialLR(o, total_iters=8, power=1.5),
        lambda o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    ],
)
def test_closed_form_agrees_with_the_chainable_form(make):
    opt = sgd()
    sched = make(opt)
    for epoch in range(1, 15):
        opt.step()
        sched.step()
        chained = lrs(opt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched.step(epoch)
        assert lrs(opt) == pytest.approx(chained, rel=1e-12)


def test_warm_restarts_take_fractional_epochs():
    opt = sgd(lrs=(0.1,))
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2, eta_min=0.0)
    for epoch, t_cur, t_i in [(0.5, 0.5, 4), (3.75, 3.75, 4), (4.5, 0.5, 8), (13.0, 1.0, 16)]:
        opt.step()
        sched.step(epoch)
        assert (sched.T_cur, sched.T_i) == (t_cur, t_i)
        assert lrs(opt)[0] == pytest.approx(0.05 * (1 + math.cos(math.pi * t_cur / t_i)), rel=1e-14)
        assert sched.last_epoch == math.floor(epoch)


# ------------------------------------------------------------- momentum and betas
def test_cyclic_lr_cycles_adams_beta1():
    opt = adam()
    sched = S.CyclicLR(opt, base_lr=0.001, max_lr=0.01, step_size_up=2, base_momentum=0.8, max_momentum=0.9)
    seen = []
    for _ in range(4):
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]))
        opt.step()
        sched.step()
    assert [b[0] for _, b in seen] == pytest.approx([0.9, 0.85, 0.8, 0.85])
    assert all(b[1] == 0.99 for _, b in seen)
    assert [lr for lr, _ in seen] == pytest.approx([0.001, 0.0055, 0.01, 0.0055])


def test_cyclic_lr_custom_scale_fn_and_pickling():
    class Halving:
        def __init__(self):
            self.base = 0.5

        def __call__(self, x):
            return self.base ** (x - 1)

    opt = sgd(momentum=0.9)
    fn = Halving()
    sched = S.CyclicLR(opt, 0.01, 0.1, step_size_up=2, scale_fn=fn, scale_mode="cycle")
    for _ in range(6):
        opt.step()
        sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    assert state["_scale_fn_custom"] == {"base": 0.5}  # a callable object keeps its attributes
    lam = S.CyclicLR(sgd(momentum=0.9), 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert pickle.loads(pickle.dumps(lam.state_dict()))["_scale_fn_custom"] is None


def test_one_cycle_with_adam_cycles_beta1():
    opt = adam()
    sched = S.OneCycleLR(opt, max_lr=0.01, total_steps=10)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)
    for _ in range(2):
        opt.step()
        sched.step()
    # the peak, at step 0.3·10 − 1 = 2: max_lr, and the base momentum
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.85, abs=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01, rel=1e-12)


# ----------------------------------------------------------------- state and pickle
def test_lambda_schedulers_state_dict_pickles_without_the_lambdas():
    opt = sgd()
    sched = S.LambdaLR(opt, [lambda e: 0.9**e, lambda e: 1.0 / (e + 1)])
    for _ in range(3):
        opt.step()
        sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    assert state["lr_lambdas"] == [None, None] and state["last_epoch"] == 3
    seq = S.SequentialLR(opt, [S.MultiplicativeLR(opt, lambda e: 0.5), S.ExponentialLR(opt, 0.9)], milestones=[2])
    state = pickle.loads(pickle.dumps(seq.state_dict()))
    assert state["_schedulers"][0]["lr_lambdas"] == [None, None]


# ------------------------------------------------- ReduceLROnPlateau in composites
def test_plateau_inside_chained_scheduler():
    opt = sgd()
    chained = S.ChainedScheduler([S.ExponentialLR(opt, 0.9), S.ReduceLROnPlateau(opt, factor=0.5, patience=0)])
    alone_opt = sgd()
    exp, plateau = S.ExponentialLR(alone_opt, 0.9), S.ReduceLROnPlateau(alone_opt, factor=0.5, patience=0)
    for metric in [1.0, 2.0, 0.5, 0.6, 0.7]:
        opt.step()
        alone_opt.step()
        chained.step(metric)
        exp.step()
        plateau.step(metric)
        assert lrs(opt) == lrs(alone_opt)
    assert chained.get_last_lr() == lrs(opt)
    with pytest.raises(TypeError, match="holds a ReduceLROnPlateau: call step\\(metrics\\)"):
        chained.step()


def test_plateau_after_warmup_in_sequential_lr():
    opt = sgd(lrs=(0.1,))
    warmup = S.LinearLR(opt, start_factor=0.5, total_iters=2)
    plateau = S.ReduceLROnPlateau(opt, factor=0.1, patience=1)
    seq = S.SequentialLR(opt, [warmup, plateau], milestones=[2])
    seen = [lrs(opt)[0]]
    for metric in [5.0, 4.0, 3.0, 3.0, 3.0, 3.0]:
        opt.step()
        seq.step(metric)
        seen.append(lrs(opt)[0])
    # warm-up 0.05 → 0.075; at the milestone the plateau starts from the initial LR and
    # records 3.0; two epochs without improvement (patience 1) divide it by 10
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.1, 0.01, 0.01])
    assert seq.get_last_lr() == lrs(opt)
    state = pickle.loads(pickle.dumps(seq.state_dict()))
    assert state["_schedulers"][1]["best"] == 3.0


def test_plateau_first_in_sequential_lr():
    opt = sgd(lrs=(0.1,))
    seq = S.SequentialLR(opt, [S.ReduceLROnPlateau(opt, factor=0.5, patience=0), S.ExponentialLR(opt, 0.5)], [4])
    for metric in [1.0, 2.0, 2.0]:
        opt.step()
        seq.step(metric)
    assert lrs(opt) == pytest.approx([0.025])
    opt.step()
    seq.step()  # the milestone: ExponentialLR from the initial LR
    assert lrs(opt) == pytest.approx([0.1])


# ------------------------------------------------------------------------- preview
def test_preview_leaves_everything_as_it_was_and_prints():
    opt = sgd(momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    groups = [dict(g, params=None) for g in opt.param_groups]
    state = sched.state_dict()
    table = S.preview(sched, 19)
    assert table.lr.shape == (20, 2) and table.momentum.shape == (20, 2)
    assert table.lr[:, 0].max() == pytest.approx(1.0)
    assert [dict(g, params=None) for g in opt.param_groups] == groups
    assert sched.state_dict() == state
    assert "momentum[1]" in str(table)
    with pytest.raises(ValueError, match="give preview the metrics"):
        S.preview(S.ReduceLROnPlateau(opt), 3)
    table = S.preview(S.ReduceLROnPlateau(opt, patience=0), 3, metrics=lambda k: float(k))
    assert table.lr[-1, 0] == pytest.approx(table.lr[0, 0] * 0.01)
    assert S.preview(S.StepLR(sgd(), 1), 2).momentum is not None  # SGD's momentum 0 is a momentum too


def test_preview_of_a_schedule_on_adam_shows_beta1():
    table = S.preview(S.CyclicLR(adam(), 0.001, 0.01, step_size_up=2), 4)
    assert table.momentum[:, 0] == pytest.approx([0.9, 0.85, 0.8, 0.85, 0.9])


# ---------------------------------------------------------------------- subclassing
def test_a_subclass_written_like_a_torch_one():
    class Halve(S.LRScheduler):
        def get_lr(self):
            if self.last_epoch == 0:
                return [g["lr"] for g in self.optimizer.param_groups]
            return [g["lr"] / 2 for g in self.optimizer.param_groups]

    opt = sgd()
    sched = Halve(opt)
    assert sched.base_lrs == [0.1, 0.01] and sched.last_epoch == 0
    for _ in range(3):
        opt.step()
        sched.step()
    assert lrs(opt) == pytest.approx([0.0125, 0.00125])
    assert sched.get_last_lr() == lrs(opt)


# ---------------------------------------------------------------- formulas in the core
# The schedulers below take their formulas from the core crate (ferroptim::lr_scheduler)
# through _core.lr_rule; the class keeps torch's attributes.


def test_an_attribute_changed_between_steps_takes_effect_as_in_torch():
    opt = sgd()
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    sched.gamma = 0.1
    opt.step()
    sched.step()
    assert lrs(opt) == pytest.approx([0.1 * 0.5 * 0.1, 0.01 * 0.5 * 0.1], rel=1e-15)
    opt.step()
    with pytest.warns(UserWarning, match="The epoch parameter"):
        sched.step(5)  # the closed form reads the attributes too
    assert lrs(opt) == pytest.approx([0.1 * 0.1**5, 0.01 * 0.1**5], rel=1e-15)


def test_a_subclass_of_a_core_scheduler_overrides_get_lr():
    class Floored(S.ExponentialLR):
        def get_lr(self):
            return [max(lr, 0.05) for lr in super().get_lr()]

    opt = sgd()
    sched = Floored(opt, gamma=0.5)
    seen = []
    for _ in range(3):
        opt.step()
        sched.step()
        seen.append(lrs(opt))
    assert seen == [[0.05, 0.05], [0.05, 0.05], [0.05, 0.05]]


def test_an_lr_lambda_that_raises_stops_the_step_with_its_exception():
    calls = []

    def fine(epoch):
        calls.append(epoch)
        return 1.0

    def fails(epoch):
        if epoch == 2:
            raise RuntimeError("no factor for epoch 2")
        return np.float32(0.5)  # any real number type

    opt = sgd()
    sched = S.LambdaLR(opt, [fails, fine])
    opt.step()
    sched.step()
    assert lrs(opt) == [0.05, 0.01] and calls == [0, 1]
    opt.step()
    with pytest.raises(RuntimeError, match="no factor for epoch 2"):
        sched.step()
    assert calls == [0, 1], "the functions after the one that raised are not called"
    assert lrs(opt) == [0.05, 0.01], "no LR changed"


@pytest.mark.parametrize(
    "make, steps",
    [
        # torch raises ZeroDivisionError at the first; at the second it steps on with an
        # infinite LR, which is refused here
        (lambda o: S.ConstantLR(o, factor=0.0, total_iters=2), 2),
        (lambda o: S.ExponentialLR(o, gamma=1e10), 40),
    ],
)
def test_an_lr_a_formula_makes_infinite_is_an_arithmetic_error(make, steps):
    opt = sgd()
    sched = make(opt)
    with pytest.raises(ArithmeticError, match="division by zero or an overflow"):
        for _ in range(steps):
            opt.step()
            sched.step()
    assert all(math.isfinite(lr) for lr in lrs(opt))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda o: S.StepLR(o, step_size=0), "Expected nonzero integer step_size, but got 0"),
        (lambda o: S.CosineAnnealingLR(o, T_max=0), "Expected nonzero integer T_max, but got 0"),
    ],
)
def test_a_divisor_of_zero_is_refused_before_the_groups_change(make, match):
    """torch would divide by zero at the second step; here the constructor refuses,
    leaving the groups as they were (no initial_lr recorded)."""
    opt = sgd()
    with pytest.raises(ValueError, match=match):
        make(opt)
    assert all("initial_lr" not in g for g in opt.param_groups)


def test_a_scheduler_refused_by_the_rules_checks_leaves_the_groups_as_they_were():
    opt = sgd()
    with pytest.raises(ValueError, match="Constant multiplicative factor"):
        S.ConstantLR(opt, factor=1.5)
    assert all("initial_lr" not in g for g in opt.param_groups)


def test_step_lr_with_a_negative_step_size_jumps_by_floor_division():
    opt = sgd(lrs=(1.0, 1.0))
    sched = S.StepLR(opt, step_size=-3, gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match="The epoch parameter"):
        sched.step(4)  # torch: gamma ** (4 // -3) = gamma ** -2
    assert lrs(opt) == [4.0, 4.0]


def test_cyclic_lr_asks_its_scale_fn_as_torch_does():
    """A subclass's scale_fn is used; it gets ints (the cycle), once per group for the
    LRs and once per group for the momenta; an exception it raises stops the step."""
    calls = []

    class Quartered(S.CyclicLR):
        def scale_fn(self, x):
            calls.append(x)
            if x == 3:
                raise RuntimeError("no scale for cycle 3")
            return 0.25

    opt = sgd(momentum=0.9)
    sched = Quartered(opt, 0.01, 0.1, step_size_up=1)
    assert calls == [1, 1, 1, 1] and all(type(x) is int for x in calls)
    opt.step()
    sched.step()  # the peak: base + (max - base) * 1 * 0.25
    assert lrs(opt) == pytest.approx([0.01 + 0.09 * 0.25] * 2, rel=1e-15)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9 - 0.1 * 0.25, rel=1e-15)
    for _ in range(2):
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(RuntimeError, match="no scale for cycle 3"):
        sched.step()


def test_cyclic_lr_builtin_scale_fn_is_the_modes():
    opt = sgd(momentum=0.9)
    assert S.CyclicLR(opt, 0.01, 0.1, mode="triangular2").scale_fn(3) == 0.25
    assert S.CyclicLR(sgd(momentum=0.9), 0.01, 0.1, mode="exp_range", gamma=0.5).scale_fn(3) == 0.125
    assert S.CyclicLR(sgd(momentum=0.9), 0.01, 0.1).scale_fn(7) == 1.0


def test_one_cycle_keeps_torchs_phases():
    sched = S.OneCycleLR(sgd(momentum=0.9), max_lr=0.1, total_steps=10, three_phase=True)
    assert sched.state_dict()["_schedule_phases"] == [
        {"end_step": 2.0, "start_lr": "initial_lr", "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
        {"end_step": 4.0, "start_lr": "max_lr", "end_lr": "initial_lr", "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
        {"end_step": 9, "start_lr": "initial_lr", "end_lr": "min_lr", "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
    ]
    assert [type(p["end_step"]) for p in sched._schedule_phases] == [float, float, int]


def test_warm_restarts_refuse_a_negative_epoch_and_change_nothing():
    opt = sgd()
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=3)
    opt.step()
    sched.step()
    before = (sched.T_cur, sched.T_i, sched.last_epoch, lrs(opt))
    for epoch in (-1, -0.5):
        with pytest.raises(ValueError, match=f"Expected non-negative epoch, but got {epoch}$"):
            sched.step(epoch)
        assert (sched.T_cur, sched.T_i, sched.last_epoch, lrs(opt)) == before
