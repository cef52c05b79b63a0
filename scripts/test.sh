#!/usr/bin/env bash
# Every test of ferroptim: the Rust crates (kernels against their scalar references,
# the executor, the Rust API, the example), then the Python package built and
# installed from this checkout, then pytest (torch reference replays, API, bad input).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== build and install the Python package"
"$PYTHON" -m pip install --quiet ".[test]"

echo "== mypy --strict"
"$PYTHON" -m mypy --strict python/ferroptim

echo "== pytest"
"$PYTHON" -m pytest tests "$@"
