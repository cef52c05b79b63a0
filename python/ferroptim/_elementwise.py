"""The base of the optimizers whose update is one Rust kernel call per step."""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Tuple

import numpy as np

from . import _core, _loading
from ._flat_step import FlatRoute
from .optimizer import Optimizer


class ElementwiseOptimizer(Optimizer):
    """An optimizer whose math lives in a ``ferroptim._core`` kernel.

    A subclass declares its hyperparameters (``__init__``, with torch's checks), the
    names of its per-parameter state, and its kernel. ``step`` makes one call into
    Rust with every param group: the kernel reads the hyperparameters from the groups,
    creates missing state as torch does on a parameter's first step, checks every
    array, and updates parameters and state in place — or raises and changes nothing.
    """

    #: the ``_core`` function that runs one step over all param groups
    _kernel: Callable[..., None]
    #: per-parameter scalars, kept as 0-d float64 arrays (e.g. ``("step",)``)
    _scalar_state: Tuple[str, ...] = ()
    #: per-parameter arrays shaped like the parameter, in kernel order
    _buffer_state: Tuple[str, ...] = ()
    #: whether a group of ``FlatParameters`` may be stepped as one tensor over the
    #: flat buffers (``_flat_step``): true where each element's update depends only on
    #: the element and the parameter's scalar state; false for per-tensor norms
    #: (LAMB, LARS, Adafactor), Muon's orthogonalization, Prodigy's sliced arrays
    #: and block-wise 8-bit state
    _flat_merge = True
    #: group flags that, when set, make the update depend on the whole tensor
    _flat_blockers: Tuple[str, ...] = ()

    def step(self, closure: Optional[Callable[[], Any]] = None, *, grads: Optional[Iterable[Any]] = None) -> Any:
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model, sets the gradients
                and returns the loss, which ``step`` returns.
            grads (iterable, optional): one gradient (or None) per parameter, in
                param-group order; assigned to the parameters' ``.grad`` first.
        """
        loss = self._prepare_step(closure, grads)
        given = self._step_grad_list()
        if type(self)._flat_merge:
            route = self.__dict__.get("_flat_route") or self.__dict__.setdefault("_flat_route", FlatRoute())
            if given is None and route.ready(self):
                route.step(self)
                return loss
            route.forget()
        created = self._create_state(given)
        try:
            type(self)._kernel(self.state, self.param_groups, self._scalar_state, self._buffer_state,
                               *self._kernel_args(), given, plan=self._step_plan())
        except BaseException:
            for p in created:  # a refused step keeps no state
                del self.state[p]
            raise
        return loss

    def _step_plan(self) -> Any:
        """The optimizer's ``_core.StepPlan``: what the last step verified of its arrays,
        which the next step compares instead of checking every array again. Made on
        the first step; not part of the optimizer's pickled or copied state."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self.__dict__["_plan"] = _core.StepPlan()
        return plan

    def _kernel_args(self) -> Tuple[Any, ...]:
        """Values of the optimizer's own the kernel takes before the gradient list
        (LAMB's ``max_grad_norm``)."""
        return ()

    def _create_state(self, given: Optional[List[Any]]) -> List[Any]:
        """Creates, before the kernel runs, state the kernel would make otherwise, and
        returns the parameters it made it for (``given``: the step's gradient list, see
        ``_step_grad_list``). The kernel creates missing state as torch does for every
        optimizer but Adagrad."""
        return []

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """Checks a loaded state entry against this optimizer's state names and its
        parameter, and copies it in the form the kernel uses."""
        if key in self._scalar_state:
            return _loading.scalar(value, key, where)
        if key in self._buffer_state:
            return _loading.array(value, key, param.data.shape, param.data.dtype, where)
        raise _loading.unknown_key(key, where, type(self).__name__, self._scalar_state + self._buffer_state)
