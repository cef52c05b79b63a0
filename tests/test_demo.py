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
