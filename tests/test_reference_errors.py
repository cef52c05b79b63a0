"""Constructor inputs torch 2.15 rejects (tests/reference/torch-2.15/errors.json) are
rejected the same way: same exception type (or warning), same message."""

import builtins

import numpy as np
import pytest

import ferroptim as fo
from reference_data import load, torch_kwargs

CASES = load("errors.json")


def params_for(kind, bare=False, shape=(1,)):
    """The parameters each error case gives, as torch's test suite builds them (Muon:
    2-D, the only parameters it takes)."""
    make = (lambda: np.random.randn(*shape)) if bare else (lambda: fo.Parameter(np.random.randn(*shape)))
    p, p2 = make(), make()
    return {
        "plain": [p],
        "bare_tensor": p,
        "duplicate_in_group": [p, p],
        "duplicate_across_groups": [{"params": p}, {"params": p}],
        "mixed_named_unnamed": [("weight", p), p2],
        "mixed_named_groups": [{"params": [p], "lr": 1e-2}, {"params": [("weight", p2)]}],
    }[kind]


@pytest.mark.parametrize("bare", [False, True], ids=["Parameter", "ndarray"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c['optimizer']}-{c['desc']}" for c in CASES])
def test_rejects_like_torch(case, bare):
    cls = getattr(fo, case["optimizer"], None)
    if cls is None:
        pytest.skip(f"{case['optimizer']} is not in ferroptim yet")
    params = params_for(case["params"], bare, (1, 1) if case["optimizer"] == "Muon" else (1,))
    kwargs = torch_kwargs(case["kwargs"])
    if case["error_type"] == "UserWarning":
        with pytest.warns(UserWarning, match=case["error_regex"]):
            cls(params, **kwargs)
    else:
        with pytest.raises(getattr(builtins, case["error_type"]), match=case["error_regex"]):
            cls(params, **kwargs)
