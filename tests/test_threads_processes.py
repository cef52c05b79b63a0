"""Threads and processes: optimizers stepped in different Python threads give the
sequential results; one optimizer stepped from two threads at once is serialized
(every step lands, none is lost or torn); the thread pool works in a forked child."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

import ferroptim as fo

BIG = 1_100_000  # over the serial threshold: the kernels use the pool


def run(name, seed, steps, params=None):
    rng = np.random.default_rng(seed)
    ps = params or [fo.Parameter(rng.standard_normal(n).astype(np.float32)) for n in (BIG, 7)]
    opt = getattr(fo, name)(ps, lr=0.01)
    grads = [[rng.standard_normal(p.data.shape).astype(np.float32) for p in ps] for _ in range(steps)]
    for g in grads:
        opt.step(grads=g)
    return [p.data for p in ps], opt


def test_optimizers_in_different_threads_match_sequential_runs():
    cases = [("Adam", 1), ("SGD", 2), ("RMSprop", 3), ("Adafactor", 4)]
    want = {c: run(*c, steps=4)[0] for c in cases}
    got = {}
    errors = []

    def work(case):
        try:
            got[case] = run(*case, steps=4)[0]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c,)) for c in cases for _ in range(1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for c in cases:
        for a, b in zip(got[c], want[c]):
            np.testing.assert_array_equal(a, b)


def test_one_optimizer_from_two_threads_is_serialized():
    rng = np.random.default_rng(5)
    g = [rng.standard_normal(n).astype(np.float32) for n in (BIG, 7)]

    def fresh():
        ps = [fo.Parameter(np.ones(n, np.float32)) for n in (BIG, 7)]
        for p, x in zip(ps, g):
            p.grad = x
        return ps, fo.Adam(ps, lr=0.01)

    ps, opt = fresh()
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        for _ in range(10):
            opt.step()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seq, seq_opt = fresh()
    for _ in range(20):
        seq_opt.step()
    assert float(opt.state[ps[0]]["step"]) == 20.0  # no step lost
    for a, b in zip(ps, seq):
        np.testing.assert_array_equal(a.data, b.data)


def test_the_pool_works_in_a_forked_child():
    data, _ = run("Adam", 7, steps=2)  # the parent's pool is up
    want, _ = run("Adam", 8, steps=2)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            got, _ = run("Adam", 8, steps=2)
            code = 0 if all(np.array_equal(a, b) for a, b in zip(got, want)) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child deadlocked")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    again, _ = run("Adam", 7, steps=2)  # and the parent's pool still works
    for a, b in zip(again, data):
        np.testing.assert_array_equal(a, b)
