"""Type stubs of ``ferroptim._core``, the Rust extension (see rust/ferroptim-py)."""

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

__version__: str
NUM_THREADS_ENV: str

def sgd_step(
    state: Dict[Any, Dict[str, Any]],
    param_groups: List[Dict[str, Any]],
    scalar_keys: Tuple[str, ...],
    buffer_keys: Tuple[str, ...],
) -> None:
    """One SGD step over every param group (state created, checked, updated in place)."""

def adam_step(
    state: Dict[Any, Dict[str, Any]],
    param_groups: List[Dict[str, Any]],
    scalar_keys: Tuple[str, ...],
    buffer_keys: Tuple[str, ...],
) -> None:
    """One Adam/AdamW step over every param group (state created, checked, updated in place)."""

def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def stream(params: Sequence[np.ndarray], grads: Sequence[np.ndarray], buffers: Sequence[Sequence[np.ndarray]]) -> None:
    """The benchmark's bandwidth probe: θ += g and b += g for each buffer, on the kernels' pool."""
