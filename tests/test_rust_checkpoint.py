"""A checkpoint moves between a Python program and a Rust one.

Python trains AdamW (two param groups, amsgrad in one) with a cosine schedule for a
few steps and saves the optimizer's and the scheduler's state dicts with the
parameters and the next steps' gradients; the Rust example
``rust/ferroptim/examples/checkpoint.rs`` loads them, takes those steps and saves its
own state dicts; Python, taking the same steps itself, must find the same parameters
and state, bit for bit, and must resume from the Rust file as from its own.

``scripts/test.sh`` builds the example and names it in FERROPTIM_RUST_CHECKPOINT;
without it the test is skipped (a path that does not exist fails).
"""

import os
import subprocess

import numpy as np
import pytest

import ferroptim as fo

EXAMPLE = os.environ.get("FERROPTIM_RUST_CHECKPOINT")
pytestmark = pytest.mark.skipif(not EXAMPLE, reason="the Rust example is built and named by scripts/test.sh")
SHAPES = [(3, 4), (5,), (2, 2)]


def grads_at(t):
    rng = np.random.default_rng(100 + t)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def build():
    rng = np.random.default_rng(0)
    params = [fo.Parameter(rng.standard_normal(s).astype(np.float32)) for s in SHAPES]
    opt = fo.AdamW([{"params": params[:2], "amsgrad": True}, {"params": params[2:], "lr": 0.05, "weight_decay": 0.0}],
                   lr=0.01, betas=(0.8, 0.99))
    return opt, fo.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.001), params


def step(opt, sched, params, t):
    for p, g in zip(params, grads_at(t)):
        p.grad = g
    opt.step()
    sched.step()


def same_state(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert list(a["state"]) == list(b["state"])
    for i in a["state"]:
        assert list(a["state"][i]) == list(b["state"][i])
        for key, value in a["state"][i].items():
            got = np.asarray(b["state"][i][key])
            assert got.dtype == np.asarray(value).dtype and got.shape == np.shape(value), (i, key)
            assert got.tobytes() == np.asarray(value).tobytes(), (i, key)


def test_a_rust_program_continues_a_python_checkpoint_and_python_resumes_from_its(tmp_path):
    assert os.path.exists(EXAMPLE), f"FERROPTIM_RUST_CHECKPOINT names {EXAMPLE}, which does not exist"
    opt, sched, params = build()
    for t in range(3):
        step(opt, sched, params, t)
    fo.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "params": [p.data.copy() for p in params],
             "grads": [grads_at(t) for t in range(3, 6)]}, tmp_path / "python.fo")
    subprocess.run([EXAMPLE, str(tmp_path / "python.fo"), str(tmp_path / "rust.fo")], check=True, timeout=120)
    for t in range(3, 6):
        step(opt, sched, params, t)
    rust = fo.load(tmp_path / "rust.fo")
    for p, q in zip(params, rust["params"]):
        assert q.dtype == p.data.dtype and np.array_equal(q, p.data)
    same_state(opt.state_dict(), rust["optimizer"])
    assert rust["scheduler"] == sched.state_dict()

    # Python resumes from the Rust program's state dicts as from its own
    resumed, resumed_sched, copies = build()
    for p, q in zip(copies, rust["params"]):
        p.data[...] = q
    resumed.load_state_dict(rust["optimizer"])
    resumed_sched.load_state_dict(rust["scheduler"])
    for t in range(6, 9):
        step(opt, sched, params, t)
        step(resumed, resumed_sched, copies, t)
    for p, q in zip(params, copies):
        assert np.array_equal(p.data, q.data)
    same_state(opt.state_dict(), resumed.state_dict())
    assert resumed_sched.state_dict() == sched.state_dict()
