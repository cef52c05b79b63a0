"""The communicator and the collective checks every function of ``ferroptim.distributed``
makes before it changes anything."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, List, Optional, Sequence, TypeVar, cast

try:
    from mpi4py import MPI
except ImportError as e:  # pragma: no cover - exercised without mpi4py installed
    raise ImportError(
        "ferroptim.distributed needs mpi4py and an MPI library: "
        'pip install "ferroptim[mpi]" (mpi4py with the mpich wheel from the package index), '
        "or install mpi4py built against your system's MPI"
    ) from e

__all__ = ["MPI", "world", "collectively", "agree"]

T = TypeVar("T")


def world(comm: Any) -> Any:
    """``comm``, or ``MPI.COMM_WORLD`` when None; anything but an intracommunicator is a
    TypeError (raised before any communication, so on every rank that passed it)."""
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"comm must be an mpi4py intracommunicator (such as MPI.COMM_WORLD), got {type(comm).__name__}")
    return comm


def collectively(comm: Any, check: Callable[[], T], undo: Optional[Callable[[T], None]] = None) -> T:
    """Runs ``check`` on every rank and raises, on every rank, the first rank's error
    if any rank's ``check`` raised a TypeError or ValueError: a bad input on one rank
    stops all of them before any collective that would wait for it. A rank whose
    ``check`` went through while another's failed first calls ``undo`` on its result."""
    error: Optional[BaseException] = None
    result: Any = None
    try:
        result = check()
    except (TypeError, ValueError) as e:
        error = e
    errors = comm.allgather(None if error is None else (type(error).__name__, str(error)))
    failed = [(rank, e) for rank, e in enumerate(errors) if e is not None]
    if failed:
        if error is None and undo is not None:
            undo(result)
        rank, (kind, message) = failed[0]
        where = f"rank {rank}" if comm.size > 1 else "this rank"
        raise (TypeError if kind == "TypeError" else ValueError)(f"{message} (on {where})") from error
    return cast(T, result)


def digest(value: Any) -> bytes:
    """A short fingerprint of ``repr(value)`` (what the ranks compare first)."""
    return hashlib.sha256(repr(value).encode()).digest()[:16]


def agree(comm: Any, what: str, value: Any, describe: Callable[[Any], str] = repr) -> None:
    """Raises the same ValueError on every rank unless every rank passed an equal
    ``value`` (compared by fingerprint; the values themselves are exchanged only to
    say how they differ)."""
    digests: List[bytes] = comm.allgather(digest(value))
    if all(d == digests[0] for d in digests):
        return
    values: Sequence[Any] = comm.allgather(value)
    first = next(r for r, d in enumerate(digests) if d != digests[0])
    raise ValueError(
        f"the ranks disagree on {what}: rank 0 has {describe(values[0])}, rank {first} has {describe(values[first])}"
    )
