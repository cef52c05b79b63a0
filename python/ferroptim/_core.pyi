"""Type stubs of ``ferroptim._core``, the Rust extension (see rust/ferroptim-py)."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, final

import numpy as np

__all__ = [
    "check_hyper",
    "check_scheduler",
    "sgd_step",
    "adam_step",
    "adagrad_step",
    "adadelta_step",
    "adamax_step",
    "nadam_step",
    "radam_step",
    "rmsprop_step",
    "rprop_step",
    "asgd_step",
    "adafactor_step",
    "muon_step",
    "lbfgs_step",
    "bucket_pack",
    "bucket_unpack_",
    "checkpoint_dumps",
    "checkpoint_loads",
    "sparse_adam_step",
    "lion_step",
    "lars_step",
    "lamb_step",
    "adan_step",
    "adopt_step",
    "ademamix_step",
    "schedule_free_sgd_step",
    "schedule_free_adamw_step",
    "schedule_free_radam_step",
    "prodigy_step",
    "eight_bit_step",
    "average_",
    "grad_norms",
    "grad_scale_",
    "grad_clamp_",
    "StepPlan",
    "set_num_threads",
    "get_num_threads",
    "stream",
    "lr_rule",
    "lr_rule_check",
    "cyclic_scale",
    "cyclic_size",
    "one_cycle_lr_points",
    "one_cycle_phases",
    "warm_restarts_position",
    "plateau_is_better",
    "plateau_reduced",
    "swa_alpha",
    "NUM_THREADS_ENV",
    "__version__",
]

__version__: str
NUM_THREADS_ENV: str

@final
class StepPlan:
    """What an optimizer's last fully checked step verified of its arrays (see rust/ferroptim-py/src/plan.rs)."""
    recorded: bool
    shared_replays: int
    attached_replays: int
    dict_versions: bool
    def clear(self) -> None: ...

# Elementwise optimizers: one step over every param group; state created on a
# parameter's first step, every array checked, then updated in place.
def sgd_step(
    state: Dict[Any, Dict[str, Any]],
    param_groups: List[Dict[str, Any]],
    scalar_keys: Tuple[str, ...],
    buffer_keys: Tuple[str, ...],
    grads: Optional[List[Any]] = None,
    plan: Optional["StepPlan"] = None,
) -> None: ...
adam_step = sgd_step
adagrad_step = sgd_step
adadelta_step = sgd_step
adamax_step = sgd_step
nadam_step = sgd_step
radam_step = sgd_step
rmsprop_step = sgd_step
rprop_step = sgd_step
asgd_step = sgd_step

# ... and Adafactor and Muon, whose update needs the whole tensor, through the same step.
adafactor_step = sgd_step
muon_step = sgd_step

# The optimizers beyond torch.optim, through the same step.
lion_step = sgd_step
lars_step = sgd_step
adopt_step = sgd_step
adan_step = sgd_step
schedule_free_sgd_step = sgd_step
schedule_free_adamw_step = sgd_step
schedule_free_radam_step = sgd_step
prodigy_step = sgd_step

def ademamix_step(
    state: Dict[Any, Dict[str, Any]],
    param_groups: List[Dict[str, Any]],
    scalar_keys: Tuple[str, ...],
    buffer_keys: Tuple[str, ...],
    maximize: bool,
    grads: Optional[List[Any]] = None,
    plan: Optional["StepPlan"] = None,
) -> None: ...
def lamb_step(
    state: Dict[Any, Dict[str, Any]],
    param_groups: List[Dict[str, Any]],
    scalar_keys: Tuple[str, ...],
    buffer_keys: Tuple[str, ...],
    max_grad_norm: Optional[float],
    grads: Optional[List[Any]] = None,
    plan: Optional["StepPlan"] = None,
) -> None: ...

# bitsandbytes' 8-bit optimizers: rule is its optimizer_name; parameters below
# min_8bit_size elements keep float32 state.
def eight_bit_step(
    state: Dict[Any, Dict[str, Any]],
    param_groups: List[Dict[str, Any]],
    scalar_keys: Tuple[str, ...],
    buffer_keys: Tuple[str, ...],
    rule: str,
    min_8bit_size: int,
    grads: Optional[List[Any]] = None,
    plan: Optional["StepPlan"] = None,
) -> None: ...

# SparseAdam: the lists hold, per parameter with a gradient, its (group, index in the
# group), .data, the gradient's values, its state arrays by key and its step.
def sparse_adam_step(
    groups: List[Dict[str, Any]],
    positions: List[Tuple[int, int]],
    data: List[np.ndarray],
    grads: List[Any],
    states: List[List[Tuple[str, np.ndarray]]],
    steps: List[np.ndarray],
) -> None: ...
def lbfgs_step(group: Dict[str, Any], state: Dict[str, Any], closure: Callable[[], Any]) -> Any:
    """Up to max_iter L-BFGS iterations; returns the closure's first loss."""

def average_(averaged: Sequence[np.ndarray], current: Sequence[Any], how: str, value: float) -> None:
    """swa_utils' averaging, in place: how="mean": a += (c − a)/value; how="lerp": a = lerp(a, c, value)."""

def grad_norms(grads: Sequence[np.ndarray], norm_type: float) -> List[float]:
    """The norm of each array (float64 sums; norm_type may be ±inf or 0)."""

def grad_scale_(grads: Sequence[np.ndarray], factor: float) -> None:
    """g *= factor (rounded to each array's dtype), in place."""

def grad_clamp_(grads: Sequence[np.ndarray], lo: float, hi: float) -> None:
    """g = clamp(g, lo, hi) in place; NaN stays NaN."""

def bucket_pack(parts: Sequence[np.ndarray], out: np.ndarray) -> None:
    """out = concat(parts) (one dtype; out as long as the parts together), in one call."""

def bucket_unpack_(buffer: np.ndarray, parts: Sequence[np.ndarray], divisor: float) -> None:
    """parts[i] = buffer[offset_i:offset_i + len(parts[i])] / divisor (1: a copy), in place."""

def check_scheduler(kind: str, args: Dict[str, Any], optimizer: Any) -> None:
    """torch's constructor checks of scheduler ``kind`` on ``args`` (its arguments as
    given) and ``optimizer``, in torch's order, with torch's exceptions."""

def check_hyper(kind: str, values: Dict[str, Any]) -> None:
    """torch's constructor checks of optimizer ``kind`` on its defaults (the Rust crate's
    ``Validate``): ValueError with torch's message, each value spelled as Python does."""
def checkpoint_dumps(entries: Sequence[Tuple[str, str, Sequence[int], bytes]], tree: str) -> bytes:
    """A checkpoint file's bytes (safetensors): entries as (name, safetensors dtype, shape, bytes)."""

def checkpoint_loads(data: bytes) -> Tuple[str, List[Tuple[str, str, List[int], int, int]]]:
    """A checkpoint's tree and entries as (name, dtype, shape, start, end) into data, checksum verified."""

def lr_rule(
    kind: str,
    hyper: Dict[str, Any],
    last_epoch: int,
    step_count: int,
    is_initial: bool,
    base_lrs: Sequence[float],
    lrs: Sequence[float],
    closed_form: bool = False,
) -> Tuple[Optional[List[float]], Optional[List[float]]]:
    """The new LR of each param group by the scheduler rule `kind` (torch's class name)
    with the attributes `hyper`: torch's get_lr, or with closed_form its
    _get_closed_form_lr (None where the rule has none); and each group's momentum for
    the rules that cycle it (else None)."""

def cyclic_scale(mode: str, gamma: float, x: float) -> float:
    """CyclicLR's scale_fn(x) for a built-in mode."""

def cyclic_size(step_size_up: float, step_size_down: Optional[float] = None) -> Tuple[float, float]:
    """CyclicLR's (total_size, step_ratio)."""

def one_cycle_lr_points(max_lr: float, div_factor: float, final_div_factor: float) -> Tuple[float, float]:
    """OneCycleLR's (initial_lr, min_lr) of a group peaking at max_lr."""

def one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool) -> List[Tuple[Union[float, int], str, str, str, str]]:
    """OneCycleLR's phases: (end step, start LR, end LR, start momentum, end momentum)."""

def lr_rule_check(kind: str, hyper: Dict[str, Any], groups: int) -> None:
    """Checks the attributes of the scheduler rule `kind` for `groups` param groups
    (ValueError with torch's message)."""

def warm_restarts_position(
    t_0: int, t_mult: int, t_i: float, t_cur: float, epoch: Optional[float] = None
) -> Tuple[float, int]:
    """CosineAnnealingWarmRestarts' (T_cur, T_i) after one more epoch, or at `epoch`."""

def swa_alpha(strategy: str, t: float) -> float:
    """SWALR's anneal_func(t): (1 - cos(pi t))/2 for "cos", else t."""

def plateau_is_better(mode: str, threshold_mode: str, threshold: float, a: float, best: float) -> bool:
    """ReduceLROnPlateau's is_better(a, best)."""

def plateau_reduced(lr: float, factor: float, min_lr: float, eps: float) -> float:
    """The LR a ReduceLROnPlateau reduction gives a group at `lr`."""

def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def stream(
    params: Sequence[np.ndarray],
    grads: Sequence[np.ndarray],
    buffers: Sequence[Sequence[np.ndarray]],
    access: Union[str, List[str], None] = None,
    scale: float = 1.0,
) -> None:
    """The benchmark's bandwidth probe: θ += s·g and b += s·g for each buffer, on the kernels'
    pool; with ``access`` (one of '-', 'r', 'w' per array: θ, g, then the buffers), a
    pass that adds s·(the arrays read) to each array written; with a list, those passes
    in turn (s: scale)."""
