"""autograd's gradient trees straight into ferroptim: the parameters live in a nested
dict, ``fo.tree.named_parameters`` names them (``layers.0.w``, ...), and
``opt.step(grads=grad(loss)(params))`` matches each gradient to its parameter by name.

    pip install ferroptim autograd && python examples/autograd_tree.py
"""

import autograd.numpy as anp
import numpy as np
from autograd import grad

import ferroptim as fo


def main(steps: int = 300) -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:]
    params = {
        "layers": [
            {"w": 0.5 * rng.standard_normal((2, 16)), "b": np.zeros(16)},
            {"w": 0.5 * rng.standard_normal((16, 1)), "b": np.zeros(1)},
        ]
    }

    def loss(p):
        h = anp.tanh(anp.dot(x, p["layers"][0]["w"]) + p["layers"][0]["b"])
        return anp.mean((anp.dot(h, p["layers"][1]["w"]) + p["layers"][1]["b"] - y) ** 2)

    opt = fo.AdamW(fo.tree.named_parameters(params), lr=1e-2, weight_decay=1e-4)
    first = loss(params)
    for _ in range(steps):
        opt.step(grads=grad(loss)(params))  # a tree shaped like params
    final = float(loss(params))
    print(f"parameters {[n for n, _ in fo.tree.named_parameters(params)]}; mse {first:.3f} -> {final:.4f}")
    return final


if __name__ == "__main__":
    main()
