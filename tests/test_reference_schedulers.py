"""Every scheduler table of tests/reference/torch-2.15/schedulers.json replays: the LR
(and momentum) of both param groups after every scheduler step, to 1e-12 relative
(a scheduler's arithmetic is Python floats, as in torch)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import ferroptim as fo
from reference_data import load

CASES = load("schedulers.json")
RTOL = 1e-12


def case_id(case):
    kw = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
    return f"{case['scheduler']}({kw})"


def make_optimizer(case):
    p1, p2 = fo.Parameter(np.zeros(2)), fo.Parameter(np.zeros(3))
    okw = case.get("optimizer_kwargs") or {}
    return fo.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.01}], lr=0.1, **okw)


def make_scheduler(name, kwargs, opt):
    kw = dict(kwargs)
    if "lr_lambda" in kw:
        kw["lr_lambda"] = eval("lambda epoch: " + kw["lr_lambda"])  # noqa: S307 - the reference's expressions
    return getattr(fo.lr_scheduler, name)(opt, **kw)


def build(case):
    opt = make_optimizer(case)
    if case.get("sub"):
        subs = [make_scheduler(n, k, opt) for n, k in case["sub"]]
        if case["scheduler"] == "SequentialLR":
            sched = fo.lr_scheduler.SequentialLR(opt, subs, **case["kwargs"])
        else:
            sched = fo.lr_scheduler.ChainedScheduler(subs)
    else:
        sched = make_scheduler(case["scheduler"], case["kwargs"], opt)
    return opt, sched


def step(case, opt, sched, e):
    opt.step()
    if case["scheduler"] == "ReduceLROnPlateau":
        sched.step(case["metrics"][e])
    else:
        sched.step()


def check_row(case, opt, k):
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], case["expected_lr"][k], rtol=RTOL, atol=0)
    if "expected_momentum" in case:
        got = [g["momentum"] for g in opt.param_groups]
        np.testing.assert_allclose(got, case["expected_momentum"][k], rtol=RTOL, atol=0)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_replays_torch(case):
    opt, sched = build(case)
    check_row(case, opt, 0)
    for e in range(case["epochs"]):
        step(case, opt, sched, e)
        check_row(case, opt, e + 1)
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("at", [1, 7, 20])
def test_resume_mid_run_gives_the_same_lrs(case, at):
    """Stop after ``at`` steps, save optimizer and scheduler (through pickle), build
    both again, load, and go on: the LRs are the uninterrupted run's."""
    opt, sched = build(case)
    for e in range(at):
        step(case, opt, sched, e)
    saved = pickle.loads(pickle.dumps((opt.state_dict(), sched.state_dict())))
    opt2, sched2 = build(case)
    opt2.load_state_dict(saved[0])
    sched2.load_state_dict(saved[1])
    check_row(case, opt2, at)
    for e in range(at, case["epochs"]):
        step(case, opt2, sched2, e)
        check_row(case, opt2, e + 1)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_preview_matches_the_run(case):
    opt, sched = build(case)
    before = [dict(g, params=None) for g in opt.param_groups]
    metrics = case["metrics"] if case["scheduler"] == "ReduceLROnPlateau" else None
    table = fo.lr_scheduler.preview(sched, case["epochs"], metrics=metrics)
    assert [dict(g, params=None) for g in opt.param_groups] == before  # nothing moved
    np.testing.assert_allclose(table.lr, case["expected_lr"], rtol=RTOL, atol=0)
    if "expected_momentum" in case:
        np.testing.assert_allclose(table.momentum, case["expected_momentum"], rtol=RTOL, atol=0)
    # and the real run still gives the same numbers afterwards
    test_replays_torch(case)
