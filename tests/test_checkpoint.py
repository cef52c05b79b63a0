"""fo.save / fo.load: round trips of optimizer and scheduler state, no pickle, clear
errors for damaged files, and atomic writes under fault injection (a writer process
killed at random moments never leaves an unloadable file)."""

from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import pytest

import ferroptim as fo
from ferroptim.checkpoint import dumps, loads

KILLS = 200


def trained(steps=3):
    rng = np.random.default_rng(0)
    params = [fo.Parameter(rng.standard_normal(s).astype(np.float32)) for s in ((4, 3), (5,))]
    opt = fo.AdamW([{"params": [params[0]], "lr": 0.01}, {"params": [params[1]], "lr": 0.02}], amsgrad=True)
    sched = fo.lr_scheduler.SequentialLR(
        opt, [fo.lr_scheduler.LambdaLR(opt, lambda e: 0.5 + e), fo.lr_scheduler.ExponentialLR(opt, 0.9)], [2]
    )
    for _ in range(steps):
        for p in params:
            p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
        opt.step()
        sched.step()
    return params, opt, sched, rng


def same(a, b):
    """Equal structure, types and values (arrays: dtype, shape and bits)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_round_trip_of_optimizer_and_scheduler_state(tmp_path):
    params, opt, sched, _ = trained()
    ckpt = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": 3, "note": "run 1"}
    fo.save(ckpt, tmp_path / "ckpt.fo")
    back = fo.load(tmp_path / "ckpt.fo")
    same(back, ckpt)
    assert back["optimizer"]["state"][0]["exp_avg"] is not ckpt["optimizer"]["state"][0]["exp_avg"]


def test_every_kind_of_value_survives(tmp_path):
    odd = {
        0: [None, True, False, 2**100, -7, 0.1, float("inf"), float("nan"), -0.0, "ünïcode"],
        "t": (np.float32(2.5), np.int64(3), np.bool_(True), np.array(1.5), np.zeros((0, 3))),
        "arrays": [np.arange(6, dtype=np.int16).reshape(2, 3), np.arange(6.0)[::2], np.array([1 + 2j]), np.ones(3, ">f8")],
        (1, "key"): {},
    }
    fo.save(odd, tmp_path / "odd.fo")
    back = fo.load(tmp_path / "odd.fo")
    same(back, {k: v for k, v in odd.items()} | {"arrays": [np.ascontiguousarray(a) for a in odd["arrays"]]})


def test_resuming_from_a_checkpoint_continues_the_run(tmp_path):
    params, opt, sched, rng = trained(steps=6)
    want = [p.data.copy() for p in params]
    params, opt, sched, rng = trained(steps=3)
    fo.save({"opt": opt.state_dict(), "sched": sched.state_dict(), "params": [p.data for p in params]}, tmp_path / "c")
    ckpt = fo.load(tmp_path / "c")
    params2, opt2, sched2, _ = trained(steps=0)
    for p, a in zip(params2, ckpt["params"]):
        p.data[...] = a
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    for _ in range(3):
        for p, q in zip(params, params2):
            q.grad = p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
        opt2.step()
        sched2.step()
    for p, w in zip(params2, want):
        np.testing.assert_array_equal(p.data, w)


def test_objects_that_need_pickle_are_refused(tmp_path):
    for bad, match in [
        ({"f": lambda: 1}, r"the saved object\['f'\]: builtins.function cannot be saved"),
        ({"a": np.array([object()])}, "dtype object cannot be saved"),
        ([{1, 2}], r"builtins.set cannot be saved"),
    ]:
        with pytest.raises(TypeError, match=match):
            fo.save(bad, tmp_path / "bad.fo")
    assert not os.listdir(tmp_path)  # nothing written, no temporary left


def test_truncated_and_corrupted_files_are_clear_errors(tmp_path):
    data = dumps({"state": {0: {"exp_avg": np.arange(100.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]})
    for n in sorted(set(random.Random(0).sample(range(len(data)), 60)) | {0, 1, 8, 16, len(data) - 1}):
        with pytest.raises(fo.CheckpointError, match="truncated|not a ferroptim checkpoint"):
            loads(data[:n])
    rnd = random.Random(1)
    for _ in range(60):
        damaged = bytearray(data)
        i = rnd.randrange(len(data))
        damaged[i] ^= 1 << rnd.randrange(8)
        with pytest.raises(fo.CheckpointError):
            loads(bytes(damaged))
    (tmp_path / "text.fo").write_text("not a checkpoint at all, but long enough to have a checksum.......")
    with pytest.raises(fo.CheckpointError, match="is not a ferroptim checkpoint"):
        fo.load(tmp_path / "text.fo")


def test_a_crafted_header_cannot_make_objects():
    """A file whose checksum is right but whose header asks for an object array (what a
    pickle-based format would unpickle) is refused, not executed."""
    import hashlib
    import json
    import struct

    header = json.dumps({"tree": {"array": 0}, "arrays": [["|O", [1], 0, 8]]}).encode()
    body = b"FERROPT\x01" + struct.pack("<Q", len(header)) + header + b"\0" * 8
    with pytest.raises(fo.CheckpointError, match="bad array entry"):
        loads(body + hashlib.sha256(body).digest())


def _writer(path, versions, k):
    """The child: saves the versions in turn, from the k-th, forever."""
    while True:
        fo.save(versions[k % len(versions)], path)
        k += 1


def test_a_writer_killed_at_random_moments_never_leaves_an_unloadable_file(tmp_path):
    path = tmp_path / "ckpt.fo"
    rng = np.random.default_rng(0)
    versions = [{"step": k, "state": {0: {"exp_avg": rng.standard_normal(200_000)}}} for k in range(2)]
    start = time.perf_counter()
    fo.save(versions[0], path)
    # kills spread over a few saves' time (a slow disk's fsync can take longer than
    # the 20 ms a fast one needs for several), so that some writes land between them
    window = max(0.02, 4 * (time.perf_counter() - start))
    rnd = random.Random(0)
    seen = set()
    on_disk = 0
    for _ in range(KILLS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                _writer(path, versions, 1 - on_disk)  # first the version not on disk
            finally:
                os._exit(1)
        time.sleep(rnd.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        back = fo.load(path)  # never a CheckpointError: the old file or the new one
        same(back, versions[back["step"]])
        seen.add(back["step"])
        on_disk = back["step"]
    assert seen == {0, 1}  # the writes did land between kills
    leftovers = [f for f in os.listdir(tmp_path) if f != "ckpt.fo"]
    assert all(f.startswith(".ferroptim-") and f.endswith(".tmp") for f in leftovers)


def test_a_checkpoint_is_a_safetensors_file_any_reader_opens(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    _, opt, _, _ = trained()
    fo.save({"optimizer": opt.state_dict()}, tmp_path / "ckpt.safetensors")
    tensors = st.load_file(str(tmp_path / "ckpt.safetensors"))
    arrays = [a for s in opt.state_dict()["state"].values() for a in s.values() if isinstance(a, np.ndarray)]
    assert len(tensors) == len(arrays)
    assert sorted(a.tobytes() for a in tensors.values()) == sorted(a.tobytes() for a in arrays)
    # and a safetensors file ferroptim did not write is refused, not misread
    st.save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(fo.CheckpointError, match="is not a ferroptim checkpoint"):
        fo.load(tmp_path / "other.safetensors")


def test_files_of_the_first_format_still_load():
    path = os.path.join(os.path.dirname(__file__), "data", "checkpoint_v1.fo")
    back = fo.load(path)
    assert back["param_groups"] == [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0], "name": None, "big": 2**70}]
    assert back["state"][0]["exp_avg"].tolist() == [[0, 1, 2], [3, 4, 5]] and back["state"][0]["step"] == 3.0
    assert back["c"].dtype == np.complex64 and back["c"][0] == 1 + 2j
    assert back["be"].dtype == np.dtype(">f8") and back["be"].tolist() == [0, 1, 2]
