#!/usr/bin/env bash
# Every test of ferroptim: the Rust crates (kernels against their scalar references,
# the executor, the Rust API; the examples run), their documentation (rustdoc without
# warnings), clippy and the core crate's package; then the release files — the sdist,
# the wheel built from it (manylinux2014, linked by zig) and their checks; the wheel
# installed, type-checked (mypy --strict, stubtest of the extension's stubs),
# smoke-run on the oldest and newest Pythons with NumPy 1.x and 2.x; the
# documentation site built with --strict; then pytest (torch reference replays, API,
# bad input), one worker per core.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

echo "== cargo test"
# --all-features: the core crate's optional `ndarray` API too
cargo test --workspace --all-targets --all-features
# the doc examples are the core crate's (the bindings crate has none, and building
# its rlib for them would cost minutes)
cargo test -p ferroptim --doc --all-features
echo "== the Rust examples (each asserts what it trains)"
cargo run --quiet --profile test --all-features -p ferroptim --example fit_line
cargo run --quiet --profile test --all-features -p ferroptim --example mlp
cargo run --quiet --profile test --all-features -p ferroptim --example checkpoint
# ... which tests/test_rust_checkpoint.py also runs on a checkpoint written by Python
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export FERROPTIM_RUST_CHECKPOINT="$TARGET_DIR/debug/examples/checkpoint"
echo "== cargo doc (no warnings), clippy (no warnings), the core crate's package"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
# what `cargo publish` would upload, built on its own (--allow-dirty: also before a commit)
cargo package -p ferroptim --allow-dirty --quiet

echo "== the sdist, and the wheel built from it"
"$PYTHON" -m pip install --quiet "maturin>=1.5,<2" ziglang auditwheel twine
rm -rf dist
"$PYTHON" -m maturin sdist --out dist
# what `pip install ferroptim-*.tar.gz` runs, with zig as the linker so that the
# extension needs nothing newer than glibc 2.17
MATURIN_PEP517_ARGS="--zig --compatibility manylinux2014" \
    "$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist dist/ferroptim-*.tar.gz
"$PYTHON" scripts/check_dist.py dist
WHEEL=$(ls dist/ferroptim-*.whl)

echo "== install the wheel"
"$PYTHON" -m pip uninstall --quiet --yes ferroptim || true
"$PYTHON" -m pip install --quiet "$WHEEL[test,docs]"

echo "== types: mypy --strict, stubtest"
"$PYTHON" -m mypy --strict python/ferroptim
"$PYTHON" -m mypy.stubtest ferroptim._core

echo "== the abi3 wheel on Python 3.9 and 3.13, NumPy 1.x and 2.x"
./scripts/abi3_smoke.sh "$WHEEL"

echo "== the documentation site"
NO_MKDOCS_2_WARNING=1 "$PYTHON" -m mkdocs build --strict --site-dir "$(mktemp -d)"

echo "== pytest (one worker per core: pytest-xdist)"
"$PYTHON" -m pytest tests --numprocesses=auto "$@"
