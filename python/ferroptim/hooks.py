"""Removable hook handles, as ``torch.utils.hooks.RemovableHandle``."""

from __future__ import annotations

import itertools
import weakref
from typing import Any, MutableMapping

__all__ = ["RemovableHandle", "register"]

_ids = itertools.count()


class RemovableHandle:
    """Removes the hook it was returned for: ``handle.remove()``, or use it as a
    context manager to keep the hook only inside a ``with`` block."""

    def __init__(self, hooks_dict: MutableMapping[int, Any]) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(_ids)

    def remove(self) -> None:
        hooks_dict = self.hooks_dict_ref()
        if hooks_dict is not None and self.id in hooks_dict:
            del hooks_dict[self.id]

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def register(hooks: "MutableMapping[int, Any]", hook: Any, prepend: bool = False) -> RemovableHandle:
    """Adds ``hook`` to an ordered ``hooks`` dict (first when ``prepend``) and returns
    the handle that removes it."""
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)  # type: ignore[attr-defined]
    return handle
