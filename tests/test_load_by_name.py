"""load_state_dict matches parameters by name when both sides carry param_names: a
reordered model loads correctly; strict=True refuses missing / unexpected names and
state that does not fit, strict=False loads what matches and reports the rest."""

from __future__ import annotations

import numpy as np
import pytest

import ferroptim as fo
from helpers import assert_unchanged, snapshot

SHAPES = {"fc1.weight": (4, 3), "fc1.bias": (4,), "fc2.weight": (2, 4), "fc2.bias": (2,)}


def model(order, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    values = {n: rng.standard_normal(s) for n, s in shapes.items()}
    return [(n, fo.Parameter(values[n].copy())) for n in order]


def train(named, steps, seed=1):
    opt = fo.Adam(named, lr=0.01)
    rng = np.random.default_rng(seed)
    grads = {n: [rng.standard_normal(p.data.shape) for _ in range(steps)] for n, p in sorted(named, key=lambda x: x[0])}
    for k in range(steps):
        for n, p in named:
            p.grad = grads[n][k]
        opt.step()
    return opt


def test_a_reordered_model_loads_each_state_under_its_name():
    order = list(SHAPES)
    named = model(order)
    opt = train(named, 3)
    reordered = model(order[::-1])
    opt2 = fo.Adam(reordered, lr=0.01)
    report = opt2.load_state_dict(opt.state_dict())
    assert not report
    for n, p in reordered:
        q = dict(named)[n]
        np.testing.assert_array_equal(opt2.state[p]["exp_avg"], opt.state[q]["exp_avg"])
    assert opt2.param_groups[0]["param_names"] == order[::-1]


def test_regrouped_parameters_load_by_name_with_group_hyperparameters_by_position():
    named = model(list(SHAPES))
    opt = fo.SGD([{"params": named[:2], "lr": 0.1}, {"params": named[2:], "lr": 0.2}], momentum=0.9)
    for _, p in named:
        p.grad = np.ones(p.data.shape)
    opt.step()
    again = model(list(SHAPES))
    opt2 = fo.SGD([{"params": again[:1], "lr": 1.0}, {"params": again[1:], "lr": 2.0}], momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in opt2.param_groups] == [0.1, 0.2]
    for n, p in again:
        np.testing.assert_array_equal(opt2.state[p]["momentum_buffer"], opt.state[dict(named)[n]]["momentum_buffer"])


def test_strict_refuses_missing_and_unexpected_names_and_changes_nothing():
    opt = train(model(list(SHAPES)), 2)
    other = model(["fc1.weight", "fc1.bias", "fc3.weight"], shapes=dict(SHAPES, **{"fc3.weight": (3, 3)}))
    opt2 = train(other, 1)
    before = snapshot(opt2)
    with pytest.raises(ValueError, match="missing: fc3.weight; unexpected: fc2.weight, fc2.bias"):
        opt2.load_state_dict(opt.state_dict())
    assert_unchanged(opt2, before)


def test_non_strict_loads_what_matches_and_reports_the_rest():
    opt = train(model(list(SHAPES)), 2)
    shapes = dict(SHAPES, **{"fc3.weight": (3, 3), "fc2.bias": (5,)})
    other = model(["fc1.weight", "fc3.weight", "fc2.bias", "fc1.bias"], shapes=shapes)
    opt2 = fo.Adam(other, lr=0.01)
    report = opt2.load_state_dict(opt.state_dict(), strict=False)
    assert report.missing == ["fc3.weight"]
    assert report.unexpected == ["fc2.weight"]
    assert len(report.mismatched) == 1 and "fc2.bias" in report.mismatched[0]
    loaded = {n for n, p in other if p in opt2.state and opt2.state[p]}
    assert loaded == {"fc1.weight", "fc1.bias"}
    same_names = model(list(SHAPES), shapes=dict(SHAPES, **{"fc2.bias": (5,)}))
    opt3 = fo.Adam(same_names, lr=0.01)
    before = snapshot(opt3)
    with pytest.raises(ValueError, match=r"'fc2.bias'.*'exp_avg' has shape \(2,\) but should have shape \(5,\)"):
        opt3.load_state_dict(opt.state_dict())  # strict: state that does not fit is refused
    assert_unchanged(opt3, before)


def test_without_names_position_as_torch_with_shapes_checked():
    plain = [fo.Parameter(np.zeros(s)) for s in SHAPES.values()]
    opt = fo.Adam(plain, lr=0.01)
    for p in plain:
        p.grad = np.ones(p.data.shape)
    opt.step()
    swapped = [fo.Parameter(np.zeros(s)) for s in list(SHAPES.values())[::-1]]
    opt2 = fo.Adam(swapped, lr=0.01)
    before = snapshot(opt2)
    with pytest.raises(ValueError, match=r"'exp_avg' has shape \(4, 3\) but should have shape \(2,\)"):
        opt2.load_state_dict(opt.state_dict())
    assert_unchanged(opt2, before)
