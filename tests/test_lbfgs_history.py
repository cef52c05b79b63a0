"""L-BFGS lends its history to the Rust step without copies: the arrays it keeps
stay the same objects, and a history given in another form (another dtype, a
non-contiguous view, plain lists) still gives the same steps."""

import numpy as np

import ferroptim as fo
from test_bad_input_lbfgs_muon import quadratic


def run(steps, history_size=3, max_iter=2, load=None):
    rng = np.random.default_rng(3)
    params = [fo.Parameter(rng.standard_normal(s)) for s in ((3, 2), (5,))]
    opt = fo.LBFGS(params, lr=0.05, max_iter=max_iter, history_size=history_size)
    for k in range(steps):
        if load is not None and k == steps // 2:
            opt.load_state_dict(load(opt.state_dict()))
        opt.step(quadratic(params))
    return opt, params


def history(opt, params):
    st = opt.state[params[0]]
    return list(st["old_dirs"]), list(st["old_stps"])


def test_kept_history_arrays_are_the_same_objects():
    # one iteration per step: each step after the first adds one pair
    opt, params = run(2, history_size=3, max_iter=1)
    dirs, stps = history(opt, params)
    assert len(dirs) == 1
    opt.step(quadratic(params))
    new_dirs, new_stps = history(opt, params)
    assert len(new_dirs) == 2 and new_dirs[0] is dirs[0] and new_stps[0] is stps[0]
    # full: the oldest pair goes, the others stay the same objects
    opt.step(quadratic(params))
    dirs, stps = history(opt, params)
    opt.step(quadratic(params))
    new_dirs, new_stps = history(opt, params)
    assert len(dirs) == len(new_dirs) == 3
    assert all(a is b for a, b in zip(new_dirs[:2], dirs[1:]))
    assert all(a is b for a, b in zip(new_stps[:2], stps[1:]))
    assert new_dirs[2] is not dirs[2]


def strided(a):
    return np.repeat(a, 2)[::2]  # same values, not contiguous


def test_history_in_other_forms_gives_the_same_steps():
    want, want_params = run(6)

    def other_forms(sd):
        st = sd["state"][0]
        st["old_dirs"] = [strided(v) for v in st["old_dirs"]]
        st["old_stps"] = [v.tolist() for v in st["old_stps"]]
        st["d"] = strided(st["d"])
        st["prev_flat_grad"] = list(st["prev_flat_grad"])
        return sd

    got, got_params = run(6, load=other_forms)
    for p, q in zip(want_params, got_params):
        np.testing.assert_array_equal(p.data, q.data)
    st = got.state[got_params[0]]
    assert all(v.flags.c_contiguous and v.dtype == np.float64 for v in st["old_dirs"] + st["old_stps"])
