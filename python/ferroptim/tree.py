"""Parameter trees: parameters (and their gradients) held in dicts, lists, tuples,
namedtuples and nestings of them, as autograd's ``grad(loss)(params)`` and
``jax.grad`` return them and as optax takes them.

``named_parameters(tree)`` lists a tree's arrays as ``(name, array)`` pairs, named by
their path as torch's ``named_parameters`` names a module's (``layers.0.w``), in a
fixed order: dict keys sorted (as ``jax.tree_util`` orders them), sequences in
order. The arrays are the caller's own, not copies, so an optimizer built from the
pairs updates the tree in place and ``opt.step(grads=tree_of_gradients)`` matches each
gradient to its parameter by name::

    params = {"layers": [{"w": w0, "b": b0}, {"w": w1, "b": b1}]}
    opt = fo.Adam(fo.tree.named_parameters(params), lr=1e-3)
    opt.step(grads=autograd.grad(loss)(params))     # a tree shaped like params

Any other node ``jax.tree_util`` knows (a registered pytree class) is walked through
jax when jax is imported; ferroptim never imports it itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ._params import is_duck_param

__all__ = ["named_parameters", "named_leaves", "is_tree", "by_name"]


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(type(obj), "_fields")


def _jax_node(obj: Any) -> bool:
    """Whether ``obj`` is an inner node of a jax pytree that is not a dict, list or
    tuple (a registered class), jax being imported already."""
    jax = sys.modules.get("jax")
    if jax is None or isinstance(obj, (np.ndarray, Mapping, list, tuple)) or obj is None:
        return False
    try:
        leaves, _ = jax.tree_util.tree_flatten(obj)
    except Exception:  # noqa: BLE001 - anything jax cannot walk is a leaf
        return False
    return not (len(leaves) == 1 and leaves[0] is obj)


def _key_name(entry: Any) -> str:
    """A jax path entry as a name part: a dict key, an index or an attribute."""
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def named_leaves(tree: Any, prefix: str = "") -> List[Tuple[str, Any]]:
    """Every leaf of ``tree`` with its path name, in the fixed order (``None`` leaves
    included: a gradient that is None)."""
    out: List[Tuple[str, Any]] = []

    def walk(node: Any, name: str) -> None:
        join = (lambda part: f"{name}.{part}") if name else str
        if isinstance(node, Mapping):
            try:
                keys = sorted(node)
            except TypeError:  # keys that do not sort together: their own order
                keys = list(node)
            for k in keys:
                walk(node[k], join(k))
        elif _is_namedtuple(node):
            for field in node._fields:
                walk(getattr(node, field), join(field))
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                walk(child, join(i))
        elif _jax_node(node):
            import jax  # already imported (checked by _jax_node)

            for path, leaf in jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is None)[0]:
                out.append((join(".".join(_key_name(e) for e in path)), leaf))
        else:
            out.append((name, node))

    walk(tree, prefix)
    return out


def named_parameters(tree: Any, prefix: str = "") -> List[Tuple[str, Any]]:
    """``(name, array)`` for every array of ``tree`` (a dict, list, tuple, namedtuple,
    jax pytree or nesting of them; None leaves skipped), the arrays themselves.

    Examples:
        >>> w, b = np.zeros((2, 3)), np.zeros(3)
        >>> [name for name, _ in named_parameters({"layers": [{"w": w, "b": b}]})]
        ['layers.0.b', 'layers.0.w']
    """
    pairs = [(name, leaf) for name, leaf in named_leaves(tree, prefix) if leaf is not None]
    for name, leaf in pairs:
        if not (isinstance(leaf, np.ndarray) or is_duck_param(leaf)):
            raise TypeError(
                f"named_parameters: the leaf {name or '(the tree itself)'!r} is {type(leaf).__name__}, "
                "not an ndarray or a parameter"
            )
    if not pairs:
        raise ValueError("named_parameters: the tree holds no arrays")
    return pairs


def is_tree(obj: Any) -> bool:
    """Whether ``obj`` is a mapping or a tree of gradients rather than a flat list of
    them: a mapping, a namedtuple, a sequence holding a container, or a jax node."""
    if isinstance(obj, Mapping) or _is_namedtuple(obj) or _jax_node(obj):
        return True
    if isinstance(obj, (list, tuple)):
        return any(isinstance(x, (Mapping, list, tuple)) or _jax_node(x) for x in obj)
    return False


def by_name(grads: Any, names: Optional[Sequence[str]]) -> List[Any]:
    """The leaves of the tree ``grads`` in the order of ``names`` (the optimizer's
    parameter names, in param-group order); a ValueError names what is missing or
    unexpected."""
    if names is None:
        raise ValueError(
            "step(grads=...) got a mapping or a tree, which is matched to the parameters by name, but this "
            "optimizer's parameters have no names: build it from named parameters (fo.Adam(params.items()) or "
            "fo.Adam(fo.tree.named_parameters(tree))), or pass a list in param-group order"
        )
    given = dict(named_leaves(grads))
    known = set(names)
    missing = [n for n in names if n not in given]
    # a None leaf where the parameters' tree has none (skipped there) is no gradient
    unexpected = [n for n, g in given.items() if n not in known and g is not None]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else ""))
        if unexpected:
            parts.append(
                "unexpected " + ", ".join(repr(n) for n in unexpected[:10]) + (" ..." if len(unexpected) > 10 else "")
            )
        raise ValueError("step(grads=...): the gradients do not match the parameters' names: " + "; ".join(parts))
    return [given[n] for n in names]
