"""``python -m ferroptim.demo``: a NumPy MLP learns handwritten digits with ferroptim.

A two-hidden-layer perceptron, forward and backward written by hand in NumPy, trained
with ``ferroptim.AdamW`` (or, with ``--optimizer AdamW8bit``, its 8-bit-state twin) under a warm-up + cosine LR schedule
(``ferroptim.lr_scheduler``, previewed before training) on scikit-learn's bundled
8×8 digits (1797 images, no download). It prints loss, accuracy and time per epoch and, with ``--plot FILE`` and
matplotlib installed, saves the curves as a PNG.

``mpiexec -n 2 python -m ferroptim.demo --distributed`` trains it data-parallel: every
rank computes the gradient of its share of each batch, ``allreduce_gradients`` sums
them (weighted by share, so the step sees the whole batch's gradient) and a
``ZeroRedundancyOptimizer`` steps, each rank keeping the state of its share of the
parameters (``ferroptim[mpi]``).

Install what it needs with ``pip install "ferroptim[demo]"``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, List, Optional, Tuple, Type

import numpy as np

import ferroptim as fo


def load_data(seed: int, test_size: int = 360) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    except ImportError:
        sys.exit("the demo needs scikit-learn for its dataset: pip install 'ferroptim[demo]'")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:test_size], order[test_size:]
    return x[train], y[train], x[test], y[test]


class MLP:
    """``x → relu(x W1 + b1) → relu(· W2 + b2) → · W3 + b3``, parameters as fo.Parameter."""

    def __init__(self, sizes: List[int], rng: np.random.Generator) -> None:
        self.layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            w = rng.standard_normal((n_in, n_out)).astype(np.float32) * np.float32(np.sqrt(2.0 / n_in))
            self.layers.append((fo.Parameter(w), fo.Parameter(np.zeros(n_out, np.float32))))

    def named_parameters(self) -> List[Tuple[str, fo.Parameter]]:
        out = []
        for i, (w, b) in enumerate(self.layers):
            out += [(f"fc{i + 1}.weight", w), (f"fc{i + 1}.bias", b)]
        return out

    def forward(self, x: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
        activations = [x]
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.data + b.data
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0)
            activations.append(x)
        return x, activations

    def backward(self, activations: List[np.ndarray], grad: np.ndarray) -> None:
        """Sets every parameter's ``.grad`` from the gradient of the loss wrt the logits."""
        for i in reversed(range(len(self.layers))):
            w, b = self.layers[i]
            x = activations[i]
            w.grad = x.T @ grad
            b.grad = grad.sum(axis=0)
            if i > 0:
                grad = (grad @ w.data.T) * (x > 0)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> Tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient wrt the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -float(log_probs[np.arange(n), y].mean())
    grad = np.exp(log_probs)
    grad[np.arange(n), y] -= 1.0
    return loss, (grad / n).astype(np.float32)


def accuracy(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.forward(x)[0].argmax(axis=1) == y).mean())


def plot(path: str, losses: List[float], test_acc: List[float]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install 'ferroptim[demo]'")
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, label="training loss", color="tab:blue")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(epochs, [100 * a for a in test_acc], label="test accuracy", color="tab:orange")
    ax2.set_ylabel("test accuracy (%)")
    lines = ax.get_lines() + ax2.get_lines()
    ax2.legend(lines, [str(line.get_label()) for line in lines], loc="center right")
    ax.set_title("NumPy MLP on digits, ferroptim.AdamW + warm-up/cosine LR")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved the loss curve to {path}")


class Ranks:
    """One process, or the ranks of ``mpiexec`` (``--distributed``): which rows of a
    batch this rank computes, how its gradients meet the others', which optimizer."""

    def __init__(self, distributed: bool) -> None:
        self.comm: Any = None
        if distributed:
            from .distributed import MPI

            self.comm = MPI.COMM_WORLD
        self.rank = 0 if self.comm is None else self.comm.rank
        self.size = 1 if self.comm is None else self.comm.size

    def optimizer(self, cls: Type[fo.Optimizer], model: "MLP", **kwargs: Any) -> fo.Optimizer:
        if self.comm is None:
            return cls(model.named_parameters(), **kwargs)
        from .distributed import ZeroRedundancyOptimizer, broadcast_parameters

        broadcast_parameters(model.named_parameters(), comm=self.comm)
        return ZeroRedundancyOptimizer(model.named_parameters(), cls, comm=self.comm, **kwargs)

    def describe(self, opt: fo.Optimizer) -> str:
        if self.comm is None:
            return opt.__class__.__name__
        return f"ZeroRedundancyOptimizer({opt.optim.__class__.__name__}) on {self.size} ranks"  # type: ignore[attr-defined]

    def share(self, batch: np.ndarray) -> np.ndarray:
        """This rank's rows of ``batch``."""
        return batch[self.rank :: self.size]

    def gradients(self, model: "MLP", loss: float) -> float:
        """Sums the ranks' gradients (each already weighted by its share) and their
        ``loss``."""
        if self.comm is None:
            return loss
        from .distributed import allreduce_gradients

        allreduce_gradients([p for _, p in model.named_parameters()], comm=self.comm, average=False)
        return float(self.comm.allreduce(loss))

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.rank == 0:
            print(*args, **kwargs)


def schedule(opt: fo.Optimizer, name: str, steps_per_epoch: int, epochs: int) -> Optional[Any]:
    """One epoch of linear warm-up from a tenth of the LR, then cosine decay to a
    hundredth of it, stepped after every batch; None for a constant LR."""
    if name == "constant":
        return None
    total = steps_per_epoch * epochs
    warmup = min(steps_per_epoch, total - 1)
    eta_min = opt.param_groups[0]["lr"] * 0.01
    return fo.lr_scheduler.SequentialLR(
        opt,
        [
            fo.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warmup),
            fo.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min),
        ],
        milestones=[warmup],
    )


def main(argv: List[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m ferroptim.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--schedule",
        choices=["warmup-cosine", "constant"],
        default="warmup-cosine",
        help="the LR schedule, stepped after every batch (default: one epoch of linear warm-up, then cosine decay)",
    )
    parser.add_argument(
        "--optimizer",
        choices=["AdamW", "AdamW8bit"],
        default="AdamW",
        help="AdamW, or AdamW8bit: bitsandbytes' 8-bit state (for the two weight matrices of 4096 elements or more)",
    )
    parser.add_argument("--plot", metavar="FILE", help="save the loss and accuracy curves as a PNG")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the ranks of mpiexec, with ZeRO-sharded optimizer state (needs ferroptim[mpi])",
    )
    args = parser.parse_args(argv)
    ranks = Ranks(args.distributed)
    say = ranks.print

    x_train, y_train, x_test, y_test = load_data(args.seed)
    rng = np.random.default_rng(args.seed)
    model = MLP([x_train.shape[1], args.hidden, args.hidden, 10], rng)
    opt = ranks.optimizer(getattr(fo, args.optimizer), model, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    sched = schedule(opt, args.schedule, steps_per_epoch, args.epochs)
    say(f"digits: {len(x_train)} training and {len(x_test)} test images; {ranks.describe(opt)}, "
        f"lr {args.lr}, {fo.get_num_threads()} threads")
    if sched is not None:
        table = fo.lr_scheduler.preview(sched, steps_per_epoch * args.epochs).lr[:, 0]
        say(f"LR schedule ({args.schedule}, per batch): {table[0]:.2e} → peak {table.max():.2e} "
            f"at step {int(table.argmax())} → {table[-1]:.2e} after {len(table) - 1} steps")

    losses, test_accs = [], []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            batch = order[i : i + args.batch_size]
            share = ranks.share(batch)
            loss = 0.0
            if len(share):
                logits, activations = model.forward(x_train[share])
                loss, grad = cross_entropy(logits, y_train[share])
                model.backward(activations, grad * (len(share) / len(batch)))
            else:  # more ranks than rows: this rank adds nothing
                for _, p in model.named_parameters():
                    p.grad = np.zeros_like(p.data)
            loss = ranks.gradients(model, loss * len(share)) / len(batch)
            opt.step()
            opt.zero_grad()
            if sched is not None:
                sched.step()
            total += loss * len(batch)
        losses.append(total / len(order))
        test_accs.append(accuracy(model, x_test, y_test))
        say(
            f"epoch {epoch:3d}/{args.epochs}  loss {losses[-1]:.4f}  "
            f"train acc {100 * accuracy(model, x_train, y_train):5.1f}%  "
            f"test acc {100 * test_accs[-1]:5.1f}%  lr {opt.param_groups[0]['lr']:.2e}  {time.perf_counter() - t0:.2f} s"
        )
    say(f"test accuracy {100 * test_accs[-1]:.1f}% after {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
    if args.plot and ranks.rank == 0:
        plot(args.plot, losses, test_accs)
    return test_accs[-1]


if __name__ == "__main__":
    main()
