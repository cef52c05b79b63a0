"""mygrad tensors as ferroptim parameters: ``loss.backward()`` fills ``.grad``,
``opt.step()`` updates ``.data`` in place, ``opt.zero_grad()`` clears the gradients
(mygrad's ``null_grad``).

    pip install ferroptim mygrad && python examples/mygrad_regression.py
"""

import mygrad as mg
import numpy as np

import ferroptim as fo


def main(steps: int = 200) -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3
    w = mg.tensor(np.zeros(3))
    b = mg.tensor(0.0)
    opt = fo.Adam([w, b], lr=0.05)
    for _ in range(steps):
        loss = mg.mean((mg.matmul(x, w) + b - y) ** 2)
        loss.backward()
        opt.step()
        opt.zero_grad()
    final = float(mg.mean((mg.matmul(x, w) + b - y) ** 2).item())
    print(f"w = {np.round(w.data, 3)}, b = {float(b.data):.3f}, mse {final:.2e}")
    return final


if __name__ == "__main__":
    main()
