"""``_core.bucket_pack`` / ``_core.bucket_unpack_``: the copies ``ferroptim.distributed``
packs gradients with, and their checks at the boundary."""

import numpy as np
import pytest

from ferroptim import _core


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pack_then_unpack_is_concatenate_then_divide(dtype):
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (0,), (1,), (7,), (100_003,)]]
    out = np.empty(sum(p.size for p in parts), dtype)
    _core.bucket_pack(parts, out)
    assert out.tobytes() == np.concatenate([p.ravel() for p in parts]).tobytes()
    back = [np.empty_like(p) for p in parts]
    _core.bucket_unpack_(out, back, 3.0)
    for p, b in zip(parts, back):
        assert b.tobytes() == (p / dtype(3)).tobytes()
    # non-contiguous parts: read through a copy, written back
    strided = [np.zeros((4, 6), dtype)[:, ::2], np.zeros(5, dtype)]
    _core.bucket_unpack_(np.arange(17, dtype=dtype), strided, 1.0)
    assert strided[0].ravel().tolist() == list(range(12)) and strided[1].tolist() == list(range(12, 17))


def test_bad_input_is_refused_before_anything_is_written():
    a, b = np.ones(3, np.float32), np.ones(2, np.float32)
    out = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="the out has 4 elements, the parts 5"):
        _core.bucket_pack([a, b], np.zeros(4, np.float32))
    with pytest.raises(TypeError, match=r"parts\[1\]: its dtype is not the out's"):
        _core.bucket_pack([a, b.astype(np.float64)], out)
    with pytest.raises(ValueError, match="share memory"):
        _core.bucket_pack([out[:3], b], out)
    buffer = np.arange(5, dtype=np.float32)
    frozen = np.zeros(2, np.float32)
    frozen.flags.writeable = False
    target = np.full(3, 9, np.float32)
    with pytest.raises(ValueError, match=r"parts\[1\]: the array is read-only"):
        _core.bucket_unpack_(buffer, [target, frozen], 1.0)
    assert (target == 9).all()
    with pytest.raises(ValueError, match="share memory"):
        _core.bucket_unpack_(buffer, [buffer[:3], np.zeros(2, np.float32)], 1.0)
