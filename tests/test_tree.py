"""Parameter trees (``fo.tree``): names, order, identity, and ``step(grads=tree)``
matched by name."""

import importlib.util
import subprocess
import sys
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import ferroptim as fo

Pair = namedtuple("Pair", ["w", "b"])


def model():
    rng = np.random.default_rng(0)
    return {
        "layers": [
            {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)},
            Pair(rng.standard_normal((2, 2)), rng.standard_normal(2)),
        ],
        "scale": (rng.standard_normal(1), None),
        "embed": rng.standard_normal((4, 3)),
    }


def test_names_follow_the_path_in_a_fixed_order_and_leaves_are_the_arrays_themselves():
    params = model()
    pairs = fo.tree.named_parameters(params)
    assert [n for n, _ in pairs] == [
        "embed", "layers.0.b", "layers.0.w", "layers.1.w", "layers.1.b", "scale.0",
    ]
    assert pairs[0][1] is params["embed"] and pairs[2][1] is params["layers"][0]["w"]
    assert [n for n, _ in fo.tree.named_parameters([np.zeros(1), [np.zeros(2)]], prefix="m")] == ["m.0", "m.1.0"]
    # dict keys sorted whatever their insertion order
    a, b = np.zeros(1), np.zeros(2)
    assert fo.tree.named_parameters(OrderedDict([("b", b), ("a", a)])) == [("a", a), ("b", b)]


def test_bad_trees_are_refused_with_the_path():
    with pytest.raises(TypeError, match=r"the leaf 'layers.0' is int"):
        fo.tree.named_parameters({"layers": [3]})
    with pytest.raises(ValueError, match="holds no arrays"):
        fo.tree.named_parameters({"a": None, "b": []})


def test_step_with_a_gradient_tree_matches_by_name_and_updates_the_tree_in_place():
    params, single = model(), model()
    opt = fo.Adam(fo.tree.named_parameters(params), lr=0.1)
    ref = fo.Adam([a for _, a in fo.tree.named_parameters(single)], lr=0.1)
    grads = {
        "embed": np.ones((4, 3)),
        "layers": [{"b": np.full(2, 2.0), "w": np.full((3, 2), 3.0)}, Pair(np.full((2, 2), 4.0), np.full(2, 5.0))],
        "scale": [np.full(1, 6.0), None],
    }
    for _ in range(2):
        opt.step(grads=grads)
        ref.step(grads=[g for _, g in fo.tree.named_leaves(grads) if g is not None])
    for (_, a), (_, b) in zip(fo.tree.named_parameters(params), fo.tree.named_parameters(single)):
        assert a.tobytes() == b.tobytes()
    assert opt.param_groups[0]["param_names"][0] == "embed"


def test_a_mapping_from_items_matches_by_key_and_a_flat_list_stays_positional():
    w, b = np.zeros((2, 2)), np.zeros(2)
    opt = fo.SGD({"w": w, "b": b}.items(), lr=1.0)
    opt.step(grads={"b": np.ones(2), "w": np.full((2, 2), 2.0)})  # another order
    assert (w == -2).all() and (b == -1).all()
    opt.step(grads=[np.ones((2, 2)), np.ones(2)])  # positional: w, b
    assert (w == -3).all() and (b == -2).all()


def test_mismatched_names_and_unnamed_optimizers_are_clear_errors_and_change_nothing():
    w, b = np.zeros((2, 2)), np.zeros(2)
    opt = fo.Adam({"w": w, "b": b}.items())
    with pytest.raises(ValueError, match=r"missing 'b'; unexpected 'bias'"):
        opt.step(grads={"w": np.ones((2, 2)), "bias": np.ones(2)})
    assert (w == 0).all() and not opt.state
    unnamed = fo.Adam([w, b])
    with pytest.raises(ValueError, match=r"parameters have no names: build it from named parameters"):
        unnamed.step(grads={"w": np.ones((2, 2)), "b": np.ones(2)})


def test_autograd_gradient_trees():
    autograd = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")
    params = {"w": np.ones((3, 2)), "b": np.zeros(2)}
    x = np.arange(6.0).reshape(2, 3)

    def loss(p):
        return anp.sum((anp.dot(x, p["w"]) + p["b"]) ** 2)

    opt = fo.Adam(fo.tree.named_parameters(params), lr=0.1)
    before = loss(params)
    for _ in range(20):
        opt.step(grads=autograd.grad(loss)(params))
    assert loss(params) < before


JAX_CASE = """
import jax, numpy as np, ferroptim as fo

@jax.tree_util.register_pytree_node_class
class Linear:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def tree_flatten(self):
        return (self.w, self.b), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

params = {"lin": Linear(np.ones((3, 2), np.float32), np.zeros(2, np.float32))}
assert [n for n, _ in fo.tree.named_parameters(params)] == ["lin.0", "lin.1"]
x = jax.numpy.arange(6.0).reshape(2, 3)

def loss(p):
    return jax.numpy.sum((x @ p["lin"].w + p["lin"].b) ** 2)

opt = fo.Adam(fo.tree.named_parameters(params), lr=0.1)
before = float(loss(params))
for _ in range(20):
    opt.step(grads=jax.grad(loss)(params))  # a tree of jax arrays, a registered class inside
assert float(loss(params)) < before
print("ok")
"""


def test_jax_pytrees_and_gradients():
    # in a process of its own: jax starts threads, and other tests fork
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    run = subprocess.run([sys.executable, "-c", JAX_CASE], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
