"""Training over several processes, with MPI (through mpi4py).

``pip install "ferroptim[mpi]"`` brings mpi4py and an MPI from the package index (the
``mpich`` wheel); an mpi4py built against a system MPI works as well. Then, under
``mpiexec -n 4 python train.py``:

- ``broadcast_parameters(params)``: every rank starts from rank 0's values;
- ``allreduce_gradients(params)``: every rank's gradients become the average over
  the ranks (data parallelism: each rank its share of every batch);
- ``DistributedOptimizer(opt)``: both of the above, a step at a time (Horovod);
- ``ZeroRedundancyOptimizer(params, fo.AdamW, lr=...)``: each rank keeps the
  optimizer state of its share of the parameters only (torch's ZeRO).

Every function takes ``comm=`` (an mpi4py communicator; default ``MPI.COMM_WORLD``)
and checks its input on every rank before it communicates: ranks that disagree (on
the parameters, the optimizer, a state dict) all raise the same exception instead of
waiting for one another.
"""

from ._mpi import MPI
from .collectives import allreduce_gradients, broadcast_parameters
from .wrapper import DistributedOptimizer
from .zero import ZeroRedundancyOptimizer

__all__ = ["MPI", "allreduce_gradients", "broadcast_parameters", "DistributedOptimizer", "ZeroRedundancyOptimizer"]
