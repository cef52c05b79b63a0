"""Every optimizer replays torch 2.13's recorded trajectories: parameters after every
step, losses, final state and param groups (tests/reference/torch-2.13)."""

import math

import numpy as np
import pytest

import ferroptim as fo
from reference_data import arrays, as_lists, assert_close, build, load, set_grads

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
            assert (math.isnan(loss) and math.isnan(expected)) or loss == pytest.approx(expected, rel=1e-9), f"loss {t}"
        opt.step()
        for i, p in enumerate(params):
            assert_close(p.data, data[f"traj/{i}"][t + 1], dtype, f"param {i} after step {t + 1}")
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
                assert_close(value, data[f"state/{idx}/{key}"], dtype, f"state {idx} {key}")
            elif spec["kind"] == "scalar":
                assert value == spec["value"], key
            else:
                raise AssertionError(f"unexpected reference kind {spec['kind']}")
    assert [as_lists(g) for g in sd["param_groups"]] == case["param_groups"]
