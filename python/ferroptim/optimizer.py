"""The ``Optimizer`` base class: ``torch.optim.Optimizer``'s API over NumPy parameters.

Param groups, ``state``, ``state_dict`` / ``load_state_dict``, ``zero_grad``, the step,
state-dict and load hooks, ``repr``, pickling and ``copy.deepcopy`` behave as in torch
2.15. A subclass written in pure Python and NumPy works as a torch subclass does: it
calls ``super().__init__(params, defaults)`` and defines ``step``.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict
from copy import deepcopy
from itertools import chain
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from ._state import ParamState, identity_set
from ._params import SUPPORTED_DTYPES, check_array, find_shared_memory, is_duck_param, is_single_param, label, typename
from ._param_matching import LoadReport, by_name, match
from . import tree
from .hooks import RemovableHandle, register
from .parameter import Parameter, checked_grad
from .sparse_grad import SparseGrad

__all__ = [
    "Optimizer",
    "register_optimizer_step_pre_hook",
    "register_optimizer_step_post_hook",
    "required",
]

StateDict = Dict[str, Any]

_global_optimizer_pre_hooks: "OrderedDict[int, Callable[..., Any]]" = OrderedDict()
_global_optimizer_post_hooks: "OrderedDict[int, Callable[..., Any]]" = OrderedDict()

# Flags torch uses to pick a device implementation: accepted, ignored, never stored.
DEVICE_ONLY_FLAGS = ("foreach", "fused", "capturable", "differentiable")


class _RequiredParameter:
    """Marks a default that every param group must set."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def register_optimizer_step_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register a pre hook common to all optimizers:
    ``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)``."""
    return register(_global_optimizer_pre_hooks, hook)


def register_optimizer_step_post_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register a post hook common to all optimizers: ``hook(optimizer, args, kwargs)``."""
    return register(_global_optimizer_post_hooks, hook)


def _with_step_hooks(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a ``step`` with the global and per-optimizer step hooks, in torch's order:
    global pre, own pre, step, own post, global post. A ``step`` that calls
    ``super().step()`` runs the hooks once. Steps of one optimizer from several
    threads run one after the other, never interleaved. Without hooks (the common
    case) it adds about a microsecond to a step."""

    @functools.wraps(func)
    def step(*args: Any, **kwargs: Any) -> Any:
        self = args[0]
        own = self.__dict__
        # One step at a time per optimizer: a second thread waits for the first
        # (re-entrant, for a subclass's super().step()).
        lock = own.get("_step_lock") or own.setdefault("_step_lock", threading.RLock())
        with lock:
            if own.get("_in_step"):
                return func(*args, **kwargs)
            own["_in_step"] = True
            try:
                if _global_optimizer_pre_hooks or self._optimizer_step_pre_hooks:
                    args, kwargs = pre_hooks(self, args, kwargs)
                out = func(*args, **kwargs)
                if self._optimizer_step_post_hooks or _global_optimizer_post_hooks:
                    post_hooks(self, args, kwargs)
                return out
            finally:
                own["_in_step"] = False
                own.pop("_step_grads", None)

    def pre_hooks(self: Any, args: Any, kwargs: Any) -> Any:
        for pre_hook in chain(_global_optimizer_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
            result = pre_hook(self, args, kwargs)
            if result is not None:
                if isinstance(result, tuple) and len(result) == 2:
                    args, kwargs = result
                else:
                    raise RuntimeError(
                        f"{func} must return None or a tuple of (new_args, new_kwargs), but got {result}."
                    )
        return args, kwargs

    def post_hooks(self: Any, args: Any, kwargs: Any) -> None:
        for post_hook in chain(self._optimizer_step_post_hooks.values(), _global_optimizer_post_hooks.values()):
            post_hook(self, args, kwargs)

    step.hooked = True  # type: ignore[attr-defined]
    return step


class Optimizer:
    r"""Base class for all optimizers.

    Args:
        params (iterable): the parameters to optimize — ``Parameter`` objects, bare
            ndarrays (wrapped in a ``Parameter``), objects with ``.data``/``.grad``,
            ``(name, parameter)`` pairs — or dicts defining parameter groups.
        defaults (dict): default values of the optimization options, used when a
            param group does not set them.
    """

    #: dtypes a parameter may have (None: any).
    supported_dtypes: Optional[Sequence[np.dtype]] = SUPPORTED_DTYPES

    # the hooks of each optimizer (``_init_hooks``), by handle id
    _optimizer_step_pre_hooks: Dict[int, Callable[..., Any]]
    _optimizer_step_post_hooks: Dict[int, Callable[..., Any]]
    _optimizer_state_dict_pre_hooks: Dict[int, Callable[..., Any]]
    _optimizer_state_dict_post_hooks: Dict[int, Callable[..., Any]]
    _optimizer_load_state_dict_pre_hooks: Dict[int, Callable[..., Any]]
    _optimizer_load_state_dict_post_hooks: Dict[int, Callable[..., Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "hooked", False):
            setattr(cls, "step", _with_step_hooks(step))

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any]) -> None:
        self.defaults = defaults
        self._init_hooks()
        self._bare: Dict[int, Parameter] = {}
        if is_single_param(params):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + typename(params)
            )
        if isinstance(params, set):  # torch 2.15: a warning here, still an error in a group
            warnings.warn(_SET_MESSAGE + " This will be an error in a future release.", FutureWarning, stacklevel=3)
        self.state: ParamState = ParamState()
        self.param_groups: List[Dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def _init_hooks(self) -> None:
        for name in _HOOK_DICTS:
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())

    def __getstate__(self) -> Dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        if not isinstance(self.state, ParamState):
            self.state = ParamState(self.state.items())
        self._init_hooks()
        self._bare = {}
        for group in self.param_groups:
            self._fix_group(group)

    def _fix_group(self, group: Dict[str, Any]) -> None:
        """Completes a group loaded or unpickled from elsewhere (missing options take
        the defaults); subclasses add their own rules."""
        for flag in DEVICE_ONLY_FLAGS:
            group.pop(flag, None)
        for name, default in self.defaults.items():
            if default is not required:
                group.setdefault(name, default)

    def __repr__(self) -> str:
        format_string = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            format_string += "\n"
            format_string += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    format_string += f"    {key}: {group[key]}\n"
        format_string += ")"
        return format_string

    # ------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)``, called
        before each ``step``."""
        return register(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)``, called after each ``step``."""
        return register(self._optimizer_step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer)``, called before ``state_dict`` builds the dict."""
        return register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict or None``, called on the dict
        ``state_dict`` returns; a returned dict replaces it."""
        return register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict or None``, called on a shallow
        copy of the dict given to ``load_state_dict``; a returned dict is loaded instead."""
        return register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer)``, called after ``load_state_dict`` has loaded."""
        return register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------- state dict
    def state_dict(self) -> StateDict:
        """The optimizer's state as plain Python and NumPy, in torch's layout::

            {"state": {0: {"step": array(3.), "exp_avg": array([...]), ...}, ...},
             "param_groups": [{"lr": 0.001, ..., "params": [0, 1, 2]}, ...]}

        Parameters are numbered by their order in the groups. As in torch, the state
        entries are the optimizer's own arrays (updated by later steps): pickle or
        ``copy.deepcopy`` the dict for a snapshot.
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        param_mappings: Dict[int, int] = {}
        start_index = 0

        def pack_group(group: Dict[str, Any]) -> Dict[str, Any]:
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update(
                {id(p): i for i, p in enumerate(group["params"], start_index) if id(p) not in param_mappings}
            )
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {param_mappings.get(id(k), k): v for k, v in self.state.items()}
        state_dict = {"state": packed_state, "param_groups": param_groups}
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            hook_result = post_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        return state_dict

    def load_state_dict(self, state_dict: StateDict, strict: bool = True) -> LoadReport:
        """Loads a dict made by ``state_dict`` (of this class, or torch's with arrays
        in place of tensors).

        When the optimizer and the dict both carry ``param_names``, each parameter gets
        the state saved under its name (a reordered or regrouped model loads
        correctly); else parameters are matched by position, as in torch. Group
        hyperparameters go by group position.

        Everything is checked before anything changes — group count (and sizes, by
        position), names, every state entry against its parameter (unknown keys, array
        shapes) — so on error the optimizer is exactly as it was. The arrays kept are
        copies, cast to their parameter's dtype.

        Args:
            state_dict (dict): what ``state_dict()`` returned.
            strict (bool): refuse (``ValueError``) names missing on either side and
                state that does not fit its parameter (default). ``False`` loads what
                matches and reports the rest: the returned ``LoadReport`` lists the
                missing, unexpected and mismatched parameters.
        """
        state_dict = dict(state_dict)
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            hook_result = pre_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        report = LoadReport()
        id_map = match(groups, saved_groups, strict, report)
        named = by_name(groups, saved_groups)
        labels = {
            id(p): label(gi, i, g.get("param_names")) for gi, g in enumerate(groups) for i, p in enumerate(g["params"])
        }
        state = ParamState()
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                where = labels[id(param)]
                if not isinstance(v, dict):
                    raise TypeError(f"loaded state of {where} must be a dict, got {type(v).__name__}")
                try:
                    state[param] = {key: self._load_state_value(param, key, value, where) for key, value in v.items()}
                except ValueError:
                    if strict:
                        raise
                    report.mismatched.append(where)
            elif not named:
                state[k] = v

        def update_group(group: Dict[str, Any], new_group: Dict[str, Any]) -> Dict[str, Any]:
            new_group["params"] = group["params"]
            if "param_names" in group and ("param_names" not in new_group or named):
                new_group["param_names"] = group["param_names"]
            self._fix_group(new_group)
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.state = state
        self.param_groups = param_groups
        self.__dict__.pop("_plan", None)  # the last step's plan holds the old state's arrays
        self.__dict__.pop("_flat_route", None)  # and so does the flat path's
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)
        return report

    def _prepare_step(self, closure: Optional[Callable[[], Any]], grads: Optional[Iterable[Any]]) -> Any:
        """What a step does before its update: runs ``closure`` (returning its loss, or
        None) and assigns ``grads=...``."""
        loss = closure() if closure is not None else None
        if grads is not None:
            self._assign_grads(grads)
        return loss

    def _step_grad_list(self) -> Optional[List[Any]]:
        """The gradients of this step, one per parameter in param-group order, when
        ``step(grads=...)`` could not assign them all (a ``.grad`` without a setter,
        as mygrad's); None when every parameter's ``.grad`` holds its gradient."""
        return self.__dict__.get("_step_grads")

    def _assign_grads(self, grads: Iterable[Any]) -> None:
        """``step(grads=...)``: one gradient (or None) per parameter, in param-group
        order, checked before any is assigned."""
        self.__dict__.pop("_step_grads", None)
        params = [p for group in self.param_groups for p in group["params"]]
        if tree.is_tree(grads):  # a mapping or a tree: by name
            grads = tree.by_name(grads, self._param_names())
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(f"step(grads=...) got {len(grads)} gradients for {len(params)} parameters")
        checked = []
        for i, (p, g) in enumerate(zip(params, grads)):
            try:
                checked.append(checked_grad(p.data, g))
            except (TypeError, ValueError) as e:
                raise type(e)(f"step(grads=...)[{i}]: {e}") from None
        unassigned = False
        for p, g in zip(params, checked):
            if isinstance(p, Parameter):
                object.__setattr__(p, "grad", g)
                continue
            try:
                p.grad = g
            except AttributeError:  # a read-only .grad: the step takes it from the list
                unassigned = True
        if unassigned:
            self._step_grads = checked

    def _param_names(self) -> Optional[List[str]]:
        """Every parameter's name, in param-group order, if the groups have names."""
        if not all("param_names" in g for g in self.param_groups):
            return None
        return [n for g in self.param_groups for n in g["param_names"]]

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """A copy of one loaded state entry, cast as torch casts it: floating arrays to
        the parameter's dtype, except ``step``, which stays as it was."""
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        array = np.array(value, copy=True)
        if key != "step" and array.dtype.kind == "f":
            array = array.astype(param.data.dtype, copy=False)
        return array

    # ------------------------------------------------------------------- steps
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the gradients: to ``None`` (default), else to zeros in place.

        A parameter whose ``.grad`` cannot be assigned (mygrad's is a read-only
        property) is cleared its own way: ``null_grad()`` where it has one (mygrad),
        else its gradient array is zero-filled in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    try:
                        if set_to_none:
                            p.grad = None
                        elif isinstance(p.grad, SparseGrad):
                            p.grad = SparseGrad(p.grad.indices[:0], p.grad.values[:0])
                        elif isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
                            p.grad.fill(0)
                        else:
                            p.grad = np.zeros_like(p.grad)
                    except AttributeError:
                        _clear_own_way(p, set_to_none)

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Performs a single optimization step (subclasses define it).

        Args:
            closure (Callable): re-evaluates the model, sets the gradients and returns
                the loss. Optional for most optimizers.
        """
        raise NotImplementedError

    # ------------------------------------------------------------ param groups
    def _as_param(self, obj: Any, where: str) -> Any:
        if isinstance(obj, Parameter) or (not isinstance(obj, np.ndarray) and is_duck_param(obj)):
            return obj
        if isinstance(obj, np.ndarray):
            wrapped = self._bare.get(id(obj))
            if wrapped is None or wrapped.data is not obj:
                wrapped = self._bare[id(obj)] = Parameter(obj)
            return wrapped
        raise TypeError(
            "optimizer can only optimize numpy arrays or objects with .data and .grad, "
            f"but one of the params is {typename(obj)} ({where})"
        )

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Adds a param group to ``param_groups``, e.g. to train layers unfrozen
        midway. Options it does not set take the optimizer's defaults.

        Args:
            param_group (dict): ``{"params": [...], option: value, ...}``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if is_single_param(params):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(_SET_MESSAGE)
        else:
            param_group["params"] = list(params)

        extracted_param_tensors = []
        extracted_param_names = []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                extracted_param_names.append(param[0])
                extracted_param_tensors.append(param[1])
            else:
                extracted_param_tensors.append(param)
        if len(extracted_param_names) != 0:
            if len(extracted_param_names) == len(extracted_param_tensors):
                param_group["param_names"] = extracted_param_names
            else:
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")

        gi = len(self.param_groups)
        names = param_group.get("param_names")
        param_group["params"] = [
            self._as_param(p, label(gi, i, names)) for i, p in enumerate(extracted_param_tensors)
        ]
        for i, p in enumerate(param_group["params"]):
            check_array(p, label(gi, i, names), self.supported_dtypes)

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)

        params = param_group["params"]
        if len(params) != len(identity_set(params)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )

        param_set: Set[int] = set()  # ids: parameters are identities (mygrad's have no hash)
        for group in self.param_groups:
            param_set.update(identity_set(group["params"]))
            if ("param_names" in param_group) != ("param_names" in group):
                current_group_txt = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {current_group_txt} to the optimizer"
                )
        if not param_set.isdisjoint(identity_set(params)):
            raise ValueError("some parameters appear in more than one parameter group")

        self._check_shared_memory(param_group)
        self.param_groups.append(param_group)

    def _check_shared_memory(self, new_group: Dict[str, Any]) -> None:
        """Two different parameters must not be views of one buffer: a step would
        update the shared elements twice, in an undefined order."""
        entries: List[Tuple[str, np.ndarray]] = []
        seen: Set[int] = set()
        for gi, group in enumerate([*self.param_groups, new_group]):
            for i, p in enumerate(group["params"]):
                if id(p) not in seen:
                    seen.add(id(p))
                    entries.append((label(gi, i, group.get("param_names")), p.data))
        shared = find_shared_memory(entries)
        if shared is not None:
            raise ValueError(
                f"{shared[0]} and {shared[1]} share memory (views of one array); "
                "each parameter needs its own memory"
            )


def _clear_own_way(p: Any, set_to_none: bool) -> None:
    """Clears the gradient of a parameter whose ``.grad`` has no setter."""
    grad = p.grad
    if set_to_none and callable(getattr(p, "null_grad", None)):
        p.null_grad()
    elif isinstance(grad, np.ndarray) and grad.flags.writeable:
        grad.fill(0)
    elif callable(getattr(p, "null_grad", None)):
        p.null_grad()
    else:
        raise TypeError(
            f"zero_grad: the gradient of a {typename(p)} can neither be assigned nor zeroed in place "
            "(a read-only .grad holding a read-only array, and no null_grad())"
        )


_HOOK_DICTS = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)

_SET_MESSAGE = (
    "optimizer parameters need to be organized in ordered collections, but "
    "the ordering of tensors in sets will change between runs. Please use a list instead."
)
