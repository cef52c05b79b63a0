"""Training with the autodiff libraries the README names, through the examples in
examples/ (each skipped when its library is missing): mygrad tensors as parameters,
autograd's and jax's gradient trees, L-BFGS with a jax closure."""

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import ferroptim as fo

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mygrad_tensors_train_with_backward_step_and_zero_grad():
    mg = pytest.importorskip("mygrad")
    assert example("mygrad_regression").main() < 1e-6
    w = mg.tensor(np.ones(3))
    opt = fo.SGD([w], lr=0.5)
    (w**2).sum().backward()
    opt.step()
    assert np.allclose(w.data, 0.0)  # w - 0.5 · 2w
    opt.zero_grad()
    assert w.grad is None


def test_autograd_gradient_trees():
    pytest.importorskip("autograd")
    assert example("autograd_tree").main() < 0.01


def test_jax_gradient_trees_and_lbfgs_with_a_jax_closure():
    # in a process of its own: jax starts threads, and other tests here fork
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    run = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "jax_trees_and_lbfgs.py")], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    found = re.search(r"Adam: loss ([0-9.]+) .*L-BFGS: loss ([0-9.]+)", run.stdout)
    assert found, run.stdout
    adam, lbfgs = float(found.group(1)), float(found.group(2))
    assert lbfgs < 0.2 and adam < 0.2
    assert lbfgs <= adam + 1e-3  # L-BFGS reaches at least Adam's loss in one step of 50 iterations
