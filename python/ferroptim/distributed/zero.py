"""``ZeroRedundancyOptimizer``: torch's ZeRO stage 1 — each rank keeps the optimizer
state of its share of the parameters only (Rajbhandari et al., "ZeRO: Memory
Optimizations Toward Training Trillion Parameter Models", SC 2020)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Type


from .._state import ParamState
from ..lamb import LAMB
from ..lbfgs import LBFGS
from ..optimizer import Optimizer
from ..prodigy import Prodigy
from ._mpi import agree, collectively, world
from .collectives import BUCKET_CAP_MB, bcast_arrays
from .sharded import load_sharded, save_sharded

__all__ = ["ZeroRedundancyOptimizer"]

#: Optimizers whose update of one parameter depends on the others: their state cannot
#: be split by parameter without changing their numbers.
_COUPLED: Dict[type, str] = {
    LBFGS: "L-BFGS keeps one history over all parameters together (each direction mixes them all)",
    Prodigy: "Prodigy's step size d is estimated from sums over every parameter of every group",
}


def _refusal(optimizer_class: Any, defaults: Dict[str, Any]) -> Optional[str]:
    if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
        return f"optimizer_class must be a ferroptim Optimizer class, got {optimizer_class!r}"
    for cls, why in _COUPLED.items():
        if issubclass(optimizer_class, cls):
            return f"ZeroRedundancyOptimizer cannot shard {optimizer_class.__name__}: {why}"
    if issubclass(optimizer_class, LAMB) and defaults.get("max_grad_norm", 1.0) is not None:
        return (
            "ZeroRedundancyOptimizer cannot shard LAMB with max_grad_norm set: LAMB clips by the norm of all "
            "gradients together; pass max_grad_norm=None (and clip the whole gradient first if you need to)"
        )
    return None


class ZeroRedundancyOptimizer(Optimizer):
    r"""Wraps an optimizer class so that each rank keeps the state of its share of
    the parameters only, as ``torch.distributed.optim.ZeroRedundancyOptimizer``
    (``process_group`` is ``comm`` here).

    The parameters of each group, largest first, go one by one to the rank with the
    fewest elements so far (torch's partition). Rank r's local optimizer
    (``optimizer_class(its share, **defaults)``, exposed as ``.optim``) steps its
    share; then each parameter travels from the rank that updated it to all the
    others (one ``Bcast`` per rank and dtype bucket). The gradients are expected to be
    the same on every rank already — averaged, as after ``allreduce_gradients``. The
    result is exactly what one process gets from the same gradients, for any number
    of ranks, since every ferroptim optimizer it accepts updates each parameter from
    that parameter's own gradient and state.

    ``param_groups`` holds every parameter and the hyperparameters (schedulers change
    them there; a step passes them on to ``.optim``). ``consolidate_state_dict(to)``
    gathers the state on rank ``to``, whose ``state_dict()`` then returns the dict one
    process would have; ``load_state_dict`` of such a dict on every rank keeps each
    rank's share.

    Args:
        params (iterable): the parameters or param groups, the same on every rank.
        optimizer_class (type): the optimizer of each rank's share (any ferroptim
            optimizer but L-BFGS and Prodigy, whose updates couple the parameters, and
            LAMB with its global ``max_grad_norm`` clipping).
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        parameters_as_bucket_view (bool): torch's memory-layout option; accepted, no
            effect (parameters travel packed into buckets anyway).
        overlap_with_ddp (bool): must be False: there is no DDP to overlap with.
        **defaults: ``optimizer_class``'s arguments.
    """

    def __init__(
        self,
        params: Iterable[Any],
        optimizer_class: Type[Optimizer],
        comm: Any = None,
        parameters_as_bucket_view: bool = False,
        overlap_with_ddp: bool = False,
        bucket_cap_mb: float = BUCKET_CAP_MB,
        **defaults: Any,
    ) -> None:
        self.comm = world(comm)
        self.rank = self.comm.rank
        self.world_size = self.comm.size
        self.optimizer_class = optimizer_class
        self.parameters_as_bucket_view = parameters_as_bucket_view
        self._bucket_bytes = max(1, int(bucket_cap_mb * 1024 * 1024))
        self._initialized = False
        self._partition_cache: List[List[Dict[str, Any]]] = []
        self._all_state_dicts: List[Dict[int, Any]] = []

        def build() -> None:
            if overlap_with_ddp:
                raise ValueError("overlap_with_ddp=True needs torch's DistributedDataParallel; there is none here")
            why = _refusal(optimizer_class, defaults)
            if why is not None:
                raise TypeError(why)
            # the groups as given; the local optimizer fills in its defaults, as one
            # process's would, and the first sync brings them here
            Optimizer.__init__(self, params, {})

        collectively(self.comm, build)
        agree(self.comm, "the optimizer class", getattr(optimizer_class, "__qualname__", repr(optimizer_class)))
        agree(self.comm, "the optimizer's arguments", sorted(defaults.items(), key=lambda kv: kv[0]))
        agree(self.comm, "the parameters (group sizes, shapes, dtypes)", self._layout())
        self.optim: Optimizer = collectively(
            self.comm, lambda: optimizer_class(self._partition_parameters()[self.rank], **defaults)
        )
        self.defaults = dict(self.optim.defaults)
        self._sync_param_groups(self.optim.param_groups, self.param_groups)
        self._initialized = True

    # ---------------------------------------------------------------- partition
    def _layout(self) -> List[List[Tuple[Tuple[int, ...], str]]]:
        return [[(p.data.shape, p.data.dtype.str) for p in g["params"]] for g in self.param_groups]

    def _partition_parameters(self) -> List[List[Dict[str, Any]]]:
        """Each rank's param groups: of each group, the parameters sorted by size
        (largest first, ties in order), each given to the rank with the fewest
        elements so far (the lowest such rank); every rank gets every group, its
        share possibly empty."""
        if not self._partition_cache:
            ranks: List[List[Dict[str, Any]]] = [[] for _ in range(self.world_size)]
            sizes = [0] * self.world_size
            for group in self.param_groups:
                shares: List[List[Any]] = [[] for _ in range(self.world_size)]
                for p in sorted(group["params"], key=lambda q: q.data.size, reverse=True):
                    rank = sizes.index(min(sizes))
                    shares[rank].append(p)
                    sizes[rank] += p.data.size
                for rank, share in enumerate(shares):
                    local = copy.copy(group)
                    local["params"] = share
                    local.pop("param_names", None)
                    ranks[rank].append(local)
            self._partition_cache = ranks
        return self._partition_cache

    @staticmethod
    def _sync_param_groups(source: List[Dict[str, Any]], destination: List[Dict[str, Any]]) -> None:
        """Copies every hyperparameter (all but ``params`` and ``param_names``)."""
        for src, dst in zip(source, destination):
            for key, value in src.items():
                if key not in ("params", "param_names"):
                    dst[key] = value

    # --------------------------------------------------------------------- step
    def step(self, closure: Optional[Callable[[], Any]] = None, *, grads: Optional[Iterable[Any]] = None) -> Any:
        """Steps this rank's share (with this rank's gradients, expected to be the
        same everywhere), then sends every parameter from its rank to the others.
        ``grads=``: one gradient per parameter of ``param_groups``, as for any
        optimizer."""
        local_grads = None
        if grads is not None:
            self._assign_grads(grads)
            given = self._step_grad_list()
            if given is not None:
                by_id = {id(p): g for group in self.param_groups for p, g in zip(group["params"], given)}
                local_grads = [by_id[id(p)] for group in self.optim.param_groups for p in group["params"]]
        self._sync_param_groups(self.param_groups, self.optim.param_groups)
        step: Any = self.optim.step  # every ferroptim optimizer but L-BFGS (refused) takes grads=
        loss = step(closure) if local_grads is None else step(closure, grads=local_grads)
        self._sync_params()
        self._sync_param_groups(self.optim.param_groups, self.param_groups)
        return loss

    def _sync_params(self) -> None:
        """Every parameter from the rank that owns it to all the others."""
        if self.world_size == 1:
            return
        for root, groups in enumerate(self._partition_parameters()):
            bcast_arrays(self.comm, [p.data for g in groups for p in g["params"]], root, self._bucket_bytes)

    def train(self) -> None:
        """Schedule-free optimizers: the local optimizer's ``train()`` (its share of
        the parameters to the training point), then every parameter to every rank."""
        self._switch("train")

    def eval(self) -> None:
        """Schedule-free optimizers: the local optimizer's ``eval()`` (its share of
        the parameters to the averaged point), then every parameter to every rank."""
        self._switch("eval")

    def _switch(self, mode: str) -> None:
        switch = getattr(self.optim, mode, None)
        if switch is None:
            raise AttributeError(f"{type(self.optim).__name__} has no {mode}() (only the schedule-free optimizers do)")
        self._sync_param_groups(self.param_groups, self.optim.param_groups)
        switch()
        self._sync_params()
        self._sync_param_groups(self.optim.param_groups, self.param_groups)

    # -------------------------------------------------------------- param groups
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Adds a param group (the same on every rank); its parameters are shared out
        as the first ones were, and this rank's share joins ``.optim``."""
        if not getattr(self, "_initialized", False):
            super().add_param_group(param_group)
            return

        def add() -> None:
            super(ZeroRedundancyOptimizer, self).add_param_group(param_group)

        def remove(_: None) -> None:
            self.param_groups.pop()

        collectively(self.comm, add, undo=remove)
        try:
            agree(self.comm, "the parameters (group sizes, shapes, dtypes)", self._layout())
        except ValueError:
            self.param_groups.pop()
            raise
        self._partition_cache = []
        local = self._partition_parameters()[self.rank]
        self.optim.add_param_group(local[-1])
        self._sync_param_groups(self.optim.param_groups, self.param_groups)

    # ---------------------------------------------------------------- state dict
    def _global_indices(self) -> Dict[int, int]:
        """Each parameter's index in the full state dict (by id): its position in
        ``param_groups``, as one process numbers them."""
        return {id(p): i for i, p in enumerate(self._flat_params())}

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gathers every rank's state on rank ``to`` (a collective: call it on every
        rank); ``state_dict()`` on that rank then returns the whole state."""
        collectively(self.comm, lambda: self._check_rank(to))
        index = self._global_indices()
        local = {index[id(p)]: v for p, v in self.optim.state.items()}
        gathered = self.comm.gather(local, root=to)
        self._all_state_dicts = gathered if self.rank == to else []

    def _check_rank(self, to: Any) -> None:
        if not (isinstance(to, int) and 0 <= to < self.world_size):
            raise ValueError(f"to must be a rank in [0, {self.world_size}), got {to!r}")

    def state_dict(self) -> Dict[str, Any]:
        """The whole optimizer state, in the layout one process would have (state by
        parameter index in ``param_groups`` order, the groups' hyperparameters), on the
        rank ``consolidate_state_dict(to=...)`` gathered it on."""
        if not self._all_state_dicts:
            raise RuntimeError(
                "Optimizer state has not been consolidated on this rank. Please call "
                "`consolidate_state_dict(to=...)` on all ranks beforehand if you meant to save the global state."
            )
        by_index = dict(enumerate(self._flat_params()))
        merged: Dict[int, Any] = {}
        for local in self._all_state_dicts:
            merged.update(local)
        full = ParamState()
        for i in sorted(merged):
            full[by_index[i]] = merged[i]
        saved, self.state = self.state, full
        try:
            return super().state_dict()
        finally:
            self.state = saved

    def save_sharded(self, directory: str) -> None:
        """Writes a checkpoint of the whole state, each rank its share (a collective:
        call it on every rank, with the same directory on a filesystem they share).
        The new checkpoint replaces the previous one atomically: a crash leaves one of
        them whole. See ``ferroptim.distributed.sharded`` for the layout."""
        save_sharded(self, directory)

    def load_sharded(self, directory: str) -> None:
        """Loads the checkpoint ``save_sharded`` wrote, at this or at another number
        of ranks: each rank reads the shards holding its share's state (a collective;
        checked on every rank before anything changes)."""
        load_sharded(self, directory)

    def _flat_params(self) -> List[Any]:
        seen: Dict[int, Any] = {}
        for g in self.param_groups:
            for p in g["params"]:
                seen.setdefault(id(p), p)
        return list(seen.values())

    def load_state_dict(self, state_dict: Dict[str, Any], strict: bool = True) -> Any:
        """Loads a whole state dict (``state_dict()`` of this class or of one process's
        optimizer) on every rank; each rank keeps its share's state. Checked on every
        rank before anything changes: if any rank refuses it, every rank raises and
        none has changed."""
        state_dict = dict(state_dict)
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result

        def summary() -> List[Any]:
            groups = state_dict["param_groups"]
            return [sorted((str(k), repr(v)) for k, v in g.items() if k != "params") + [len(g["params"])] for g in groups]

        agree(self.comm, "the state dict's param groups", collectively(self.comm, summary))

        def load() -> Tuple[Any, Any, Any]:
            saved_groups = state_dict["param_groups"]
            if len(saved_groups) != len(self.param_groups):
                raise ValueError("loaded state dict has a different number of parameter groups")
            local_groups = []
            for g, sg, lg in zip(self.param_groups, saved_groups, self._partition_parameters()[self.rank]):
                if len(g["params"]) != len(sg["params"]):
                    raise ValueError(
                        "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
                    )
                position = {id(p): k for k, p in enumerate(g["params"])}
                packed = {k: v for k, v in sg.items() if k not in ("params", "param_names")}
                packed["params"] = [sg["params"][position[id(p)]] for p in lg["params"]]
                local_groups.append(packed)
            mine = {i for g in local_groups for i in g["params"]}
            local = {"state": {i: v for i, v in state_dict["state"].items() if i in mine}, "param_groups": local_groups}
            undo = (self.optim.state, self.optim.param_groups)
            report = self.optim.load_state_dict(local, strict=strict)
            return undo, report, saved_groups

        def restore(done: Tuple[Any, Any, Any]) -> None:
            (state, groups), _, _ = done
            self.optim.state, self.optim.param_groups = state, groups

        (_, report, saved_groups) = collectively(self.comm, load, undo=restore)
        self._sync_param_groups(saved_groups, self.param_groups)
        self._sync_param_groups(self.param_groups, self.optim.param_groups)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)
        return report
