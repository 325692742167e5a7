"""Blocked gradients (reference/blocked.py sdpa_vjp) against the reference's exact vjp, every option.

Same rule as tests/test_blocked_accuracy.py, per output dq, dk, dv: max error in ulps of natural
scale (attnconf.reference.natural_scales for sdpa_vjp) <= max(8, 2 × the default path's error
on the same inputs). Measured: blocked within 1.0e-15 relative of an 80-bit evaluation.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import blocked, compute, natural_scales

EPS64 = 2.0 ** -52
BLOCKS = dict(block_l=32, block_s=64)


def _problem(seed, B=2, H=4, Hkv=2, L=110, S=140, E=32, Ev=24):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, H, L, E)), rng.standard_normal((B, Hkv, S, E)),
            rng.standard_normal((B, Hkv, S, Ev)), rng.standard_normal((B, H, L, Ev)))


def _check(q, k, v, g, mask, options):
    inputs = {"query": q, "key": k, "value": v, "grad_output": g}
    if mask is not None:
        inputs["attn_mask"] = mask
    exact = compute("sdpa_vjp", inputs, options, exact=True)
    default = compute("sdpa_vjp", inputs, options)
    scales = natural_scales("sdpa_vjp", inputs, options)
    got = dict(zip(("dq", "dk", "dv"), blocked.sdpa_vjp(q, k, v, g, attn_mask=mask, **options, **BLOCKS)))
    for name in ("dq", "dk", "dv"):
        want = exact[name]
        assert got[name].shape == want.shape, name
        assert np.array_equal(np.isnan(got[name]), np.isnan(want)), f"{name}: NaN pattern differs"
        ok = ~np.isnan(want)
        denom = np.maximum(scales[name], np.finfo(np.float64).tiny) * EPS64
        err = lambda x: float(np.max(np.abs(x[ok] - want[ok]) / denom[ok], initial=0.0))
        tol = max(8.0, 2.0 * err(default[name]))
        assert err(got[name]) <= tol, f"{name}: {err(got[name]):.2f} ulp > {tol:.2f} ulp ({options})"


@pytest.mark.parametrize("options, mask_kind", [
    ({}, None),
    ({"is_causal": True}, None),
    ({"is_causal": True, "causal_alignment": "bottom_right"}, None),
    ({}, "bool"),
    ({"scale": 0.4}, "float"),
    ({"is_causal": True, "fully_masked": "zero"}, "bool-rows"),
    ({"fully_masked": "uniform"}, "bool-rows"),
    ({"fully_masked": "nan"}, "bool-rows"),
], ids=["plain", "causal", "causal-br", "bool", "float-scale", "rows-zero", "rows-uniform", "rows-nan"])
def test_blocked_gradients_match_exact_within_rule(options, mask_kind):
    q, k, v, g = _problem(21)
    rng = np.random.default_rng(22)
    B, H, L, S = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    mask = None
    if mask_kind == "bool":
        mask = rng.random((B, 1, L, S)) > 0.4
    elif mask_kind == "float":
        mask = rng.standard_normal((1, H, L, 1)) + np.zeros((1, H, L, S))
    elif mask_kind == "bool-rows":
        mask = rng.random((B, H, L, S)) > 0.3
        mask[0, 1, 7] = False       # a fully-masked row in one head of kv group 0
        mask[1, 3, 40:44] = False
    _check(q, k, v, g, mask, dict(options, enable_gqa=True))


def test_gradients_with_large_logits_use_the_saved_shift():
    q, k, v, g = _problem(23, E=16)
    _check(q, k, v, g, None, {"enable_gqa": True, "scale": 60.0})


def test_gradients_are_deterministic_for_a_thread_count():
    q, k, v, g = _problem(24, L=260, S=300)
    first = blocked.sdpa_vjp(q, k, v, g, enable_gqa=True, is_causal=True, threads=2, **BLOCKS)
    second = blocked.sdpa_vjp(q, k, v, g, enable_gqa=True, is_causal=True, threads=2, **BLOCKS)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def test_logsumexp_matches_the_definition():
    q, k, v, _ = _problem(25, L=40, S=50)
    _, shift, total = blocked.forward(q, k, v, enable_gqa=True, **BLOCKS)
    s = np.einsum("bhle,bhse->bhls", q, np.repeat(k, 2, axis=1)) / np.sqrt(q.shape[-1])
    m = s.max(-1)
    want = m + np.log(np.exp(s - m[..., None]).sum(-1))
    np.testing.assert_allclose(blocked.logsumexp(shift, total), want, rtol=1e-14)
