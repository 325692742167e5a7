"""attnconf.reference's float64 default path hands large problems to reference/blocked.py.

Dispatch happens before the default path builds its (B, H, L, S) masks, from B·H·L·S >=
blocked.DISPATCH_MIN_LOGITS (4 Mi); the exact path and lower precisions never dispatch.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import blocked, compute


def _inputs(seed=0, B=1, H=2, L=96, S=80, E=16):
    rng = np.random.default_rng(seed)
    return {"query": rng.standard_normal((B, H, L, E)), "key": rng.standard_normal((B, 1, S, E)),
            "value": rng.standard_normal((B, 1, S, E)), "grad_output": rng.standard_normal((B, H, L, E))}


OPTIONS = {"enable_gqa": True, "is_causal": True, "causal_alignment": "bottom_right"}


def test_threshold():
    assert blocked.should_dispatch(1, 1, 2048, 2048)
    assert not blocked.should_dispatch(1, 1, 2048, 2047)
    assert blocked.logit_shape(np.zeros((1, 2, 3, 4)), np.zeros((1, 1, 5, 4))) == (1, 2, 3, 5)
    assert blocked.logit_shape(np.zeros((3, 4)), np.zeros((1, 1, 5, 4))) == (0, 0, 0, 0)


def test_default_path_dispatches_above_the_threshold(monkeypatch):
    monkeypatch.setattr(blocked, "DISPATCH_MIN_LOGITS", 1)
    x = _inputs()
    sdpa_in = {k: x[k] for k in ("query", "key", "value")}
    got = compute("sdpa", sdpa_in, OPTIONS)["output"]
    assert np.array_equal(got, blocked.sdpa(**sdpa_in, **OPTIONS))
    grads = compute("sdpa_vjp", x, OPTIONS)
    want = blocked.sdpa_vjp(x["query"], x["key"], x["value"], x["grad_output"], **OPTIONS)
    for name, w in zip(("dq", "dk", "dv"), want):
        assert np.array_equal(grads[name], w), name


@pytest.mark.parametrize("kw", [dict(exact=True), dict(precision="float32")])
def test_exact_and_lower_precisions_never_dispatch(kw, monkeypatch):
    monkeypatch.setattr(blocked, "DISPATCH_MIN_LOGITS", 1)
    called = []
    monkeypatch.setattr(blocked, "sdpa", lambda *a, **k: called.append(1))
    x = _inputs()
    compute("sdpa", {k: x[k] for k in ("query", "key", "value")}, OPTIONS, **kw)
    assert not called


def test_errors_still_come_from_the_default_path_for_malformed_inputs(monkeypatch):
    monkeypatch.setattr(blocked, "DISPATCH_MIN_LOGITS", 1)
    with pytest.raises(ValueError, match="query should have 4 dimensions"):
        compute("sdpa", {"query": np.zeros((2, 3)), "key": np.zeros((1, 1, 2, 3)),
                         "value": np.zeros((1, 1, 2, 3))}, {})
