"""Replays bitsandbytes' 8-bit optimizers (tests/reference/bnb-8bit, recorded from
bitsandbytes 0.50.2 on CPU): after every step all but 0.5% of the parameter elements
within 2e-5 relative of bitsandbytes; at the end at least 99.5% of the uint8 codes
identical, absmax to 1e-5 relative, the maps and every other state entry identical.
The figures measured are printed (``pytest -s``); most are exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import ferroptim as fo

ROOT = Path(__file__).parent / "reference" / "bnb-8bit"
with open(ROOT / "optimizers.json") as f:
    CASES = json.load(f)["cases"]

RTOL = 2e-5
ABSMAX_RTOL = 1e-5
#: the share of elements allowed to differ (a value that lands on a boundary between two
#: codes after a last-bit difference in float32 rounding takes the other code)
SLACK = 0.005


def kwargs(case: Dict[str, Any]) -> Dict[str, Any]:
    kw = {k: (tuple(v) if k == "betas" else v) for k, v in case["kwargs"].items()}
    kw.setdefault("min_8bit_size", 1)  # as recorded: every parameter 8-bit unless the case says
    return kw


def close(got: np.ndarray, want: np.ndarray, rtol: float) -> np.ndarray:
    return np.abs(got.astype(np.float64) - want) <= rtol * np.abs(want.astype(np.float64)) + 1e-30


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_replays_bitsandbytes(case: Dict[str, Any]) -> None:
    with np.load(ROOT / "optimizers" / f"{case['id']}.npz") as z:
        data = {k: z[k] for k in z.files}
    params = [fo.Parameter(data[f"init/{i}"].copy()) for i in range(len(case["shapes"]))]
    opt = getattr(fo, case["optimizer"])(params, **kwargs(case))
    worst = 0.0
    for t in range(case["steps"]):
        for i, p in enumerate(params):
            p.grad = data[f"grad/{t}/{i}"]
        opt.step()
        for i, p in enumerate(params):
            ok = close(p.data, data[f"traj/{i}"][t + 1], RTOL)
            worst = max(worst, 1.0 - ok.mean())
            assert ok.mean() >= 1.0 - SLACK, f"step {t + 1}, param {i}: {np.count_nonzero(~ok)} of {ok.size} differ"
    codes_same, n_codes = 0, 0
    for i, p in enumerate(params):
        state = opt.state[p]
        assert set(state) == set(case["state"][str(i)]), f"param {i}: state keys"
        for key, meta in case["state"][str(i)].items():
            if "value" in meta:
                assert float(state[key]) == meta["value"], f"param {i}: {key}"
                continue
            want = data[f"state/{i}/{key}"]
            got = state[key]
            assert got.dtype == want.dtype and got.shape == want.shape, f"param {i}: {key} {got.dtype}{got.shape}"
            if key in ("state1", "state2") and got.dtype == np.uint8:
                codes_same += int(np.count_nonzero(got == want))
                n_codes += got.size
            elif key.startswith("absmax"):
                assert close(got, want, ABSMAX_RTOL).all(), f"param {i}: {key}"
            elif key.startswith("qmap"):
                np.testing.assert_array_equal(got, want, err_msg=f"param {i}: {key}")
            else:  # float32 state of a parameter below min_8bit_size
                ok = close(got, want, RTOL)
                assert ok.mean() >= 1.0 - SLACK, f"param {i}: {key}"
    share = codes_same / n_codes if n_codes else 1.0
    print(f"\n{case['id']}: parameters worst step {100 * worst:.3f}% off, codes {100 * share:.3f}% identical")
    assert share >= 1.0 - SLACK
