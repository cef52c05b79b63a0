"""``FlatParameters``: many parameters stored as views into one contiguous buffer.

A model with thousands of small parameters pays a fixed cost per parameter on every
step (looking up and comparing its arrays). Parameters made by ``FlatParameters``
are views into one buffer, their gradients views into a second one, and an
elementwise optimizer whose param groups each hold one ``FlatParameters``' params
(in order) keeps their state in flat buffers too: its step is then one kernel call
over each whole buffer — the numbers are the same as parameter by parameter, since
the update is elementwise and the parameters' scalar state (``step``) advances alike.

Each parameter still is a ``Parameter`` like any other: ``.data`` is its view,
``.grad`` its gradient view (write into it in place, or assign an array: it is copied
in), ``opt.state[p]`` holds views of the flat state in torch's layout, and
``state_dict`` is per parameter, so checkpoints do not change. A parameter whose
``.data`` is reassigned to another array, or whose ``.grad`` is None, leaves the
layout: steps then take the general path, parameter by parameter, until it is back.

Examples:
    >>> flat = FlatParameters([(3, 2), (5,)])
    >>> [p.data.shape for p in flat.params]
    [(3, 2), (5,)]
    >>> flat.params[1].data.base is flat.data
    True
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .parameter import Parameter, _check_data, checked_grad

__all__ = ["FlatParameters", "FlatParameter"]


def _shape(s: Any) -> Tuple[int, ...]:
    if isinstance(s, (int, np.integer)):
        s = (s,)
    shape = tuple(int(d) for d in s)
    if any(d < 0 for d in shape):
        raise ValueError(f"FlatParameters: shape {shape} has a negative dimension")
    return shape


class FlatParameters:
    """Parameters of ``shapes`` allocated as views into one contiguous buffer.

    Args:
        shapes (iterable): one shape (a tuple, or an int for a vector) per parameter.
        dtype: float32 (default) or float64.
        init (list of arrays, optional): initial values, one per shape (cast to
            ``dtype``); zeros otherwise.

    Attributes:
        params (list of FlatParameter): the parameters, in order.
        data (ndarray): the flat buffer their ``.data`` views share.
        grad (ndarray): the flat buffer of their gradient views.
        offsets (list of int): where each parameter starts in the buffers.
    """

    def __init__(self, shapes: Iterable[Any], dtype: Any = np.float32, init: Optional[Sequence[Any]] = None) -> None:
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"FlatParameters: dtype must be float32 or float64, got {dtype}")
        self.shapes: List[Tuple[int, ...]] = [_shape(s) for s in shapes]
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets: List[int] = [int(x) for x in np.cumsum([0] + sizes[:-1])] if sizes else []
        total = sum(sizes)
        self.data = np.zeros(total, dtype)
        self.grad = np.zeros(total, dtype)
        if init is not None:
            init = list(init)
            if len(init) != len(self.shapes):
                raise ValueError(f"FlatParameters: {len(init)} initial values for {len(self.shapes)} shapes")
            for i, (a, s) in enumerate(zip(init, self.shapes)):
                a = np.asarray(a)
                if a.shape != s:
                    raise ValueError(f"FlatParameters: init[{i}] has shape {a.shape}, not {s}")
        #: how many parameters are out of the layout (see ``in_layout``)
        self._out = 0
        #: changes whenever a parameter leaves or rejoins the layout
        self.version = 0
        self.params: List[FlatParameter] = []
        for i, (shape, offset, size) in enumerate(zip(self.shapes, self.offsets, sizes)):
            data, grad = self.views(offset, size, shape)
            if init is not None:
                data[...] = np.asarray(init[i]).astype(dtype, copy=False)
            self.params.append(FlatParameter(self, i, data, grad))

    def views(self, offset: int, size: int, shape: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
        """The data and gradient views of one parameter."""
        return (self.data[offset:offset + size].reshape(shape), self.grad[offset:offset + size].reshape(shape))

    @property
    def in_layout(self) -> bool:
        """Whether every parameter's ``.data`` and ``.grad`` are its views."""
        return self._out == 0

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator["FlatParameter"]:
        return iter(self.params)

    def __getstate__(self) -> Dict[str, Any]:
        return {"shapes": self.shapes, "data": self.data, "grad": self.grad,
                "own": [p._own_state() for p in self.params]}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["shapes"], state["data"].dtype)  # type: ignore[misc]
        self.data[...] = state["data"]
        self.grad[...] = state["grad"]
        for p, own in zip(self.params, state["own"]):
            p._restore(own)

    def __repr__(self) -> str:
        return f"FlatParameters({len(self.params)} parameters, {self.data.size} elements, dtype={self.data.dtype})"


class FlatParameter(Parameter):
    """A parameter of a ``FlatParameters``: its ``.data`` a view of the flat buffer,
    its ``.grad`` None or the gradient view, into which an assigned gradient is
    copied (while ``.data`` is the view; a parameter whose ``.data`` was reassigned
    keeps its gradient as any ``Parameter`` does)."""

    __slots__ = ("_flat", "_index", "_views", "_out")
    _flat: FlatParameters
    _index: int
    _views: Tuple[np.ndarray, np.ndarray]
    _out: bool

    def __init__(self, flat: FlatParameters, index: int, data: np.ndarray, grad: np.ndarray) -> None:
        object.__setattr__(self, "_flat", flat)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_views", (data, grad))
        object.__setattr__(self, "_out", False)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "grad", grad)

    def __setattr__(self, name: str, value: Any) -> None:
        data_view, grad_view = self._views
        if name == "data":
            value = _check_data(value)
        elif name == "grad" and value is not None and value is not grad_view:
            value = checked_grad(self.data, value)
            if self.data is data_view and isinstance(value, np.ndarray):
                np.copyto(grad_view, value)
                value = grad_view
        object.__setattr__(self, name, value)
        if name in ("data", "grad"):
            self._update_out()

    def _update_out(self) -> None:
        data_view, grad_view = self._views
        out = self.data is not data_view or self.grad is not grad_view
        if out != self._out:
            object.__setattr__(self, "_out", out)
            self._flat._out += 1 if out else -1
            self._flat.version += 1

    def _own_state(self) -> Tuple[Any, Tuple[str, Any]]:
        """What pickling keeps of this parameter beyond the flat buffers: its
        ``.data`` where it is not its view (else None), and its ``.grad`` as
        ("view", None), ("none", None) or ("own", array)."""
        data_view, grad_view = self._views
        if self.grad is grad_view:
            grad: Tuple[str, Any] = ("view", None)
        else:
            grad = ("none", None) if self.grad is None else ("own", self.grad)
        return (None if self.data is data_view else self.data, grad)

    def _restore(self, own: Tuple[Any, Tuple[str, Any]]) -> None:
        data, (kind, grad) = own
        if data is not None:
            self.data = data
        if kind == "none":
            self.grad = None
        elif kind == "own":
            object.__setattr__(self, "grad", grad)  # as it was, not copied in
            self._update_out()

    def __reduce__(self) -> Any:
        return (_member_of, (self._flat, self._index))

    def __repr__(self) -> str:
        return f"FlatParameter({self._index} of {len(self._flat.params)}, shape={self.data.shape}, dtype={self.data.dtype})"


def _member_of(flat: FlatParameters, index: int) -> FlatParameter:
    return flat.params[index]
