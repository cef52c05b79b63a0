"""Every optimizer replays torch 2.13's recorded trajectories: parameters after every
step, losses, final state and param groups (tests/reference/torch-2.13)."""

import math

import numpy as np
import pytest

import ferroptim as fo
from reference_data import arrays, as_lists, assert_close, assert_close_scaled, build, load, muon_path, set_grads
from reference_data import MUON_PATH_FRACTION, MUON_RTOL

CASES = load("optimizers.json")


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
        loss = set_grads(case, data, params, t)
        if case["mode"] == "objective":
            expected = case["losses"][t]
            rel = MUON_RTOL if case["optimizer"] == "Muon" else 1e-9
            assert (math.isnan(loss) and math.isnan(expected)) or loss == pytest.approx(expected, rel=rel), f"loss {t}"
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
                if case["optimizer"] == "Muon":
                    atol = MUON_RTOL * float(np.max(np.abs(expected)))
                    assert_close_scaled(value, expected, atol, f"state {idx} {key}")
                else:
                    assert_close(value, expected, dtype, f"state {idx} {key}")
            elif spec["kind"] == "scalar":
                assert value == spec["value"], key
            else:
                raise AssertionError(f"unexpected reference kind {spec['kind']}")
    assert [as_lists(g) for g in sd["param_groups"]] == case["param_groups"]
