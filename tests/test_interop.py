"""torch interop on the reference data's layouts, without torch: each recorded torch
state (as tensors: objects with detach/cpu/numpy) converts, loads into the same
ferroptim optimizer with the recorded values, and converts back to torch's layout."""

from __future__ import annotations

import numpy as np
import pytest

import ferroptim as fo
from ferroptim.interop import from_torch_state_dict, to_torch_state_dict
from reference_data import arrays, build, load

CASES = [c for c in load("optimizers.json") if c["state"]]


class FakeTensor:
    """What the conversion uses of a torch tensor."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a


def torch_layout(case, data):
    """The state dict torch saved for this case, with fake tensors in it."""
    state = {}
    for idx, entries in case["state"].items():
        s = {}
        for key, spec in entries.items():
            if spec["kind"] == "array":
                s[key] = FakeTensor(data[f"state/{idx}/{key}"])
            elif spec["kind"] == "array_list":
                s[key] = [FakeTensor(data[f"state/{idx}/{key}/{j}"]) for j in range(spec["len"])]
            elif spec["kind"] == "scalar":
                s[key] = spec["value"]
        state[int(idx)] = s
    groups = [dict(g, foreach=None, differentiable=False, capturable=False, fused=None) for g in case["param_groups"]]
    for g in groups:
        for k in ("betas", "etas", "step_sizes", "eps", "ns_coefficients"):
            if isinstance(g.get(k), list):
                g[k] = tuple(g[k])
    return {"state": state, "param_groups": groups}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_torch_state_loads_and_converts_back(case):
    data = arrays(case)
    opt, params = build(case, data)
    torch_sd = torch_layout(case, data)
    opt.load_state_dict(from_torch_state_dict(torch_sd))
    mine = opt.state_dict()
    for idx, entries in torch_sd["state"].items():
        for key, value in entries.items():
            got = mine["state"][idx][key]
            if isinstance(value, FakeTensor):
                want = value.a.astype(got.dtype) if key != "step" else value.a.astype(np.float64)
                np.testing.assert_array_equal(got, want, err_msg=f"{idx}/{key}")
            elif isinstance(value, list):
                assert len(got) == len(value)
            else:
                assert got == pytest.approx(value, nan_ok=True)
    assert all(k not in g for g in mine["param_groups"] for k in ("foreach", "fused"))
    back = to_torch_state_dict(mine, tensor=FakeTensor)
    for idx, entries in back["state"].items():
        for key, value in entries.items():
            if key == "step" and isinstance(value, FakeTensor):
                assert value.a.shape == () and value.a.dtype == np.float32
            elif isinstance(value, FakeTensor):
                np.testing.assert_array_equal(value.a, mine["state"][idx][key])
    again = fo.interop.from_torch_state_dict(back)
    opt.load_state_dict(again)  # and the round trip loads


def test_to_torch_without_torch_says_what_it_needs():
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="install torch, or pass tensor="):
            to_torch_state_dict({"state": {}, "param_groups": []})
    else:  # pragma: no cover - torch is not installed in CI
        assert to_torch_state_dict({"state": {}, "param_groups": []})["state"] == {}
