"""Sharded checkpoints of a ``ZeroRedundancyOptimizer``: each rank writes the state of
its share, rank 0 a manifest, into a new directory; then rank 0 points ``LATEST`` at it
(an atomic ``os.replace``) and removes the previous one. A crash at any moment leaves
``LATEST`` naming a whole checkpoint. Loading reads the manifest and, on each rank,
the shards that hold its share, at the same or at another number of ranks.

::

    directory/LATEST                        the name of the current checkpoint
    directory/ckpt-<n>/manifest.ckpt        world size, param groups, layout, which shard holds which parameter
    directory/ckpt-<n>/shard-<r>.ckpt       rank r's state: {parameter index: state}

Every file is written by ``fo.save`` (atomic, checksummed, no pickle).
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..checkpoint import _fsync_dir, load, save
from ._mpi import agree, collectively

if TYPE_CHECKING:  # pragma: no cover
    from .zero import ZeroRedundancyOptimizer

__all__ = ["save_sharded", "load_sharded"]

FORMAT = "ferroptim.zero-sharded/1"


def _current(directory: str) -> str:
    with open(os.path.join(directory, "LATEST")) as f:
        return os.path.join(directory, f.read().strip())


def save_sharded(zero: "ZeroRedundancyOptimizer", directory: str) -> None:
    comm = zero.comm
    directory = os.fspath(directory)
    agree(comm, "the checkpoint directory", os.path.abspath(directory))

    def prepare() -> Optional[str]:
        """Rank 0: a new, empty directory for this checkpoint, next to the current one."""
        if zero.rank != 0:
            return None
        n = 0
        if os.path.exists(os.path.join(directory, "LATEST")):
            n = int(os.path.basename(_current(directory)).split("-")[1]) + 1
        target = os.path.join(directory, f"ckpt-{n}")
        if os.path.exists(target):  # a leftover of a save that crashed
            shutil.rmtree(target)
        os.makedirs(target)
        return target

    target = comm.bcast(collectively(comm, prepare), root=0)
    index = zero._global_indices()
    local = {index[id(p)]: dict(s) for p, s in zero.optim.state.items()}
    collectively(comm, lambda: save(local, os.path.join(target, f"shard-{zero.rank}.ckpt")))
    holders: List[List[int]] = comm.gather(sorted(local), root=0)

    def publish() -> None:
        if zero.rank != 0:
            return
        packed = [{k: v for k, v in g.items() if k not in ("params", "param_names")} for g in zero.param_groups]
        manifest = {
            "format": FORMAT,
            "world_size": zero.world_size,
            "optimizer": zero.optimizer_class.__qualname__,
            "param_groups": packed,
            "layout": [[list(s), d] for g in zero._layout() for s, d in g],
            "group_sizes": [len(g["params"]) for g in zero.param_groups],
            "shards": holders,
        }
        save(manifest, os.path.join(target, "manifest.ckpt"))
        old = _current(directory) if os.path.exists(os.path.join(directory, "LATEST")) else None
        pointer = os.path.join(directory, "LATEST.saving")
        with open(pointer, "w") as f:
            f.write(os.path.basename(target))
            f.flush()
            os.fsync(f.fileno())
        os.replace(pointer, os.path.join(directory, "LATEST"))
        _fsync_dir(directory)
        if old is not None and old != target:
            shutil.rmtree(old, ignore_errors=True)

    collectively(comm, publish)


def load_sharded(zero: "ZeroRedundancyOptimizer", directory: str) -> None:
    comm = zero.comm
    directory = os.fspath(directory)

    def read() -> Dict[str, Any]:
        if not os.path.exists(os.path.join(directory, "LATEST")):
            raise ValueError(f"{directory} holds no sharded checkpoint (no LATEST file)")
        path = _current(directory)
        manifest = load(os.path.join(path, "manifest.ckpt"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{path} is not a sharded ZeRO checkpoint")
        if manifest["optimizer"] != zero.optimizer_class.__qualname__:
            raise ValueError(
                f"the checkpoint holds {manifest['optimizer']} state; this optimizer steps with "
                f"{zero.optimizer_class.__qualname__}"
            )
        layout = [[list(s), d] for g in zero._layout() for s, d in g]
        if manifest["group_sizes"] != [len(g["params"]) for g in zero.param_groups] or manifest["layout"] != layout:
            raise ValueError("the checkpoint's parameters (group sizes, shapes, dtypes) are not this optimizer's")
        index = zero._global_indices()
        mine = {index[id(p)] for g in zero.optim.param_groups for p in g["params"]}
        state: Dict[int, Any] = {}
        for rank, held in enumerate(manifest["shards"]):
            if mine.intersection(held):
                shard = load(os.path.join(path, f"shard-{rank}.ckpt"))
                state.update({int(i): v for i, v in shard.items() if int(i) in mine})
        groups = []
        start = 0
        for packed, size in zip(manifest["param_groups"], manifest["group_sizes"]):
            groups.append(dict(packed, params=list(range(start, start + size))))
            start += size
        return {"state": state, "param_groups": groups}

    zero.load_state_dict(collectively(comm, read))
