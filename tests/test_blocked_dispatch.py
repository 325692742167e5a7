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


BAD_INPUTS = {
    "query rank": dict(query=np.zeros((2, 3, 4))),
    "key dtype": dict(key=np.zeros((1, 2, 5, 4), np.float32)),
    "key head dim": dict(key=np.zeros((1, 2, 5, 3)), value=np.zeros((1, 2, 5, 3))),
    "value shape": dict(value=np.zeros((1, 2, 6, 4))),
    "heads": dict(query=np.zeros((1, 3, 6, 4))),
    "gqa off": dict(query=np.zeros((1, 4, 6, 4))),
    "scale": dict(scale=float("inf")),
    "scale type": dict(scale="0.5"),
    "is_causal": dict(is_causal=1),
    "alignment": dict(causal_alignment="middle"),
    "policy": dict(fully_masked="drop"),
    "mask shape": dict(attn_mask=np.ones((3, 5), bool)),
    "mask dtype": dict(attn_mask=np.ones((6, 5), np.int32)),
    "mask nan": dict(attn_mask=np.full((6, 5), np.nan)),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_the_same_bad_input_reads_the_same_on_the_small_and_the_blocked_path(name):
    from attnconf.reference import sdpa   # these sizes take the default (small) path

    args = dict(query=np.zeros((1, 2, 6, 4)), key=np.zeros((1, 2, 5, 4)), value=np.zeros((1, 2, 5, 4)))
    args.update(BAD_INPUTS[name])
    messages = []
    for path in (sdpa, blocked.sdpa):
        with pytest.raises((ValueError, TypeError)) as info:
            path(**args)
        messages.append((type(info.value), str(info.value)))
    assert messages[0] == messages[1]
    assert "should" in messages[0][1] and "but got" in messages[0][1]


def test_the_blocked_default_scale_is_the_exactly_rounded_one():
    from attnconf.reference import blocked, precise

    q = np.zeros((1, 1, 2, 7))
    problem = blocked._Problem(q, q, q, None, False, "top_left", None, False, "zero", None, None)
    assert problem.scale == precise.inv_sqrt_dd(7)[0]
