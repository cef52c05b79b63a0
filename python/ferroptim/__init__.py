"""ferroptim: torch.optim for NumPy, on a Rust core.

The optimizers, ``Optimizer`` base class and ``Parameter`` of ``torch.optim``, with the
same arguments, defaults, numbers and ``state_dict`` layout, for parameters that are
NumPy arrays::

    import numpy as np
    import ferroptim as fo

    w = fo.Parameter(np.random.randn(784, 128).astype(np.float32))
    opt = fo.AdamW([w], lr=1e-3, weight_decay=1e-2)
    w.grad = ...          # an array shaped like w.data
    opt.step()
    opt.zero_grad()
"""

from . import functional, interop, lr_scheduler, swa_utils, tree, utils
from ._core import __version__
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .adan import Adan
from .ademamix import AdEMAMix
from .adopt import ADOPT
from .asgd import ASGD
from .checkpoint import CheckpointError, load, save
from .flat import FlatParameter, FlatParameters
from .eight_bit import Adagrad8bit, Adam8bit, AdamW8bit, AdEMAMix8bit, Lion8bit, RMSprop8bit, SGD8bit
from .lamb import LAMB
from .lars import LARS
from .lbfgs import LBFGS
from .lion import Lion
from .muon import Muon
from .nadam import NAdam
from .nonfinite import SkipNonFinite
from .optimizer import Optimizer, register_optimizer_step_post_hook, register_optimizer_step_pre_hook, required
from .parameter import Parameter
from .prodigy import Prodigy
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedule_free import ScheduleFreeAdamW, ScheduleFreeRAdam, ScheduleFreeSGD
from .sgd import SGD
from .sparse_adam import SparseAdam
from .sparse_grad import SparseGrad
from .threads import _check_environment, get_num_threads, set_num_threads

__all__ = [
    "ADOPT",
    "ASGD",
    "AdEMAMix",
    "AdEMAMix8bit",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adagrad8bit",
    "Adam",
    "Adam8bit",
    "AdamW",
    "AdamW8bit",
    "Adan",
    "Adamax",
    "CheckpointError",
    "LAMB",
    "LARS",
    "LBFGS",
    "Lion",
    "Lion8bit",
    "Muon",
    "NAdam",
    "Optimizer",
    "FlatParameter",
    "FlatParameters",
    "Parameter",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "RMSprop8bit",
    "Rprop",
    "SGD",
    "SGD8bit",
    "ScheduleFreeAdamW",
    "ScheduleFreeRAdam",
    "ScheduleFreeSGD",
    "SkipNonFinite",
    "SparseAdam",
    "SparseGrad",
    "get_num_threads",
    "functional",
    "interop",
    "load",
    "lr_scheduler",
    "register_optimizer_step_post_hook",
    "register_optimizer_step_pre_hook",
    "required",
    "save",
    "set_num_threads",
    "swa_utils",
    "tree",
    "utils",
    "__version__",
]

_check_environment()
