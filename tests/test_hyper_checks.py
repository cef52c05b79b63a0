"""The constructor checks of torch's optimizers live in the Rust crate
(``Validate``; ``_core.check_hyper``): torch's order, messages and NaN handling, with
each value spelled as Python spells it, and torch's TypeError for a value that is no
number. Compared with torch itself when it is installed."""

import math

import numpy as np
import pytest

import ferroptim as fo

try:
    import torch
except ImportError:  # the comparison with torch is skipped
    torch = None

CASES = [
    ("SGD", dict(lr=-1), ValueError, "Invalid learning rate: -1"),
    ("SGD", dict(lr=-0.5), ValueError, "Invalid learning rate: -0.5"),
    ("SGD", dict(lr=0.1, momentum=-1e-08), ValueError, "Invalid momentum value: -1e-08"),
    ("SGD", dict(lr=0.1, weight_decay=-2), ValueError, "Invalid weight_decay value: -2"),
    ("SGD", dict(lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", dict(lr="fast"), TypeError, "'<' not supported between instances of 'str' and 'float'"),
    ("Adam", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("Adam", dict(lr=math.nan), ValueError, "Invalid learning rate: nan"),
    ("Adam", dict(eps=-1e-08), ValueError, "Invalid epsilon value: -1e-08"),
    ("Adam", dict(betas=(0.9, 1)), ValueError, "Invalid beta parameter at index 1: 1"),
    ("Adam", dict(betas=[1.5, 0.999]), ValueError, "Invalid beta parameter at index 0: 1.5"),
    ("Adam", dict(lr="fast"), TypeError, "'<=' not supported between instances of 'float' and 'str'"),
    ("AdamW", dict(weight_decay=-0.01), ValueError, "Invalid weight_decay value: -0.01"),
    ("Adagrad", dict(lr_decay=-1), ValueError, "Invalid lr_decay value: -1"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), ValueError, "Invalid initial_accumulator_value value: -0.1"),
    ("Adadelta", dict(rho=1.5), ValueError, "Invalid rho value: 1.5"),
    ("Adamax", dict(betas=(0.0, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("NAdam", dict(momentum_decay=-4e-3), ValueError, "Invalid momentum_decay value: -0.004"),
    ("RAdam", dict(eps=-1), ValueError, "Invalid epsilon value: -1"),
    ("RMSprop", dict(alpha=-0.99), ValueError, "Invalid alpha value: -0.99"),
    ("RMSprop", dict(momentum=-1), ValueError, "Invalid momentum value: -1"),
    ("Rprop", dict(etas=(1.5, 2)), ValueError, "Invalid eta values: 1.5, 2"),
    ("Rprop", dict(etas=[0.5, 1.0]), ValueError, "Invalid eta values: 0.5, 1.0"),
    ("ASGD", dict(lambd=-1), ValueError, "Invalid lambd value: -1"),
    ("ASGD", dict(alpha=-0.75), ValueError, "Invalid alpha value: -0.75"),
    ("Adafactor", dict(lr=-1), ValueError, "Learning rate should be >= 0 but is: -1"),
    ("Adafactor", dict(beta2_decay=0.5), ValueError, "beta2_decay should be <= 0 but is: 0.5"),
    ("Adafactor", dict(eps=(None, -1e-3)), ValueError, "epsilon2 should be >= 0 but is: -0.001"),
    ("Adafactor", dict(eps=(-1.0, 1e-3)), ValueError, "epsilon1 should be >= 0 but is: -1.0"),
    ("Adafactor", dict(d=0.5), ValueError, "Clipping threshold d should be >= 1 but is: 0.5"),
    ("Adafactor", dict(lr=None), TypeError, "'<=' not supported between instances of 'float' and 'NoneType'"),
    ("Adafactor", dict(beta2_decay="x"), TypeError, "'>=' not supported between instances of 'float' and 'str'"),
    ("Muon", dict(momentum=-0.5), ValueError, "momentum should be >= 0 but is: -0.5"),
    ("Muon", dict(weight_decay=-1), ValueError, "weight decay should be >= 0 but is: -1"),
    ("Muon", dict(adjust_lr_fn="x"), ValueError, "Adjust learning rate function x is not supported"),
    ("LBFGS", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("SparseAdam", dict(lr=0), ValueError, "Invalid learning rate: 0"),
    ("SparseAdam", dict(eps=0.0), ValueError, "Invalid epsilon value: 0.0"),
    ("SparseAdam", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("SparseAdam", dict(lr=None), TypeError, "'<' not supported between instances of 'float' and 'NoneType'"),
]
# timm's ADOPT: the checks of torch's Adam, in the Rust crate too
BEYOND = [
    ("ADOPT", dict(lr=-1), ValueError, "Invalid learning rate: -1"),
    ("ADOPT", dict(eps=-1e-06), ValueError, "Invalid epsilon value: -1e-06"),
    ("ADOPT", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("ADOPT", dict(weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    # schedulefree's SGDScheduleFree (ScheduleFreeSGD here): `lr < 0.0`, `momentum <= 0 or momentum >= 1`
    ("ScheduleFreeSGD", dict(lr=-1), ValueError, "Invalid learning rate: -1"),
    ("ScheduleFreeSGD", dict(weight_decay=-0.5), ValueError, "Invalid weight_decay value: -0.5"),
    ("ScheduleFreeSGD", dict(momentum=0), ValueError, "Momentum must be between 0 and 1 exclusive: 0"),
    ("ScheduleFreeSGD", dict(momentum=1.0), ValueError, "Momentum must be between 0 and 1 exclusive: 1.0"),
    ("ScheduleFreeSGD", dict(lr="fast"), TypeError, "'<' not supported between instances of 'str' and 'float'"),
    ("ScheduleFreeSGD", dict(momentum="x"), TypeError, "'<=' not supported between instances of 'str' and 'int'"),
    # timm's Adan and Lars, prodigyopt's Prodigy
    ("Adan", dict(betas=(0.98, 0.92, 1.0)), ValueError, "Invalid beta parameter at index 2: 1.0"),
    ("Adan", dict(eps=-1e-08), ValueError, "Invalid epsilon value: -1e-08"),
    ("Adan", dict(betas=(0.98,)), IndexError, "tuple index out of range"),
    ("LARS", dict(momentum=-1), ValueError, "Invalid momentum value: -1"),
    ("LARS", dict(nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    ("LARS", dict(lr=None), TypeError, "'<' not supported between instances of 'NoneType' and 'float'"),
    ("Prodigy", dict(d0=0), ValueError, "Invalid d0 value: 0"),
    ("Prodigy", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("Prodigy", dict(betas=(0.9, 1)), ValueError, "Invalid beta parameter at index 1: 1"),
    ("Prodigy", dict(eps=None), TypeError, "'<' not supported between instances of 'float' and 'NoneType'"),
    # timm's Lion and Lamb (`float(value) < 0`, and the peak LR of corrected weight decay)
    ("Lion", dict(lr=-1), ValueError, "Invalid learning rate: -1"),
    ("Lion", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("Lion", dict(lr=0, corrected_weight_decay=True), ValueError,
     "Corrected weight decay requires a positive max lr, got 0.0. Construct the optimizer with the peak lr."),
    ("LAMB", dict(eps=-1e-06), ValueError, "Invalid epsilon: -1e-06"),
    ("LAMB", dict(weight_decay="x"), ValueError, "could not convert string to float: 'x'"),
    ("LAMB", dict(lr=None), TypeError, "float() argument must be a string or a real number, not 'NoneType'"),
    # pytorch-optimizer's AdEMAMix (None passes its non-negative checks)
    ("AdEMAMix", dict(lr=-0.5), ValueError, "learning rate must be positive. (-0.5 > 0)"),
    ("AdEMAMix", dict(betas=(0.9, 0.999, 1.5)), ValueError, "beta3 must be in the range [0.0, 1.0]"),
    ("AdEMAMix", dict(alpha=-1), ValueError, "alpha must be non-negative"),
    # bitsandbytes' checks, every 8-bit class
    ("Adam8bit", dict(lr=-1), ValueError, "Invalid learning rate: -1"),
    ("Lion8bit", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("AdEMAMix8bit", dict(betas=(0.9, 0.999, 1.0)), ValueError, "Invalid beta parameter at index 2: 1.0"),
    ("RMSprop8bit", dict(eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08"),
    # Adagrad8bit checks its weight decay before its eps
    ("Adagrad8bit", dict(eps=-1e-8, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    ("Adagrad8bit", dict(lr=-0.5, weight_decay=-1), ValueError, "Invalid learning rate: -0.5"),
    ("Adagrad8bit", dict(eps="x"), TypeError, "'<=' not supported between instances of 'float' and 'str'"),
]


def raised(make):
    try:
        make()
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return type(e), str(e)
    return None


@pytest.mark.parametrize("name,kwargs,exc,message", CASES + BEYOND, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES + BEYOND)])
def test_refuses_with_torchs_message(name, kwargs, exc, message):
    got = raised(lambda: getattr(fo, name)([fo.Parameter(np.zeros(2))], **kwargs))
    assert got == (exc, message)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("name,kwargs,exc,message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_refuses_as_torch_refuses(name, kwargs, exc, message):
    ours = raised(lambda: getattr(fo, name)([fo.Parameter(np.zeros(2))], **kwargs))
    theirs = raised(lambda: getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))], **kwargs))
    assert ours == theirs


try:
    import timm.optim as timm_optim
except ImportError:  # the comparison with timm is skipped
    timm_optim = None


@pytest.mark.skipif(timm_optim is None, reason="timm is not installed")
@pytest.mark.parametrize("name,timm_name", [("Lion", "Lion"), ("LAMB", "Lamb"), ("ADOPT", "Adopt")])
@pytest.mark.parametrize("lr", [0, -0.0, math.nan, "x", None])
def test_timms_checks_of_the_peak_lr_as_timm(name, timm_name, lr):
    kw = dict(lr=lr, corrected_weight_decay=True)
    ours = raised(lambda: getattr(fo, name)([fo.Parameter(np.zeros(2))], **kw))
    theirs = raised(lambda: getattr(timm_optim, timm_name)([torch.nn.Parameter(torch.zeros(2))], **kw))
    assert ours == theirs


@pytest.mark.skipif(timm_optim is None, reason="timm is not installed")
@pytest.mark.parametrize("kwargs", [
    dict(betas=(0.9, 0.9999, 0.5)), dict(betas=(0.9,)), dict(betas=(None, 0.9999)), dict(clip_exp="x"),
    dict(lr="x"), dict(lr=None), dict(eps=None), dict(weight_decay=-1), dict(lr=-0.0, corrected_weight_decay=True),
], ids=str)
def test_adopt_checks_as_timm(kwargs):
    # timm compares before it takes float(lr), and checks the betas it indexes only
    ours = raised(lambda: fo.ADOPT([fo.Parameter(np.zeros(2))], **kwargs))
    theirs = raised(lambda: timm_optim.Adopt([torch.nn.Parameter(torch.zeros(2))], **kwargs))
    assert ours == theirs


def test_sgd_lets_a_nan_lr_through_as_torch_does():
    # torch's SGD checks `lr < 0.0`, which NaN passes; the others `not 0.0 <= lr`
    fo.SGD([fo.Parameter(np.zeros(2))], lr=math.nan)
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        fo.Adagrad([fo.Parameter(np.zeros(2))], lr=math.nan)


try:
    import bitsandbytes.optim as bnb_optim
except ImportError:  # the comparison with bitsandbytes is skipped
    bnb_optim = None

EIGHT_BIT = [c for c in BEYOND if c[0].endswith("8bit")]


@pytest.mark.skipif(bnb_optim is None or torch is None, reason="bitsandbytes is not installed")
@pytest.mark.parametrize("name,kwargs,exc,message", EIGHT_BIT, ids=[f"{c[0]}-{i}" for i, c in enumerate(EIGHT_BIT)])
def test_eight_bit_refuses_as_bitsandbytes(name, kwargs, exc, message):
    ours = raised(lambda: getattr(fo, name)([fo.Parameter(np.zeros(2))], **kwargs))
    theirs = raised(lambda: getattr(bnb_optim, name)([torch.nn.Parameter(torch.zeros(2))], **kwargs))
    assert ours == theirs
