"""The benchmark's bandwidth probe (`_core.stream`) computes what it says it does."""

import numpy as np
import pytest

from ferroptim import _core

# Adam's step, Adafactor's passes, LAMB's three, LARS's two, Prodigy's two, only reads
PATTERNS = [None, "wr", "wrww", "wrr", "-r--", "rrww", "w-rr", "rr-", "wrw", "rrwwwr", "w-rr--", "rr"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("access", PATTERNS)
@pytest.mark.parametrize("scale", [1.0, 0.0, -0.5])
def test_stream_moves_the_arrays_it_names(dtype, access, scale):
    nbuf = 2 if access is None else len(access) - 2
    rng = np.random.default_rng(nbuf)
    n = 1_100_000  # over the serial threshold: the pool runs it
    arrays = [rng.standard_normal(n).astype(dtype) for _ in range(2 + nbuf)]
    touch = access or "wr" + "w" * nbuf
    acc = np.zeros(n, dtype)
    for k in [1, 0, *range(2, len(arrays))]:  # the gradient first
        if touch[k] == "r":
            acc = acc + arrays[k]
    s = dtype(scale)
    want = [a + s * acc if t == "w" else a.copy() for a, t in zip(arrays, touch)]
    if scale == 0.0:  # what the benchmark relies on: nothing changes
        want = [a.copy() for a in arrays]
    p, g, bufs = arrays[0], arrays[1], arrays[2:]
    _core.stream([p], [g], [bufs], access=access, scale=scale)
    for a, w in zip(arrays, want):
        np.testing.assert_array_equal(a, w)


def test_stream_makes_its_passes_in_turn():
    rng = np.random.default_rng(5)
    p, g, m, v = (rng.standard_normal(1000) for _ in range(4))
    want_m, want_v = m + 0.5 * (g + p), v + 0.5 * (g + p)
    want_p = p + 0.5 * (want_m + want_v)
    _core.stream([p], [g], [[m, v]], access=["-r--", "rrww", "w-rr"], scale=0.5)
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(p, want_p)


def test_stream_refuses_shared_memory():
    p, g = np.zeros(8), np.zeros(8)
    with pytest.raises(ValueError, match="share memory"):
        _core.stream([p], [g], [[p]], access="wrr")


@pytest.mark.parametrize(
    "access, match",
    [
        ("wx", "not one of"),
        ("ww", "only read"),
        ("w", "at most"),
        ("wrww", "names 2 buffers, each parameter has 1"),
        (["wrw", "wrww"], "names 2 buffers, each parameter has 1"),
    ],
)
def test_stream_refuses_a_bad_pattern(access, match):
    p, g, b = np.zeros(8), np.zeros(8), np.zeros(8)
    with pytest.raises(ValueError, match=match):
        _core.stream([p], [g], [[b]], access=access)
