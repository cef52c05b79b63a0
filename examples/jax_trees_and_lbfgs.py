"""jax with ferroptim: ``jax.grad`` returns a tree shaped like the parameters, which
``opt.step(grads=...)`` matches by name; and L-BFGS with a closure that computes the
loss and gradient with jax. The parameters are NumPy arrays (writable, updated in
place); jax reads them on each call.

    pip install ferroptim "jax[cpu]" && python examples/jax_trees_and_lbfgs.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import ferroptim as fo


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 2.0, 0.5], np.float32) > 0).astype(np.float32)
    return x, y


def loss(p, x, y):
    logits = x @ p["w"] + p["b"]
    return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits) + 1e-3 * jnp.sum(p["w"] ** 2)


def main(steps: int = 200):
    x, y = data()
    params = {"w": np.zeros(4, np.float32), "b": np.zeros((), np.float32)}
    opt = fo.Adam(fo.tree.named_parameters(params), lr=0.05)
    g = jax.jit(jax.grad(loss))
    for _ in range(steps):
        opt.step(grads=g(params, x, y))  # a dict of jax arrays, matched by name
    adam_loss = float(loss(params, x, y))

    # L-BFGS: the closure computes the loss and sets each parameter's gradient
    w, b = fo.Parameter(np.zeros(4, np.float32)), fo.Parameter(np.zeros((), np.float32))
    lbfgs = fo.LBFGS([w, b], lr=1, max_iter=50, line_search_fn="strong_wolfe")
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def closure():
        value, grads = value_and_grad({"w": w.data, "b": b.data}, x, y)
        w.grad, b.grad = np.asarray(grads["w"]), np.asarray(grads["b"])
        return float(value)

    lbfgs.step(closure)
    lbfgs_loss = float(loss({"w": w.data, "b": b.data}, x, y))
    print(f"Adam: loss {adam_loss:.4f} after {steps} steps; L-BFGS: loss {lbfgs_loss:.4f} after one step")
    return adam_loss, lbfgs_loss


if __name__ == "__main__":
    main()
