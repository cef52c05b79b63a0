"""bitsandbytes' 8-bit optimizers beyond the recorded replay: what they refuse, their
state layout and size, float64 parameters, and — when torch and bitsandbytes are
installed — state handed to bitsandbytes and back mid-training, and random
configurations stepped side by side with it."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

import ferroptim as fo
from ferroptim._eight_bit import QUANT_STATE_KEY

HAVE_BNB = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("bitsandbytes") is not None
needs_bnb = pytest.mark.skipif(not HAVE_BNB, reason="needs torch and bitsandbytes")


def params(shapes=((64, 80), (700,), (2, 3)), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [fo.Parameter((rng.standard_normal(s) * 0.5).astype(dtype)) for s in shapes]


def grads(ps, t, scales=(1.0, 1e-3, 30.0)):
    rng = np.random.default_rng(100 + t)
    return [(rng.standard_normal(p.data.shape) * scales[i % 3]).astype(np.float32) for i, p in enumerate(ps)]


def step(opt, ps, t):
    for p, g in zip(ps, grads(ps, t)):
        p.grad = g
    opt.step()


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda ps: fo.Adam8bit(ps, amsgrad=True), "does not support amsgrad=True"),
        (lambda ps: fo.AdamW8bit(ps, optim_bits=8), "only supports optim_bits=32"),
        (lambda ps: fo.Adagrad8bit(ps, optim_bits=32), "only supports optim_bits=8"),
        (lambda ps: fo.Adagrad8bit(ps, lr_decay=0.1), "Lr Decay"),
        (lambda ps: fo.Adagrad8bit(ps, initial_accumulator_value=0.1), "Initial accumulator value"),
        (lambda ps: fo.SGD8bit(ps, lr=0.1), "SGD without momentum is not supported"),
        (lambda ps: fo.SGD8bit(ps, lr=0.1, momentum=0.9, nesterov=True), "nesterov"),
        (lambda ps: fo.SGD8bit(ps, lr=0.1, momentum=0.9, dampening=0.1), "dampening"),
        (lambda ps: fo.RMSprop8bit(ps, centered=True), "Centered RMSprop"),
        (lambda ps: fo.RMSprop8bit(ps, alpha=0), "alpha==0.0"),
        (lambda ps: fo.RMSprop8bit(ps, momentum=0.9), "momentum"),
        (lambda ps: fo.Adam8bit(ps, betas=(0.9, 1.0)), r"Invalid beta parameter at index 1: 1.0"),
        (lambda ps: fo.Lion8bit(ps, lr=-1), "Invalid learning rate: -1"),
        (lambda ps: fo.AdEMAMix8bit(ps, eps=-1), "Invalid epsilon value: -1"),
        (lambda ps: fo.AdEMAMix8bit(ps, betas=(0.9, 0.999)), "three betas"),
    ],
)
def test_refuses_what_bitsandbytes_refuses(make, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make(params())


def test_state_layout_and_bytes_per_element():
    p = fo.Parameter(np.zeros(1 << 20, np.float32))
    small = fo.Parameter(np.zeros(100, np.float32))
    opt = fo.Adam8bit([p, small])
    p.grad, small.grad = np.ones_like(p.data), np.ones_like(small.data)
    opt.step()
    st = opt.state[p]
    assert {k: (v.dtype, v.shape) for k, v in st.items() if k != "step"} == {
        "state1": (np.uint8, p.data.shape), "state2": (np.uint8, p.data.shape),
        "absmax1": (np.float32, (4096,)), "absmax2": (np.float32, (4096,)),
        "qmap1": (np.float32, (256,)), "qmap2": (np.float32, (256,)),
    }
    assert float(st["step"]) == 1.0
    nbytes = sum({id(v): v.nbytes for v in st.values() if isinstance(v, np.ndarray) and v.ndim}.values())
    assert nbytes / p.data.size <= 2.1
    # below min_8bit_size: float32 state, no maps
    assert sorted(opt.state[small]) == ["state1", "state2", "step"]
    assert opt.state[small]["state1"].dtype == np.float32
    # the maps are shared by the parameters whose state one step created
    q = fo.Adam8bit(params(), min_8bit_size=1)
    step(q, q.param_groups[0]["params"], 0)
    maps = {id(q.state[p]["qmap1"]) for p in q.param_groups[0]["params"]}
    assert len(maps) == 1


def test_ademamix_state1_holds_both_emas():
    ps = params(((300,),))
    opt = fo.AdEMAMix8bit(ps, min_8bit_size=1)
    step(opt, ps, 0)
    st = opt.state[ps[0]]
    assert st["state1"].shape == (2, 300) and st["absmax1"].shape == (2, 2) and st["state2"].shape == (300,)


def test_float64_parameters_are_updated_in_float32():
    p64, p32 = params(dtype=np.float64), params()
    for a, b in zip(p64, p32):
        a.data[...] = b.data
    o64, o32 = fo.Adam8bit(p64, min_8bit_size=1), fo.Adam8bit(p32, min_8bit_size=1)
    for t in range(3):
        step(o64, p64, t)
        step(o32, p32, t)
    for a, b in zip(p64, p32):
        assert a.data.dtype == np.float64
        np.testing.assert_array_equal(a.data, b.data.astype(np.float64))
        np.testing.assert_array_equal(o64.state[a]["state1"], o32.state[b]["state1"])


def test_interop_writes_bitsandbytes_layout_and_reads_it_back():
    ps = params()
    opt = fo.Adam8bit(ps, min_8bit_size=1000)
    for t in range(2):
        step(opt, ps, t)
    sd = fo.interop.to_torch_state_dict(opt.state_dict(), tensor=np.array, scalar_dtype=np.float64)
    entry = sd["state"][0]
    assert entry["step"] == 2 and isinstance(entry["step"], int)
    assert sorted(entry[QUANT_STATE_KEY]) == ["absmax1", "absmax2", "qmap1", "qmap2", "state1", "state2"]
    assert sorted(sd["state"][2][QUANT_STATE_KEY]) == ["state1", "state2"]  # the small one: float32 state
    back = fo.interop.from_torch_state_dict(sd)
    assert QUANT_STATE_KEY not in back["state"][0]
    ps2 = params()
    for a, b in zip(ps2, ps):
        a.data[...] = b.data
    opt2 = fo.Adam8bit(ps2, min_8bit_size=1000)
    opt2.load_state_dict(sd)  # the nested layout loads directly too
    step(opt, ps, 2)
    step(opt2, ps2, 2)
    for a, b in zip(ps, ps2):
        np.testing.assert_array_equal(a.data, b.data)


# ---------------------------------------------------------------- live bitsandbytes

BNB_CASES = [
    ("Adam8bit", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW8bit", dict()),
    ("Lion8bit", dict(lr=1e-3)),
    ("SGD8bit", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("RMSprop8bit", dict(lr=1e-3, weight_decay=0.01)),
    ("Adagrad8bit", dict(lr=0.01)),
    ("AdEMAMix8bit", dict(lr=0.01, t_alpha=4, t_beta3=4)),
]


def bnb_twin(name, kw, ps):
    import torch

    warnings.simplefilter("ignore")
    import bitsandbytes as bnb

    tp = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in ps]
    return getattr(bnb.optim, name)(tp, **kw), tp


def bnb_step(opt, tp, gs):
    import torch

    for p, g in zip(tp, gs):
        p.grad = torch.from_numpy(g.copy())
    opt.step()


def agree(ps, tp):
    for p, t in zip(ps, tp):
        ok = np.isclose(p.data, t.detach().numpy(), rtol=2e-5, atol=0)
        assert ok.mean() >= 0.995


@needs_bnb
@pytest.mark.parametrize("name,kw", BNB_CASES, ids=[c[0] for c in BNB_CASES])
@pytest.mark.parametrize("min_size", [1, 4096])
def test_side_by_side_with_state_handed_over_both_ways(name, kw, min_size):
    import torch

    kw = dict(kw, min_8bit_size=min_size)
    ps = params()
    opt = getattr(fo, name)(ps, **kw)
    theirs, tp = bnb_twin(name, kw, ps)
    for t in range(3):
        gs = grads(ps, t)
        step(opt, ps, t)
        bnb_step(theirs, tp, gs)
        agree(ps, tp)
    # ferroptim's state into bitsandbytes, then bitsandbytes' back into a new ferroptim
    theirs2, tp2 = bnb_twin(name, kw, ps)
    theirs2.load_state_dict(fo.interop.to_torch_state_dict(opt.state_dict()))
    bnb_step(theirs2, tp2, grads(ps, 3))
    step(opt, ps, 3)
    agree(ps, tp2)
    ps3 = params()
    for a, b in zip(ps3, tp2):
        a.data[...] = b.detach().numpy()
    mine = getattr(fo, name)(ps3, **kw)
    mine.load_state_dict(fo.interop.from_torch_state_dict(theirs2.state_dict()))
    step(mine, ps3, 4)
    bnb_step(theirs2, tp2, grads(ps, 4))
    agree(ps3, tp2)
    for p, t in zip(ps3, tp2):
        for key, value in theirs2.state[t].items():
            if isinstance(value, torch.Tensor) and value.dtype == torch.uint8:
                assert (mine.state[p][key] == value.numpy()).mean() >= 0.995


def test_fo_save_and_load_resume_bit_identically(tmp_path):
    ps = params()
    opt = fo.AdEMAMix8bit(ps, min_8bit_size=1000)
    for t in range(2):
        step(opt, ps, t)
    fo.save(opt.state_dict(), tmp_path / "opt.ckpt")
    ps2 = [fo.Parameter(p.data.copy()) for p in ps]
    opt2 = fo.AdEMAMix8bit(ps2, min_8bit_size=1000)
    opt2.load_state_dict(fo.load(tmp_path / "opt.ckpt"))
    assert opt2.state[ps2[0]]["state1"].dtype == np.uint8 and opt2.state[ps2[2]]["state1"].dtype == np.float32
    step(opt, ps, 2)
    step(opt2, ps2, 2)
    for a, b in zip(ps, ps2):
        np.testing.assert_array_equal(a.data, b.data)
        for key, value in opt.state[a].items():
            np.testing.assert_array_equal(value, opt2.state[b][key])


def test_a_load_with_misshapen_quantization_state_changes_nothing():
    ps = params()
    opt = fo.Adam8bit(ps, min_8bit_size=1)
    step(opt, ps, 0)
    sd = opt.state_dict()
    before = {k: v.copy() for k, v in opt.state[ps[0]].items()}
    for key, bad in (("absmax1", np.zeros(3, np.float32)), ("qmap2", np.zeros(255, np.float32)),
                     ("state1", np.zeros((64, 81), np.uint8))):
        broken = {"state": {**sd["state"], 0: {**sd["state"][0], key: bad}}, "param_groups": sd["param_groups"]}
        with pytest.raises(ValueError, match=f"'{key}' has shape"):
            opt.load_state_dict(broken)
        for k, v in before.items():
            np.testing.assert_array_equal(opt.state[ps[0]][k], v)
