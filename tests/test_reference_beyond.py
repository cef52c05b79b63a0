"""The optimizers beyond torch.optim replay their canonical implementations' recorded
trajectories (tests/reference/beyond: timm's Lion, Lamb, Lars, Adan, Adopt;
pytorch-optimizer's AdEMAMix; schedulefree's three; prodigyopt's Prodigy): parameters
after every step, losses, final state and param groups, and for the schedule-free
optimizers the parameters after ``eval()``."""

import math

import numpy as np
import pytest

from reference_data import BEYOND, arrays, as_lists, assert_close, build, final_state, load, set_grads

CASES = load("optimizers.json", BEYOND)
# float32 runs' group values (Prodigy's d estimate) are sums of float32 products
GROUP_RTOL = {"float64": 1e-9, "float32": 1e-5}


def close_values(mine, theirs, rtol, where):
    """Param-group values: equal, floats to ``rtol`` (the recorded float64 sums of
    prodigyopt and LAMB's step tensor come back as numbers)."""
    mine = as_lists(mine.tolist() if isinstance(mine, np.ndarray) else mine)
    if isinstance(theirs, dict):
        assert isinstance(mine, dict) and set(mine) == set(theirs), f"{where}: keys {sorted(mine)} vs {sorted(theirs)}"
        for k in theirs:
            close_values(mine[k], theirs[k], rtol, f"{where}[{k!r}]")
    elif isinstance(theirs, list):
        assert isinstance(mine, list) and len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs)):
            close_values(a, b, rtol, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(mine, bool):
        assert mine == pytest.approx(theirs, rel=rtol, abs=0.0, nan_ok=True), f"{where}: {mine} vs {theirs}"
    else:
        assert mine == theirs and type(mine) is type(theirs), f"{where}: {mine!r} vs {theirs!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_replays_the_implementation(case):
    data = arrays(case, BEYOND)
    opt, params = build(case, data)
    dtype = case["dtype"]
    if hasattr(opt, "train"):
        opt.train()
    for t in range(case["steps"]):
        loss = set_grads(case, data, params, t)
        if case["mode"] == "objective":
            expected = case["losses"][t]
            assert (math.isnan(loss) and math.isnan(expected)) or loss == pytest.approx(expected, rel=1e-9), f"loss {t}"
        opt.step()
        for i, p in enumerate(params):
            assert_close(p.data, data[f"traj/{i}"][t + 1], dtype, f"param {i} after step {t + 1}")
        for p in params:
            p.grad = None

    sd = opt.state_dict()
    for idx, key, spec, value, expected in final_state(sd, case, data):
        if expected is not None:
            assert_close(value, expected, dtype, f"state {idx} {key}")
        else:  # prodigyopt's int step; a 0-d float64 array here, as every step count
            assert float(value) == spec["value"], key
    close_values(sd["param_groups"], case["param_groups"], GROUP_RTOL[dtype], "param_groups")
    if hasattr(opt, "eval"):
        opt.eval()
        for i, p in enumerate(params):
            assert_close(p.data, data[f"eval/{i}"], dtype, f"param {i} after eval()")


def test_schedule_free_steps_only_in_train_mode():
    import ferroptim as fo

    p = fo.Parameter(np.arange(4.0))
    opt = fo.ScheduleFreeAdamW([p], lr=0.1)
    p.grad = np.ones(4)
    with pytest.raises(Exception, match="Optimizer was not in train mode when step is called"):
        opt.step()
    assert opt.state == {} and opt.param_groups[0]["k"] == 0
    opt.train()
    opt.step()
    y = p.data.copy()
    z = opt.state[p]["z"]
    opt.eval()  # x = lerp(y, z, 1 − 1/β₁)
    np.testing.assert_allclose(p.data, y + (1 - 1 / 0.9) * (z - y), rtol=1e-12)
    opt.eval()  # already in eval mode: nothing moves
    np.testing.assert_allclose(p.data, y + (1 - 1 / 0.9) * (z - y), rtol=1e-12)
    opt.train()
    np.testing.assert_allclose(p.data, y, rtol=1e-12)


def test_prodigy_refuses_different_learning_rates():
    import ferroptim as fo

    a, b = fo.Parameter(np.ones(3)), fo.Parameter(np.ones(2))
    opt = fo.Prodigy([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad, b.grad = np.ones(3), np.ones(2)
    with pytest.raises(RuntimeError, match="different lr values"):
        opt.step()
    assert opt.state == {} and np.all(a.data == 1)
