"""Moving optimizer state between ``torch.optim`` and ferroptim.

``from_torch_state_dict(optimizer.state_dict())`` turns a torch optimizer's state dict
(tensors) into ferroptim's (NumPy arrays), which the same-named ferroptim optimizer
loads; ``to_torch_state_dict(opt.state_dict())`` goes the other way, for
``torch.optim``'s ``load_state_dict``. The layouts are the same — state keyed by
parameter index, the same state names, ``param_groups`` with the same options — so the
conversion is of values: tensors ↔ arrays (copies), scalar ``step`` counters as 0-d
float64 arrays here and as tensors of torch's default dtype there, and torch's
device-only group flags (``foreach``, ``fused``, ``capturable``, ``differentiable``)
dropped here (torch fills them back in when it loads). torch is imported only by
``to_torch_state_dict``, and only when no ``tensor`` function is given.

The 8-bit optimizers' state (``fo.Adam8bit`` ...) moves to and from bitsandbytes'
layout: there the quantization state (``state1``, ``state2``, ``absmax1``, ``absmax2``,
``qmap1``, ``qmap2``) is nested under ``__bnb_optimizer_quant_state__`` and ``step`` is
a Python int; ``to_torch_state_dict`` writes that layout for any state with a
``state1``, ``from_torch_state_dict`` reads it back.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np

from ._eight_bit import QUANT_STATE_KEY, unwrap_quant_state
from .optimizer import DEVICE_ONLY_FLAGS

#: the state entries bitsandbytes nests under QUANT_STATE_KEY in its state dicts
BNB_QUANT_KEYS = ("state1", "state2", "absmax1", "absmax2", "qmap1", "qmap2", "unorm_vec")

__all__ = ["from_torch_state_dict", "to_torch_state_dict"]


def _array(x: Any) -> Any:
    """A tensor (anything with ``.numpy()``) as a NumPy copy; lists and tuples element by
    element; other values as they are."""
    if isinstance(x, (list, tuple)):
        return type(x)(_array(v) for v in x)
    if hasattr(x, "numpy") and callable(x.numpy):
        if hasattr(x, "detach"):
            x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        return np.array(x.numpy(), copy=True)
    if isinstance(x, np.ndarray):
        return x.copy()
    return x


def from_torch_state_dict(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """A ``torch.optim`` optimizer's ``state_dict()`` as ferroptim's: tensors become
    NumPy copies (``step`` a 0-d float64 array), device-only group flags are dropped;
    bitsandbytes' nested quantization state is moved back into each entry."""
    state_dict = unwrap_quant_state(state_dict)
    state = {}
    for idx, entries in state_dict["state"].items():
        converted = {}
        for key, value in entries.items():
            v = _array(value)
            if key == "step" and isinstance(v, np.ndarray):
                v = v.astype(np.float64).reshape(())
            converted[key] = v
        state[idx] = converted
    groups = [
        {k: (v if k == "params" else _array(v)) for k, v in g.items() if k not in DEVICE_ONLY_FLAGS}
        for g in state_dict["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _torch_tensor() -> Callable[[np.ndarray], Any]:
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch_state_dict makes torch tensors: install torch, or pass tensor=...") from None

    return lambda a: torch.from_numpy(np.array(a, copy=True))


def to_torch_state_dict(
    state_dict: Dict[str, Any],
    *,
    tensor: Optional[Callable[[np.ndarray], Any]] = None,
    scalar_dtype: Any = None,
    group_defaults: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """ferroptim's ``state_dict()`` as ``torch.optim`` keeps it: arrays become tensors
    (``torch.from_numpy`` of copies, or ``tensor(array)`` if given), ``step`` a 0-d
    tensor of ``scalar_dtype`` (default: torch's default float dtype, as torch makes
    it). Group options are kept as they are (an array option, such as LAMB's group
    ``step``, as a tensor); ``group_defaults`` adds options a group lacks — torch.optim
    fills its device flags back in when it loads, but schedulefree and timm's Adan read
    ``group["foreach"]`` without a default: pass ``group_defaults={"foreach": False}``."""
    if tensor is None:
        tensor = _torch_tensor()
    if scalar_dtype is None:
        try:
            import torch

            scalar_dtype = {torch.float64: np.float64}.get(torch.get_default_dtype(), np.float32)
        except ImportError:
            scalar_dtype = np.float32

    def convert(key: str, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return type(v)(convert("", x) for x in v)
        if isinstance(v, np.ndarray):
            if key == "step":
                v = v.astype(scalar_dtype).reshape(())
            return tensor(v)
        return v

    state = {idx: {k: convert(k, v) for k, v in entries.items()} for idx, entries in state_dict["state"].items()}
    state = {idx: _bnb_layout(entries) if "state1" in entries else entries for idx, entries in state.items()}
    groups = [
        {**(group_defaults or {}), **{k: (v if k == "params" else convert("", v)) for k, v in g.items()}}
        for g in state_dict["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _bnb_layout(entries: Dict[str, Any]) -> Dict[str, Any]:
    """An 8-bit optimizer's state entry as bitsandbytes' ``state_dict()`` has it: the
    quantization state nested under ``__bnb_optimizer_quant_state__``, ``step`` an int."""
    out = {k: v for k, v in entries.items() if k not in BNB_QUANT_KEYS}
    if "step" in out:
        step = out["step"]
        out["step"] = int(step.item() if hasattr(step, "item") else step)
    out[QUANT_STATE_KEY] = {k: entries[k] for k in BNB_QUANT_KEYS if k in entries}
    return out
