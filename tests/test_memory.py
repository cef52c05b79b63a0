"""Steps after the first allocate nothing proportional to the parameters (SPEC §4)."""

import sys

import numpy as np
import pytest

import ferroptim as fo

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


def _status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) * 1024


def _peak_growth(fn):
    """Bytes the resident peak rises above the current resident size while fn runs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak (VmHWM) to the current size
    except OSError:
        pytest.skip("cannot reset the peak resident size here")
    before = _status("VmRSS:")
    fn()
    return _status("VmHWM:") - before


@pytest.mark.parametrize("cls,kw", [(fo.Adam, {"amsgrad": True}), (fo.SGD, {"momentum": 0.9}), (fo.AdamW, {})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_allocation_proportional_to_parameters(cls, kw, dtype):
    p = fo.Parameter(np.ones(8_000_000, dtype))  # 32 or 64 MB
    p.grad = np.full(p.data.shape, 0.5, dtype)
    opt = cls([p], **kw)
    opt.step()  # creates the state
    growth = _peak_growth(lambda: [opt.step() for _ in range(3)])
    assert growth < p.data.nbytes // 8, f"peak grew by {growth} bytes"
