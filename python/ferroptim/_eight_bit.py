"""The base of bitsandbytes' 8-bit optimizers (``fo.Adam8bit`` ... ``fo.AdEMAMix8bit``):
state as bitsandbytes keeps it, one Rust call per step (``_core.eight_bit_step``)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

import numpy as np

from . import _core, _loading
from ._elementwise import ElementwiseOptimizer

#: the key bitsandbytes' ``state_dict()`` nests its quantization state under
QUANT_STATE_KEY = "__bnb_optimizer_quant_state__"
#: elements per quantization block, entries per quantization map
BLOCK, MAP_SIZE = 256, 256


class EightBitOptimizer(ElementwiseOptimizer):
    r"""An optimizer with bitsandbytes' block-wise 8-bit state ("8-bit Optimizers via
    Block-wise Quantization", Dettmers et al., ICLR 2022, arXiv:2110.02861), following
    its CPU path (kernel: ``ferroptim::kernels::eight_bit``).

    State per parameter (``optimizer.state[p]``), bitsandbytes' keys: ``step``;
    ``state1`` (and ``state2`` for two-state rules): uint8 codes shaped like the
    parameter (AdEMAMix's ``state1``: ``(2, *shape)``); ``absmax1`` / ``absmax2``:
    float32, one per block of 256 elements; ``qmap1`` / ``qmap2``: the 256-entry
    dynamic maps (signed / unsigned) the codes index. A parameter with fewer than
    ``min_8bit_size`` elements keeps float32 ``state1`` / ``state2`` instead, as
    bitsandbytes does. The update runs in float32: a float64 parameter is rounded to
    float32, updated and widened back, as bitsandbytes computes it.
    """

    _kernel = _core.eight_bit_step
    _flat_merge = False  # absmax per block of each parameter
    _scalar_state = ("step",)
    _buffer_state = ("state1", "state2", "absmax1", "absmax2", "qmap1", "qmap2")
    #: bitsandbytes' ``optimizer_name``
    _rule: str
    #: moments in ``state1`` (AdEMAMix: its fast and slow EMA, ``(2, *shape)``)
    _state1_rows = 1

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any], min_8bit_size: int) -> None:
        super().__init__(params, defaults)
        self.min_8bit_size = int(min_8bit_size)

    def _kernel_args(self) -> Tuple[Any, ...]:
        return (self._rule, self.min_8bit_size)

    def __getstate__(self) -> Dict[str, Any]:
        return {**super().__getstate__(), "min_8bit_size": self.min_8bit_size}

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """``step`` as a scalar; the codes as uint8 (float32 state for a small
        parameter), absmax and maps as float32: each a copy, its shape checked."""
        if key == "step":
            return _loading.scalar(value, key, where)
        if key not in self._buffer_state:
            raise _loading.unknown_key(key, where, type(self).__name__, self._scalar_state + self._buffer_state)
        shape = tuple(param.data.shape)
        rows = (self._state1_rows,) if key in ("state1", "absmax1") and self._state1_rows > 1 else ()
        if key in ("state1", "state2"):
            codes = np.asarray(value).dtype == np.uint8
            return _loading.array(value, key, rows + shape, np.dtype(np.uint8 if codes else np.float32), where)
        if key in ("absmax1", "absmax2"):
            blocks = -(-int(np.prod(shape)) // BLOCK)
            return _loading.array(value, key, rows + (blocks,), np.dtype(np.float32), where)
        return _loading.array(value, key, (MAP_SIZE,), np.dtype(np.float32), where)

    def load_state_dict(self, state_dict: Dict[str, Any], strict: bool = True) -> Any:
        """Loads a state dict; bitsandbytes' layout (quantization state nested under
        ``__bnb_optimizer_quant_state__``) is accepted too."""
        return super().load_state_dict(unwrap_quant_state(state_dict), strict)


def unwrap_quant_state(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """``state_dict`` with bitsandbytes' nested quantization state moved back into each
    parameter's entry (a shallow copy; unchanged if there is none)."""
    state = state_dict.get("state")
    if not isinstance(state, dict) or not any(isinstance(v, dict) and QUANT_STATE_KEY in v for v in state.values()):
        return state_dict
    flat = {}
    for idx, entry in state.items():
        if isinstance(entry, dict) and QUANT_STATE_KEY in entry:
            entry = {k: v for k, v in entry.items() if k != QUANT_STATE_KEY} | dict(entry[QUANT_STATE_KEY])
        flat[idx] = entry
    return {**state_dict, "state": flat}


def check_args(lr: Any, eps: Any, betas: Any, weight_decay: Any) -> None:
    """bitsandbytes' checks of ``Optimizer1State`` / ``Optimizer2State``, with its
    messages: the Rust crate's (``EightBitHyper``)."""
    _core.check_hyper("EightBit", dict(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay))
