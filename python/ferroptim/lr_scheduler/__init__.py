"""Learning-rate schedulers, as ``torch.optim.lr_scheduler``.

Every scheduler of torch 2.15, with its numbers, chaining (several schedulers on one
optimizer), ``state_dict``, warnings and argument errors, plus ``preview`` — the LR
(and momentum) table of a schedule, computed without training::

    opt = fo.SGD(params, lr=0.1, momentum=0.9)
    sched = fo.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    print(fo.lr_scheduler.preview(sched, 100))
    for epoch in range(100):
        ...               # forward, backward, opt.step()
        sched.step()
"""

# _LRScheduler: the old name, importable as in torch
from ._base import EPOCH_DEPRECATION_WARNING, LRScheduler, _LRScheduler  # noqa: F401
from .composite import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .cyclic import CyclicLR
from .decay import ExponentialLR, PolynomialLR
from .lambda_lr import LambdaLR, MultiplicativeLR
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .preview import Schedule, preview
from .step_lr import MultiStepLR, StepLR
from .warmup import ConstantLR, LinearLR

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "EPOCH_DEPRECATION_WARNING",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "Schedule",
    "SequentialLR",
    "StepLR",
    "preview",
]
