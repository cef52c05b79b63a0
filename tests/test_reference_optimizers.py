"""Every optimizer replays torch 2.15's recorded trajectories: parameters after every
step, losses, final state and param groups (tests/reference/torch-2.15)."""

import math

import numpy as np
import pytest

import ferroptim as fo
from reference_data import arrays, as_lists, assert_close, build, final_state, load, set_grads
from reference_data import MUON_RTOL

CASES = load("optimizers.json")



def assert_close_lbfgs(actual, expected, scale, what):
    """L-BFGS's history vectors are differences of gradients (and steps), which as the
    run converges are themselves at float64's rounding floor: rounding noise of order
    1e-16 × the problem's gradient scale, accumulated over the iterations, in torch
    and here alike. Each vector must agree to 1e-9 of ``scale`` (the largest entry of
    its whole list, i.e. the scale the differences were taken at) plus 1e-11
    absolute (the gradient noise of parameters that agree to 1e-13: measured 6e-13).
    Trajectories and losses keep the plain 1e-9 relative contract."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    finite = np.isfinite(expected)  # a maximizing run diverges: its NaN / inf entries must match exactly
    np.testing.assert_array_equal(actual[~finite], expected[~finite], err_msg=what)
    err = float(np.max(np.abs(actual[finite] - expected[finite]), initial=0.0))
    bound = 1e-9 * (scale if np.isfinite(scale) else float(np.max(np.abs(expected[finite]), initial=0.0))) + 1e-11
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
            if case["optimizer"] == "Muon":  # bfloat16 in torch: see reference_data.MUON_RTOL
                np.testing.assert_allclose(p.data, data[f"traj/{i}"][t + 1], rtol=MUON_RTOL, atol=0, err_msg=what)
            else:
                assert_close(p.data, data[f"traj/{i}"][t + 1], dtype, what)
        for p in params:
            p.grad = None

    sd = opt.state_dict()
    for idx, key, spec, value, expected in final_state(sd, case, data):
        if spec["kind"] == "array":
            if case["optimizer"] == "LBFGS" and key == "H_diag":  # (y·s)/(y·y) of the last pair
                np.testing.assert_allclose(value, expected, rtol=1e-6, err_msg=f"state {idx} H_diag")
            elif case["optimizer"] == "LBFGS":
                assert_close_lbfgs(value, expected, float(np.max(np.abs(expected), initial=0.0)), f"state {idx} {key}")
            elif case["optimizer"] == "Muon":
                np.testing.assert_allclose(value, expected, rtol=MUON_RTOL, atol=0, err_msg=f"state {idx} {key}")
            else:
                assert_close(value, expected, dtype, f"state {idx} {key}")
        elif spec["kind"] == "array_list":
            assert len(value) == spec["len"], key
            expected = [data[f"state/{idx}/{key}/{j}"] for j in range(spec["len"])]
            scale = max((float(np.max(np.abs(e), initial=0.0)) for e in expected), default=0.0)
            for j, (v, e) in enumerate(zip(value, expected)):
                if key == "ro":  # 1/(y·s) of the pairs above: as exact as y·s, relatively
                    np.testing.assert_allclose(v, e, rtol=1e-6, err_msg=f"state {idx} ro[{j}]")
                else:
                    assert_close_lbfgs(v, e, scale, f"state {idx} {key}[{j}]")
        elif spec["kind"] == "scalar":
            assert value == pytest.approx(spec["value"], rel=1e-9, nan_ok=True), key
        elif spec["kind"] == "other":  # L-BFGS's scratch list `al`: recorded by repr only
            assert isinstance(value, list), key
        else:
            raise AssertionError(f"unexpected reference kind {spec['kind']}")
    assert [as_lists(g) for g in sd["param_groups"]] == case["param_groups"]
