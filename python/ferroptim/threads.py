"""The number of threads the kernels run on.

Defaults to the environment variable ``FERROPTIM_NUM_THREADS`` when it holds a
positive integer, else to the number of CPUs. Results never depend on it.
"""

from __future__ import annotations

import numbers
import os
import warnings

from . import _core

__all__ = ["set_num_threads", "get_num_threads"]


def set_num_threads(num_threads: int) -> None:
    """Sets the number of threads every later step runs on (at least 1)."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"set_num_threads expects an int, got {type(num_threads).__name__}")
    if num_threads < 1:
        raise ValueError(f"set_num_threads: the number of threads must be at least 1, got {num_threads}")
    _core.set_num_threads(int(num_threads))


def get_num_threads() -> int:
    """The number of threads steps run on."""
    return _core.get_num_threads()


def _check_environment() -> None:
    value = os.environ.get(_core.NUM_THREADS_ENV)
    if value is None:
        return
    try:
        ok = int(value) >= 1
    except ValueError:
        ok = False
    if not ok:
        warnings.warn(
            f"{_core.NUM_THREADS_ENV}={value!r} is not a positive integer; using {get_num_threads()} threads",
            RuntimeWarning,
            stacklevel=3,
        )
