"""The benchmark's NumPy column: each optimizer's update as a NumPy user would write it,
in place, with scratch arrays allocated once (``s["tmp"]``, ``s["tmp2"]``).

Each function takes the parameters, gradients, per-parameter state dicts (copies of
ferroptim's state arrays plus the scratch arrays) and the step count ``t``, and runs
one step with the benchmark's hyperparameters (torch's defaults unless noted). They
are for timing: the same passes over memory torch's single-tensor code makes, not
torch's exact rounding (the tests check the numbers, against torch itself).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List

import numpy as np

State = Dict[str, Any]


def sgd_momentum(ps, gs, states: List[State], t, lr=1e-3, momentum=0.9):
    for p, g, s in zip(ps, gs, states):
        buf, tmp = s["momentum_buffer"], s["tmp"]
        buf *= momentum
        buf += g
        np.multiply(buf, lr, out=tmp)
        p -= tmp


def moments(g, m, v, tmp, b1, b2):
    """The Adam-family running averages: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²."""
    m *= b1
    np.multiply(g, 1 - b1, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - b2
    v += tmp


def adam(decoupled: bool) -> Callable:
    def step(ps, gs, states, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=1e-2 if decoupled else 0.0):
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        for p, g, s in zip(ps, gs, states):
            m, v, tmp = s["exp_avg"], s["exp_avg_sq"], s["tmp"]
            if decoupled:
                p *= 1 - lr * wd
            moments(g, m, v, tmp, b1, b2)
            np.sqrt(v, out=tmp)
            tmp /= bc2**0.5
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= -lr / bc1
            p += tmp

    return step


def adagrad(ps, gs, states, t, lr=1e-2, eps=1e-10):
    for p, g, s in zip(ps, gs, states):
        acc, tmp = s["sum"], s["tmp"]
        np.multiply(g, g, out=tmp)
        acc += tmp
        np.sqrt(acc, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp


def adadelta(ps, gs, states, t, lr=1.0, rho=0.9, eps=1e-6):
    for p, g, s in zip(ps, gs, states):
        sq, acc, tmp, delta = s["square_avg"], s["acc_delta"], s["tmp"], s["tmp2"]
        sq *= rho
        np.multiply(g, g, out=tmp)
        tmp *= 1 - rho
        sq += tmp
        np.add(sq, eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.add(acc, eps, out=delta)
        np.sqrt(delta, out=delta)
        delta /= tmp
        delta *= g
        acc *= rho
        np.multiply(delta, delta, out=tmp)
        tmp *= 1 - rho
        acc += tmp
        delta *= lr
        p -= delta


def adamax(ps, gs, states, t, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8):
    for p, g, s in zip(ps, gs, states):
        m, u, tmp = s["exp_avg"], s["exp_inf"], s["tmp"]
        m *= b1
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        u *= b2
        np.abs(g, out=tmp)
        tmp += eps
        np.maximum(u, tmp, out=u)
        np.divide(m, u, out=tmp)
        tmp *= lr / (1 - b1**t)
        p -= tmp


def nadam(ps, gs, states, t, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, psi=4e-3):
    mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    for p, g, s in zip(ps, gs, states):
        m, v, tmp, denom = s["exp_avg"], s["exp_avg_sq"], s["tmp"], s["tmp2"]
        mu_product = float(s["mu_product"]) * mu
        moments(g, m, v, tmp, b1, b2)
        np.sqrt(v, out=denom)
        denom /= (1 - b2**t) ** 0.5
        denom += eps
        np.divide(g, denom, out=tmp)
        tmp *= lr * (1 - mu) / (1 - mu_product)
        p -= tmp
        np.divide(m, denom, out=tmp)
        tmp *= lr * mu_next / (1 - mu_product * mu_next)
        p -= tmp


def radam(ps, gs, states, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2**t / bc2
    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    for p, g, s in zip(ps, gs, states):
        m, v, tmp = s["exp_avg"], s["exp_avg_sq"], s["tmp"]
        moments(g, m, v, tmp, b1, b2)
        np.sqrt(v, out=tmp)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / bc1 * rect * bc2**0.5
        p -= tmp


def rmsprop(ps, gs, states, t, lr=1e-2, alpha=0.99, eps=1e-8):
    for p, g, s in zip(ps, gs, states):
        sq, tmp = s["square_avg"], s["tmp"]
        sq *= alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1 - alpha
        sq += tmp
        np.sqrt(sq, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp


def rprop(ps, gs, states, t, etas=(0.5, 1.2), step_sizes=(1e-6, 50)):
    for p, g, s in zip(ps, gs, states):
        prev, size, sign = s["prev"], s["step_size"], s["tmp"]
        np.multiply(g, prev, out=sign)
        np.sign(sign, out=sign)
        factor = np.where(sign > 0, etas[1], np.where(sign < 0, etas[0], 1.0)).astype(p.dtype)
        size *= factor
        np.clip(size, step_sizes[0], step_sizes[1], out=size)
        np.copyto(prev, g)
        prev[sign < 0] = 0
        np.sign(prev, out=sign)
        sign *= size
        p -= sign


def asgd(ps, gs, states, t, lr=1e-2, lambd=1e-4, alpha=0.75):
    eta = lr / (1 + lambd * lr * t) ** alpha
    for p, g, s in zip(ps, gs, states):
        ax, tmp = s["ax"], s["tmp"]
        p *= 1 - lambd * eta
        np.multiply(g, eta, out=tmp)
        p -= tmp
        np.copyto(ax, p)  # mu = 1 until t0 = 1e6


def adafactor(ps, gs, states, t, lr=1e-2, beta2_decay=-0.8, eps2=1e-3, d=1.0):
    """Adafactor on vectors (every benchmark shape is one): a full second moment."""
    beta = t**beta2_decay
    rho = min(lr, 1 / t**0.5)
    for p, g, s in zip(ps, gs, states):
        v, tmp = s["variance"], s["tmp"]
        eps1 = np.finfo(p.dtype).eps
        alpha = max(eps2, float(np.linalg.norm(p)) / p.size**0.5) * rho
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= beta
        v += tmp
        np.maximum(v, eps1 * eps1, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        rms = float(np.linalg.norm(tmp)) / p.size**0.5
        tmp *= alpha / max(1.0, rms / d)
        p -= tmp


def sparse_adam(ps, gs, states, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """torch's sparse_adam in NumPy: gather the listed rows, update, scatter back."""
    step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    for p, g, s in zip(ps, gs, states):
        rows, values = g.indices, g.values
        m, v = s["exp_avg"], s["exp_avg_sq"]
        old_m = m[rows]
        dm = (values - old_m) * (1 - b1)
        m[rows] = old_m + dm
        old_v = v[rows]
        dv = (values * values - old_v) * (1 - b2)
        v[rows] = old_v + dv
        p[rows] += -step_size * ((dm + old_m) / (np.sqrt(dv + old_v) + eps))


def newton_schulz(x: np.ndarray, steps=5, a=3.4445, b=-4.775, c=2.0315, eps=1e-7) -> np.ndarray:
    """Muon's orthogonalization, in float32 (NumPy's matmul: OpenBLAS sgemm)."""
    x = x.astype(np.float32)
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if transposed else x


def muon(ps, gs, states, t, lr=1e-3, wd=0.1, momentum=0.95):
    for p, g, s in zip(ps, gs, states):
        buf, tmp = s["momentum_buffer"], s["tmp"]
        buf *= momentum
        np.multiply(g, 1 - momentum, out=tmp)
        buf += tmp
        np.multiply(buf, momentum, out=tmp)
        tmp += (1 - momentum) * g  # nesterov
        update = newton_schulz(tmp)
        p *= 1 - lr * wd
        p -= (lr * max(1.0, p.shape[0] / p.shape[1]) ** 0.5) * update.astype(p.dtype)


def lbfgs(ps, gs, states, t, lr=1.0):
    """One L-BFGS iteration after the history is full: the two-loop recursion over the
    ``history`` pairs kept in ``states[0]``, then θ ← θ + lr·d (no line search)."""
    s0 = states[0]
    g = np.concatenate([x.ravel() for x in gs])
    old_dirs, old_stps, ro = s0["old_dirs"], s0["old_stps"], s0["ro"]
    q = -g
    al = [0.0] * len(old_dirs)
    for i in reversed(range(len(old_dirs))):
        al[i] = float(old_stps[i] @ q) * ro[i]
        q -= al[i] * old_dirs[i]
    d = q * s0["H_diag"]
    for i in range(len(old_dirs)):
        be = float(old_dirs[i] @ d) * ro[i]
        d += (al[i] - be) * old_stps[i]
    at = 0
    for p in ps:
        p.ravel()[...] += lr * d[at : at + p.size]
        at += p.size


STEPS: Dict[str, Callable] = {
    "Adam": adam(False),
    "AdamW": adam(True),
    "SGD-momentum": sgd_momentum,
    "Adagrad": adagrad,
    "Adadelta": adadelta,
    "Adamax": adamax,
    "NAdam": nadam,
    "RAdam": radam,
    "RMSprop": rmsprop,
    "Rprop": rprop,
    "ASGD": asgd,
    "Adafactor": adafactor,
    "SparseAdam": sparse_adam,
    "Muon": muon,
    "LBFGS": lbfgs,
}
