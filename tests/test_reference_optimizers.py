"""Every optimizer replays torch 2.13's recorded trajectories: parameters after every
step, losses, final state and param groups (tests/reference/torch-2.13)."""

import math

import numpy as np
import pytest

import ferroptim as fo
from reference_data import arrays, as_lists, assert_close, assert_close_scaled, build, load, muon_path, set_grads
from reference_data import MUON_PATH_FRACTION, MUON_RTOL

CASES = load("optimizers.json")



def assert_close_lbfgs(actual, expected, what):
    """L-BFGS's history vectors: differences of gradients, which near the optimum are
    themselves at float64's rounding floor (|g| ~ 1e-7 summed from terms of order 1-100,
    so ~1e-14 absolute noise in any implementation), accumulated over 37 iterations.
    Each vector must agree to 1e-8 of its largest entry, plus 1e-13 absolute
    (measured worst: 1.2e-9 of the largest entry, and 7e-15 on a direction of 2e-8
    at the optimum); trajectories and losses keep the plain 1e-9 relative contract."""
    err = float(np.max(np.abs(np.asarray(actual) - expected), initial=0.0))
    bound = 1e-8 * float(np.max(np.abs(expected), initial=0.0)) + 1e-13
    assert err <= bound, f"{what}: off by {err:.3e} (allowed {bound:.3e})"


def implemented(case):
    return hasattr(fo, case["optimizer"])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_replays_torch(case):
    if not implemented(case):
        pytest.skip(f"{case['optimizer']} is not in ferroptim yet")
    data = arrays(case)
    opt, params = build(case, data)
    dtype = case["dtype"]
    for t in range(case["steps"]):
        if case["optimizer"] == "LBFGS":  # the closure evaluates; step returns its first loss
            loss = float(opt.step(lambda: set_grads(case, data, params, t)))
        else:
            loss = set_grads(case, data, params, t)
        if case["mode"] == "objective":
            expected = case["losses"][t]
            rel = MUON_RTOL if case["optimizer"] == "Muon" else 1e-9
            assert (math.isnan(loss) and math.isnan(expected)) or loss == pytest.approx(expected, rel=rel), f"loss {t}"
        if case["optimizer"] != "LBFGS":
            opt.step()
        for i, p in enumerate(params):
            what = f"param {i} after step {t + 1}"
            if case["optimizer"] == "Muon":  # bfloat16 in torch: see reference_data.MUON_PATH_FRACTION
                atol = MUON_PATH_FRACTION * muon_path(case, p.data.shape, t + 1)
                assert_close_scaled(p.data, data[f"traj/{i}"][t + 1], atol, what)
            else:
                assert_close(p.data, data[f"traj/{i}"][t + 1], dtype, what)
        for p in params:
            p.grad = None

    sd = opt.state_dict()
    assert set(sd["state"]) == {int(k) for k in case["state"]}
    for idx, entries in case["state"].items():
        mine = sd["state"][int(idx)]
        assert set(mine) == set(entries), f"state keys of param {idx}"
        for key, spec in entries.items():
            value = mine[key]
            if spec["kind"] == "array":
                assert isinstance(value, np.ndarray), key
                assert value.shape == tuple(spec["shape"]) and str(value.dtype) == spec["dtype"], key
                expected = data[f"state/{idx}/{key}"]
                if case["optimizer"] == "LBFGS":
                    assert_close_lbfgs(value, expected, f"state {idx} {key}")
                elif case["optimizer"] == "Muon":
                    atol = MUON_RTOL * float(np.max(np.abs(expected)))
                    assert_close_scaled(value, expected, atol, f"state {idx} {key}")
                else:
                    assert_close(value, expected, dtype, f"state {idx} {key}")
            elif spec["kind"] == "array_list":
                assert len(value) == spec["len"], key
                for j, v in enumerate(value):
                    assert_close_lbfgs(v, data[f"state/{idx}/{key}/{j}"], f"state {idx} {key}[{j}]")
            elif spec["kind"] == "scalar":
                assert value == pytest.approx(spec["value"], rel=1e-9), key
            elif spec["kind"] == "other":  # L-BFGS's scratch list `al`: recorded by repr only
                assert isinstance(value, list), key
            else:
                raise AssertionError(f"unexpected reference kind {spec['kind']}")
    assert [as_lists(g) for g in sd["param_groups"]] == case["param_groups"]
