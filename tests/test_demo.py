"""The demo trains to the accuracy the README promises."""

import pytest

pytest.importorskip("sklearn")

from ferroptim import demo  # noqa: E402


def test_demo_reaches_95_percent(tmp_path, capsys):
    plot = tmp_path / "curve.png"
    accuracy = demo.main(["--epochs", "15", "--plot", str(plot)])
    assert accuracy >= 0.95
    out = capsys.readouterr().out
    assert "epoch  15/15" in out and "test acc" in out
    assert "LR schedule (warmup-cosine, per batch)" in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert plot.stat().st_size > 0


def test_demo_with_8bit_state_reaches_the_same_accuracy(capsys):
    full = demo.main(["--epochs", "15", "--schedule", "warmup-cosine"])
    eight = demo.main(["--epochs", "15", "--optimizer", "AdamW8bit"])
    assert abs(eight - full) <= 0.01, f"AdamW {100 * full:.1f}%, AdamW8bit {100 * eight:.1f}%"
    assert "AdamW8bit" in capsys.readouterr().out
