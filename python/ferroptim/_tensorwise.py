"""The base of SparseAdam, whose gradients are not arrays (``SparseGrad``): one Rust
call per step, with every param group, the lists built here. (Adafactor and Muon,
whose update also needs each tensor whole, step through ``ElementwiseOptimizer``'s
call and its verified plan.)"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from . import _loading
from ._params import label, typename
from .optimizer import Optimizer


class TensorwiseOptimizer(Optimizer):
    """An optimizer whose math lives in a ``ferroptim._core`` function taking lists.

    A subclass declares its hyperparameters, its kernel, the state a parameter starts
    with (``_new_state``) and the keys of the arrays the kernel takes (``_state_keys``).
    ``step`` gathers, per parameter with a gradient, its arrays and state, and makes one
    call into Rust, which checks every array, then updates parameters and state in
    place — or raises and changes nothing (state created for the step is only kept
    once the step succeeded).
    """

    #: ``kernel(groups, indices, data, grads, states[, steps])``
    _kernel: Callable[..., None]
    #: whether the state holds a ``step`` count (a 0-d float64 array) the kernel advances
    _keeps_step = True

    def _new_state(self, p: Any) -> Dict[str, Any]:
        raise NotImplementedError

    def _state_keys(self, p: Any) -> Tuple[str, ...]:
        """The keys of the state arrays the kernel takes, in its order."""
        raise NotImplementedError

    def _state_arrays(self, p: Any, state: Dict[str, Any], where: Tuple[int, int, Any]) -> List[Tuple[str, np.ndarray]]:
        """The state arrays the kernel takes; ``where`` is (group, index, names) for a message."""
        try:
            return [(k, state[k]) for k in self._state_keys(p)]
        except KeyError:
            missing = [k for k in self._state_keys(p) if k not in state]
            raise ValueError(f"optimizer.state[{label(*where)}] is missing {', '.join(missing)}") from None

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """Checks a loaded state entry against the state ``_new_state`` would give the
        parameter (its keys and shapes), and copies it in the form the kernel uses."""
        like = self._new_state(param)
        if key not in like:
            raise _loading.unknown_key(key, where, type(self).__name__, like)
        if key == "step":
            return _loading.scalar(value, key, where)
        return _loading.array(value, key, like[key].shape, param.data.dtype, where)

    def _grad_of(self, p: Any, grad: Any) -> Any:
        return grad

    def step(self, closure: Optional[Callable[[], Any]] = None, *, grads: Optional[Iterable[Any]] = None) -> Any:
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model, sets the gradients
                and returns the loss, which ``step`` returns.
            grads (iterable, optional): one gradient (or None) per parameter, in
                param-group order; assigned to the parameters' ``.grad`` first.
        """
        loss = self._prepare_step(closure, grads)
        created: List[Tuple[Any, Dict[str, Any]]] = []
        indices, data, grads, states, steps = [], [], [], [], []
        keeps_step, ndarray = self._keeps_step, np.ndarray
        given = self._step_grad_list()
        flat = -1
        for g, group in enumerate(self.param_groups):
            names = group.get("param_names")
            for i, p in enumerate(group["params"]):
                flat += 1
                grad = p.grad if given is None else given[flat]
                if grad is None:
                    continue
                state = self.state.get(p)
                if state is not None and not isinstance(state, dict):
                    raise TypeError(f"optimizer.state of {label(g, i, names)} must be a dict, got {typename(state)}")
                if not isinstance(p.data, ndarray):
                    raise TypeError(f"{label(g, i, names)}: .data must be a numpy.ndarray, got {typename(p.data)}")
                if not state:
                    state = self._new_state(p)
                    created.append((p, state))
                indices.append((g, i))
                data.append(p.data)
                grads.append(self._grad_of(p, grad))
                states.append(self._state_arrays(p, state, (g, i, names)))
                if keeps_step:
                    step = state.get("step")
                    if step.__class__ is not ndarray or step.shape != () or step.dtype != np.float64:
                        step = self._step_array(state, label(g, i, names))
                    steps.append(step)
        if indices:
            args = (self.param_groups, indices, data, grads, states)
            type(self)._kernel(*args, *((steps,) if keeps_step else ()))
        for p, state in created:
            self.state[p] = state
        return loss

    @staticmethod
    def _step_array(state: Dict[str, Any], where: str) -> np.ndarray:
        """The ``step`` entry as the 0-d float64 array the kernel advances in place
        (a plain number, as an older state dict may hold, becomes one)."""
        step = state.get("step")
        if isinstance(step, np.ndarray) and step.shape == () and step.dtype == np.float64:
            return step
        try:
            fresh = np.array(float(step), dtype=np.float64)  # type: ignore[arg-type]  # anything: checked here
        except (TypeError, ValueError):
            raise TypeError(f"optimizer.state[{where}]['step'] must be a number, got {type(step).__name__}") from None
        state["step"] = fresh
        return fresh
