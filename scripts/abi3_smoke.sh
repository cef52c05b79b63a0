#!/usr/bin/env bash
# The abi3 wheel on the oldest and newest Pythons it claims, with NumPy 1.x and 2.x:
# for each pair, a fresh venv gets that NumPy, pytest and the wheel, and runs the
# reference replays (every optimizer and scheduler against torch's and the other
# implementations' recorded steps), the bad-input, state-dict and checkpoint tests,
# and the step plan's (which reads each Python's dict version tags).
# Interpreters are found through pyenv or on PATH (python3.9); a missing one is an
# error under FERROPTIM_REQUIRE_SMOKE=1 (CI), else skipped with a message.
#
# Usage: scripts/abi3_smoke.sh dist/ferroptim-*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL="$1"

# python version, NumPy requirement: the oldest NumPy the package supports, the last
# NumPy for Python 3.9, and the newest NumPy on the newest Python (NumPy 1.x has no
# wheels for 3.13)
PAIRS=(
    "3.9 numpy==1.21.6"
    "3.9 numpy==2.0.2"
    "3.13 numpy>=2.1"
)
TESTS=(
    tests/test_reference_optimizers.py tests/test_reference_beyond.py
    tests/test_reference_8bit.py tests/test_reference_schedulers.py
    tests/test_bad_input.py tests/test_state_dict.py tests/test_checkpoint.py
    tests/test_step_plan.py
)

find_python() {
    local candidates=() v
    if command -v pyenv >/dev/null 2>&1; then
        v=$(pyenv versions --bare | grep -E "^$1(\.[0-9]+)?$" | sort -V | tail -1 || true)
        [ -n "$v" ] && candidates+=("$(pyenv root)/versions/$v/bin/python")
    fi
    candidates+=("python$1")
    for c in "${candidates[@]}"; do
        if "$c" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" >/dev/null 2>&1; then
            echo "$c"
            return
        fi
    done
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for pair in "${PAIRS[@]}"; do
    read -r version numpy <<<"$pair"
    py=$(find_python "$version" || true)
    if [ -z "$py" ]; then
        if [ "${FERROPTIM_REQUIRE_SMOKE:-0}" = 1 ]; then
            echo "abi3 smoke: no Python $version found" >&2
            exit 1
        fi
        echo "abi3 smoke: skipped Python $version ($numpy): no interpreter found"
        continue
    fi
    venv="$WORK/py$version-${numpy//[^0-9a-z]/}"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$numpy" pytest pytest-xdist "$WHEEL"
    echo "abi3 smoke: $("$venv/bin/python" -c 'import sys, numpy, ferroptim; print(f"Python {sys.version.split()[0]}, NumPy {numpy.__version__}, ferroptim {ferroptim.__version__}")')"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider --numprocesses=auto "${TESTS[@]}" | tail -1
done
