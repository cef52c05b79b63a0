"""The flat path of an elementwise optimizer: a step over param groups that each hold
one ``FlatParameters``' params is one kernel call per group over the flat buffers.

On the first step the flat path can take (every group flat, every parameter in its
layout and with state), each parameter's state is copied into flat buffers, one per
state name, and ``opt.state[p]`` becomes a dict of views into them (scalar state such
as ``step`` included: a view into a float64 array with one value per parameter).
Each later step then hands the kernel one stand-in parameter per group, whose
``.data``, ``.grad`` and state are the flat buffers, and copies the stand-in's scalar
state (equal for every parameter, or the step takes the general path) back into
each parameter's. Elementwise updates depend on nothing but the element and the
scalar state, so the numbers are those of the general path, bit for bit.

What the general path would see differently sends the step there: a parameter out
of its layout or without a gradient, the group's ``params`` edited, a state entry
or a parameter's state dict replaced (the state dicts count their changes), scalar
state that differs between parameters. Any general step forgets the flat state's
record; the next flat step copies the state into flat buffers again.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import numpy as np

from . import _core
from .flat import FlatParameter, FlatParameters
from .parameter import Parameter


class FlatStateDict(dict):  # type: ignore[type-arg]
    """``opt.state[p]`` of a parameter in flat storage: a dict of views, which counts
    its changes in ``changes[0]`` (shared by a group's parameters)."""

    __slots__ = ("changes",)

    def __init__(self, entries: Dict[str, Any], changes: List[int]) -> None:
        super().__init__(entries)
        self.changes = changes

    def _changed(self) -> None:
        self.changes[0] += 1

    def __setitem__(self, k: Any, v: Any) -> None:
        self._changed()
        super().__setitem__(k, v)

    def __delitem__(self, k: Any) -> None:
        self._changed()
        super().__delitem__(k)

    def __ior__(self, other: Any) -> "FlatStateDict":  # type: ignore[misc]
        self._changed()
        super().update(other)
        return self

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def popitem(self) -> Any:
        self._changed()
        return super().popitem()

    def clear(self) -> None:
        self._changed()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().update(*args, **kwargs)

    def setdefault(self, *args: Any) -> Any:
        self._changed()
        return super().setdefault(*args)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))

    def __copy__(self) -> Dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: Any) -> Dict[Any, Any]:
        return copy.deepcopy(dict(self), memo)


class _Group:
    """One group's flat state: the stand-in parameter, its state and group dict."""

    def __init__(self, flat: FlatParameters, params: List[Any], proxy: Parameter, state: Dict[str, Any],
                 scalars: Dict[str, np.ndarray], changes: List[int]) -> None:
        self.flat, self.params, self.version = flat, params, flat.version
        self.proxy, self.state, self.scalars, self.changes = proxy, state, scalars, changes
        self.group: Dict[str, Any] = {}
        self.proxy_params = [proxy]


class FlatRoute:
    """The flat path of one optimizer (see the module docs)."""

    def __init__(self) -> None:
        self.groups: Optional[List[_Group]] = None
        self.state: Optional[Any] = None
        self.state_changes = -1
        self.plan = _core.StepPlan()
        self.proxy_state: Dict[Any, Any] = {}
        self.proxy_groups: List[Dict[str, Any]] = []

    def forget(self) -> None:
        """A general step ran: the flat state is copied again before the next flat one."""
        self.groups = None

    def ready(self, opt: Any) -> bool:
        """Whether this step can take the flat path (copying the state into flat
        buffers first if it has to)."""
        flats = []
        for group in opt.param_groups:
            if any(group.get(flag) for flag in opt._flat_blockers):
                return False
            params = group["params"]
            if not params or type(params[0]) is not FlatParameter:
                return False
            flat = params[0]._flat
            if not flat.in_layout or len(params) != len(flat.params) or params != flat.params:
                return False
            flats.append((flat, params))
        if not self._current(opt, flats):
            self.groups = None
            groups = [self._gather(opt, flat, params) for flat, params in flats]
            if any(g is None for g in groups):
                return False
            self.groups, self.state, self.state_changes = groups, opt.state, opt.state.changes  # type: ignore
            self.proxy_state = {g.proxy: g.state for g in groups}  # type: ignore[union-attr]
            self.proxy_groups = [g.group for g in groups]  # type: ignore[union-attr]
        for g in self.groups:  # type: ignore[union-attr]
            for key, values in g.scalars.items():
                if not values.size or values.min() != values.max():
                    return False  # the parameters' scalar state differs (or is NaN)
        return True

    def _current(self, opt: Any, flats: List[Any]) -> bool:
        if self.groups is None or self.state is None or opt.state is not self.state or opt.state.changes != self.state_changes:
            return False
        if len(flats) != len(self.groups):
            return False
        return all(
            g.flat is flat and g.params is params and g.version == flat.version and g.changes[0] == 0
            for g, (flat, params) in zip(self.groups, flats)
        )

    @staticmethod
    def _gather(opt: Any, flat: FlatParameters, params: List[Any]) -> Optional[_Group]:
        """Copies the group's state into flat buffers and makes each parameter's state
        a dict of views into them; None when the state is not all there and alike."""
        dicts = [opt.state.get(p) for p in params]
        if all(d is None or d == {} for d in dicts):
            keys: List[str] = []  # no state yet: the kernel makes it, flat (see `_spread`)
        elif any(not isinstance(d, dict) for d in dicts):
            return None
        else:
            keys = list(dicts[0])
            if any(list(d) != keys for d in dicts):
                return None
        dtype = flat.data.dtype
        flat_state: Dict[str, Any] = {}
        scalars: Dict[str, np.ndarray] = {}
        views: List[Dict[str, Any]] = [{} for _ in params]
        for key in keys:
            values = [d[key] for d in dicts]
            if key in opt._scalar_state:
                if any(not isinstance(v, np.ndarray) or v.shape != () or v.dtype != np.float64 for v in values):
                    return None
                scalars[key] = np.array([v[()] for v in values], np.float64)
                flat_state[key] = np.array(values[0][()], np.float64)
                for k, view in enumerate(views):
                    view[key] = scalars[key][k:k + 1].reshape(())
            elif key in opt._buffer_state:
                if any(not isinstance(v, np.ndarray) or v.shape != p.data.shape or v.dtype != dtype
                       for v, p in zip(values, params)):
                    return None
                buffer = np.empty_like(flat.data)
                for v, offset in zip(values, flat.offsets):
                    buffer[offset:offset + v.size] = v.reshape(-1)
                flat_state[key] = buffer
                for view, p, offset in zip(views, params, flat.offsets):
                    view[key] = buffer[offset:offset + p.data.size].reshape(p.data.shape)
            else:
                return None
        changes = [0]
        if keys:
            for p, view in zip(params, views):
                opt.state[p] = FlatStateDict(view, changes)
        proxy = Parameter(flat.data)
        object.__setattr__(proxy, "grad", flat.grad)
        return _Group(flat, params, proxy, flat_state, scalars, changes)

    def step(self, opt: Any) -> None:
        """One step over the flat buffers; raises (changing nothing) as the general
        step would."""
        for g, group in zip(self.groups, opt.param_groups):  # type: ignore[arg-type]
            g.group.clear()
            g.group.update(group)
            g.group.pop("param_names", None)
            g.group["params"] = g.proxy_params
            for key, values in g.scalars.items():
                g.state[key][()] = values[0]
        known = [set(g.state) for g in self.groups]  # type: ignore[union-attr]
        type(opt)._kernel(self.proxy_state, self.proxy_groups, opt._scalar_state, opt._buffer_state,
                          *opt._kernel_args(), None, plan=self.plan)
        for g, group, before in zip(self.groups, opt.param_groups, known):  # type: ignore[arg-type]
            for key, values in g.scalars.items():
                values.fill(g.state[key][()])
            for key, value in g.group.items():
                if key != "params" and group.get(key, g) is not value:
                    group[key] = value  # counters the kernel keeps in the group
            new = [key for key in g.state if key not in before]
            if new:  # state the first step or a configuration change made
                self._spread(opt, g, new)
        self.state_changes = opt.state.changes

    @staticmethod
    def _spread(opt: Any, g: _Group, keys: List[str]) -> None:
        """Gives each parameter its views of the flat state the step created."""
        for key in keys:
            if g.state[key].shape == ():
                g.scalars[key] = np.full(len(g.params), g.state[key][()], np.float64)
        for k, (p, offset) in enumerate(zip(g.params, g.flat.offsets)):
            d = opt.state.get(p)
            if not isinstance(d, FlatStateDict) or d.changes is not g.changes:
                d = opt.state[p] = FlatStateDict(d or {}, g.changes)
            for key in keys:
                if key in g.scalars:
                    view = g.scalars[key][k:k + 1].reshape(())
                else:
                    view = g.state[key][offset:offset + p.data.size].reshape(p.data.shape)
                dict.__setitem__(d, key, view)
