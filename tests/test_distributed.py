"""ferroptim.distributed under ``mpiexec -n 1``, ``-n 2`` and ``-n 3`` (the cases are in
tests/mpi/cases.py). Skipped without mpi4py and an ``mpiexec``; each run has a time
limit, so a hang fails instead of stalling the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "mpi", "cases.py")
NAMES = [
    "broadcast",
    "allreduce",
    "distributed_optimizer",
    "distributed_lbfgs",
    "zero_is_one_process",
    "zero_partition_and_memory",
    "zero_load_groups_scheduler_hooks",
    "zero_sharded_checkpoints",
    "bad_input_is_refused_everywhere",
]


def _mpiexec() -> str:
    pytest.importorskip("mpi4py")
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        pytest.skip("no mpiexec (pip install mpich)")
    return found


@pytest.mark.parametrize("ranks", [1, 2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_under_mpiexec(name: str, ranks: int) -> None:
    mpiexec = _mpiexec()
    try:
        run = subprocess.run(
            [mpiexec, "-n", str(ranks), sys.executable, CASES, name],
            capture_output=True,
            text=True,
            timeout=180,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{name} on {ranks} ranks did not finish in {e.timeout} s (a rank waiting for another?)")
    assert run.returncode == 0, f"{name} on {ranks} ranks failed:\n{run.stdout}\n{run.stderr}"
    assert f"{name}: ok on {ranks} ranks" in run.stdout, run.stdout + run.stderr


def test_without_mpi4py_ferroptim_imports_and_distributed_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "import ferroptim\n"
        "try:\n"
        "    import ferroptim.distributed\n"
        "except ImportError as e:\n"
        "    print('refused:', e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'refused: ferroptim.distributed needs mpi4py' in run.stdout
    assert 'pip install "ferroptim[mpi]"' in run.stdout


def test_the_demo_trains_data_parallel_to_the_single_process_accuracy() -> None:
    pytest.importorskip("sklearn")
    mpiexec = _mpiexec()
    from ferroptim import demo

    single = demo.main(["--epochs", "15"])
    run = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, "-m", "ferroptim.demo", "--distributed", "--epochs", "15"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ZeroRedundancyOptimizer(AdamW) on 2 ranks" in run.stdout
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy"), last
    accuracy = float(last.split()[2].rstrip("%")) / 100
    assert abs(accuracy - single) <= 0.01, f"one process {100 * single:.1f}%, 2 ranks {100 * accuracy:.1f}%"
