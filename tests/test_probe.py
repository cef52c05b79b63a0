"""The benchmark's bandwidth probe (`_core.stream`) computes what it says it does."""

import numpy as np
import pytest

from ferroptim import _core


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("nbuf", [0, 1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 0.0, -0.5])
def test_stream_moves_the_arrays_it_names(dtype, read_only, nbuf, scale):
    rng = np.random.default_rng(nbuf)
    n = 1_100_000  # over the serial threshold: the pool runs it
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    bufs = [rng.standard_normal(n).astype(dtype) for _ in range(nbuf)]
    s = dtype(scale)
    want_p, want_b = p + s * g, [b + s * g for b in bufs]
    if read_only:
        acc = g
        for b in bufs:
            acc = acc + b
        want_p = p + s * acc
        want_b = [b.copy() for b in bufs]
    if scale == 0.0:  # what the benchmark relies on: nothing changes
        want_p, want_b = p.copy(), [b.copy() for b in bufs]
    _core.stream([p], [g], [bufs], read_only=read_only, scale=scale)
    np.testing.assert_array_equal(p, want_p)
    for b, w in zip(bufs, want_b):
        np.testing.assert_array_equal(b, w)


def test_stream_refuses_shared_memory():
    p, g = np.zeros(8), np.zeros(8)
    with pytest.raises(ValueError, match="share memory"):
        _core.stream([p], [g], [[p]], read_only=True)
