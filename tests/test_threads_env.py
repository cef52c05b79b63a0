"""FERROPTIM_NUM_THREADS sets the default thread count; a bad value warns."""

import os
import subprocess
import sys

import pytest


def run(code, env_value):
    env = dict(os.environ)
    env.pop("FERROPTIM_NUM_THREADS", None)
    if env_value is not None:
        env["FERROPTIM_NUM_THREADS"] = env_value
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True, check=True)


@pytest.mark.parametrize("value", ["1", "3"])
def test_environment_sets_the_default(value):
    out = run("import ferroptim as fo; print(fo.get_num_threads())", value)
    assert out.stdout.strip() == value


def test_bad_value_warns_and_falls_back():
    out = run("import ferroptim as fo; print(fo.get_num_threads())", "lots")
    assert "FERROPTIM_NUM_THREADS='lots' is not a positive integer" in out.stderr
    assert int(out.stdout) >= 1  # the CPUs available to the process (affinity, quotas)


def test_set_num_threads_overrides_the_environment():
    out = run("import ferroptim as fo; fo.set_num_threads(2); print(fo.get_num_threads())", "1")
    assert out.stdout.strip() == "2"
