"""``optimizer.state``: per-parameter state, keyed by the parameters themselves.

A parameter is an identity, not a value: mygrad tensors and ``@dataclass`` objects
define ``__eq__`` elementwise or by value and so have no hash, yet each must get its
own state, and ``opt.state[p]`` must work for them as it does for a ``Parameter``.
``ParamState`` is torch's ``defaultdict(dict)`` for every hashable parameter (stored
under the parameter itself) and stores an unhashable one under an identity key
(``_ByIdentity``), which iteration, ``keys()``, ``items()`` and ``repr`` turn back into
the parameter. The step's Rust code looks a parameter up directly in the dict and
falls back to ``get`` / ``__setitem__`` here when it has no hash.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Iterator, List, Set, Tuple


class _ByIdentity:
    """The dict key of an unhashable parameter: equal only to the key of the very
    same object."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: Any) -> bool:
        return other.__class__ is _ByIdentity and other.obj is self.obj

    def __repr__(self) -> str:
        return repr(self.obj)


def _key(k: Any) -> Any:
    return _ByIdentity(k) if type(k).__hash__ is None else k


def _unkey(k: Any) -> Any:
    return k.obj if k.__class__ is _ByIdentity else k


def identity_set(objs: Iterable[Any]) -> Set[int]:
    """The ids of ``objs``: membership by identity, for objects with or without a hash."""
    return {id(o) for o in objs}


class ParamState(defaultdict):  # type: ignore[type-arg]
    """``defaultdict(dict)`` keyed by parameters, unhashable ones included. ``changes``
    counts the entries set or removed through its methods (the flat path of a step,
    ``_flat_step``, notices a parameter's state dict replaced by it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(dict)
        self.changes = 0
        if args or kwargs:
            self.update(*args, **kwargs)

    def __getitem__(self, k: Any) -> Any:
        return super().__getitem__(_key(k))

    def __setitem__(self, k: Any, v: Any) -> None:
        self.changes += 1
        super().__setitem__(_key(k), v)

    def __delitem__(self, k: Any) -> None:
        self.changes += 1
        super().__delitem__(_key(k))

    def clear(self) -> None:
        self.changes += 1
        super().clear()

    def popitem(self) -> Any:
        self.changes += 1
        k, v = super().popitem()
        return _unkey(k), v

    def __contains__(self, k: Any) -> bool:
        return super().__contains__(_key(k))

    def get(self, k: Any, default: Any = None) -> Any:
        return super().get(_key(k), default)

    def pop(self, k: Any, *default: Any) -> Any:
        self.changes += 1
        return super().pop(_key(k), *default)

    def setdefault(self, k: Any, default: Any = None) -> Any:
        self.changes += 1
        return super().setdefault(_key(k), default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for other in args:
            pairs = other.items() if hasattr(other, "items") else other
            for k, v in pairs:
                self[k] = v
        for k, v in kwargs.items():
            self[k] = v

    def __iter__(self) -> Iterator[Any]:
        return (_unkey(k) for k in super().__iter__())

    def keys(self) -> List[Any]:  # type: ignore[override]
        return [_unkey(k) for k in super().keys()]

    def items(self) -> List[Tuple[Any, Any]]:  # type: ignore[override]
        return [(_unkey(k), v) for k, v in super().items()]

    def copy(self) -> "ParamState":
        return ParamState(self.items())

    def __reduce__(self) -> Any:
        return (ParamState, (), None, None, iter(self.items()))

    def __repr__(self) -> str:
        return f"defaultdict({dict!r}, {dict.__repr__(self)})"  # torch's repr of its state
