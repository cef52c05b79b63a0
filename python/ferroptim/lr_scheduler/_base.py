"""``LRScheduler``, the base of every scheduler, as ``torch.optim.lr_scheduler.LRScheduler``.

A scheduler sets ``group["lr"]`` of each param group of its optimizer once per
``step()``. Most compute the new LR from the group's current LR (torch's recursive,
"chainable" form), so several schedulers can drive one optimizer and their factors
multiply; ``step(epoch)`` (deprecated in torch) jumps to an epoch through the closed
form where the scheduler has one.
"""

from __future__ import annotations

import warnings
import weakref
from functools import wraps
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import _core
from ..optimizer import Optimizer

__all__ = ["LRScheduler", "RuleScheduler", "EPOCH_DEPRECATION_WARNING"]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)

_OVERRIDDEN = (
    "Seems like `optimizer.step()` has been overridden after learning rate scheduler "
    "initialization. Please, make sure to call `optimizer.step()` before "
    "`lr_scheduler.step()`. See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)

_WRONG_ORDER = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
    "will result in PyTorch skipping the first value of the learning rate schedule. "
    "See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)


def format_param(name: str, optimizer: Optimizer, param: Any) -> List[Any]:
    """One value per param group: a list or tuple as given (its length checked by
    ``_core.check_scheduler``), else the value repeated."""
    if isinstance(param, (list, tuple)):
        return list(param)
    return [param] * len(optimizer.param_groups)


def _track_step_called(opt: Optimizer) -> None:
    """Wraps ``opt.step`` (once) so that it records that it ran: a scheduler stepped
    before its optimizer warns, as in torch."""
    if hasattr(opt.step, "_wrapped_by_lr_sched"):
        return
    opt_ref = weakref.ref(opt)
    func = opt.step.__func__  # type: ignore[attr-defined]

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        o = opt_ref()
        o._opt_called = True  # type: ignore[union-attr]
        return func.__get__(o, o.__class__)(*args, **kwargs)

    wrapper._wrapped_by_lr_sched = True  # type: ignore[attr-defined]
    opt.step = wrapper  # type: ignore[method-assign]


class _Flag:
    """Sets ``obj.<name>`` to True inside a ``with`` block."""

    def __init__(self, obj: Any, name: str) -> None:
        self.obj, self.name = obj, name

    def __enter__(self) -> None:
        setattr(self.obj, self.name, True)

    def __exit__(self, *exc: Any) -> None:
        setattr(self.obj, self.name, False)


class LRScheduler:
    r"""Adjusts the learning rate of each param group during optimization.

    A subclass defines ``get_lr()`` — the new LR of each group, usually from its
    current ``group["lr"]`` — and, optionally, ``_get_closed_form_lr()`` — the LR at
    ``last_epoch`` from ``base_lrs`` — used by ``step(epoch)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        last_epoch (int): the index of the last epoch; -1 starts the schedule (and
            records each group's ``initial_lr``), anything else resumes it and needs
            ``initial_lr`` in every group. Default: -1.

    Attributes:
        base_lrs: each group's ``initial_lr``.
        last_epoch: the number of ``step()`` calls since the start (0 after
            construction).
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        # an optimizer; resumed (last_epoch not -1), every group with an initial_lr
        _core.check_scheduler("LRScheduler", {"last_epoch": last_epoch}, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.base_lrs: List[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        _track_step_called(self.optimizer)
        self._initial_step()

    def _initial_step(self) -> None:
        """Resets the step count and makes the step that sets the first LRs."""
        self._step_count = 0
        with _Flag(self, "_is_initial"):
            self.step()

    def state_dict(self) -> Dict[str, Any]:
        """The scheduler's state: every attribute but the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state from :meth:`state_dict`."""
        self.__dict__.update(state_dict)

    def get_last_lr(self) -> List[float]:
        """The LRs the last step set, one per param group."""
        return self._last_lr

    def get_lr(self) -> List[float]:
        """The new LR of each param group (the chainable form)."""
        raise NotImplementedError

    def step(self, epoch: Optional[int] = None) -> None:
        """Advances the schedule by one epoch (or, deprecated, to ``epoch``) and sets
        the LR of every param group."""
        if self._step_count == 1:
            if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
                warnings.warn(_OVERRIDDEN, UserWarning)
            elif not getattr(self.optimizer, "_opt_called", False):
                warnings.warn(_WRONG_ORDER, UserWarning)
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning)
        self._update_lr(epoch)

    def _update_lr(self, epoch: Optional[float] = None) -> None:
        with _Flag(self, "_get_lr_called_within_step"):
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch  # type: ignore[assignment]
                closed_form = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
        self._set_lrs(values)

    def _set_lrs(self, values: Sequence[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr: List[float] = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> List[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


def warn_get_lr_called_within_step(scheduler: LRScheduler) -> None:
    if not scheduler._get_lr_called_within_step:
        warnings.warn(
            "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
            UserWarning,
            stacklevel=3,
        )


class RuleScheduler(LRScheduler):
    """A scheduler whose LR formula is the core crate's rule ``_rule`` (torch's class
    name), given the attributes ``_hyper()`` returns: the formula is written once, in
    Rust (``ferroptim::lr_scheduler``), and the class keeps torch's attributes, step
    counting and warnings. A subclass may still override ``get_lr``."""

    _rule: str

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if isinstance(optimizer, Optimizer):
            # the rule's checks (torch's), before the groups change
            self.optimizer = optimizer
            _core.lr_rule_check(self._rule, self._hyper(), len(optimizer.param_groups))
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        """The attributes the rule reads, by torch's names."""
        raise NotImplementedError

    def _rule_lrs(self, closed_form: bool = False) -> Tuple[Optional[List[float]], Optional[List[float]]]:
        """The rule's LRs (None: it has no closed form) and, for the rules that cycle
        it, each group's momentum."""
        return _core.lr_rule(
            self._rule,
            self._hyper(),
            self.last_epoch,
            self._step_count,
            self._is_initial,
            self.base_lrs,
            self._current_lrs(),
            closed_form,
        )

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        lrs, momenta = self._rule_lrs()
        assert lrs is not None
        if momenta is not None:
            self._set_momenta(momenta)
        return lrs

    def _set_momenta(self, momenta: List[float]) -> None:
        """Sets each group's cycled momentum (the rules that cycle it override this)."""
        raise NotImplementedError


class ClosedFormRuleScheduler(RuleScheduler):
    """A :class:`RuleScheduler` whose rule has a closed form, which ``step(epoch)`` uses."""

    def _get_closed_form_lr(self) -> List[float]:
        lrs, _ = self._rule_lrs(closed_form=True)
        assert lrs is not None
        return lrs


class _LRScheduler(LRScheduler):
    """The old name of :class:`LRScheduler`, kept as torch keeps it."""
