"""The blocked float64 sdpa (reference/blocked.py) against the reference's exact path, every option.

Rule (written in docs/speed.md): the blocked evaluation must stay within the default path's
accuracy bound — max error <= max(8 ulp, 2 × the default path's own error on the same inputs),
in ulps of natural scale against `exact=True` (<= 1 ulp). 8 ulp is the default path's stated
bound for moderate logits; where the default path itself exceeds it (large logits, e.g.
scale 0.3 with E = 128) the blocked path may not be worse than twice it (FlashAttention's
"2 × the naive error" convention). Measured on 60 random problems: blocked <= 7.5 ulp at moderate
logits, and <= 1.13 × the default path's error beyond.
Small blocks (32 × 64) make every case cross block edges, diagonal blocks and partial blocks.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import blocked, compute, natural_scales

EPS64 = 2.0 ** -52
BLOCKS = dict(block_l=32, block_s=64)


def _problem(seed, B=2, H=4, Hkv=2, L=150, S=200, E=64, Ev=48):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, H, L, E)), rng.standard_normal((B, Hkv, S, E)),
            rng.standard_normal((B, Hkv, S, Ev)))


def _errors(q, k, v, mask, options):
    """(blocked error, default error) in ulps of natural scale against the exact path."""
    inputs = {"query": q, "key": k, "value": v}
    if mask is not None:
        inputs["attn_mask"] = mask
    exact = compute("sdpa", inputs, options, exact=True)["output"]
    default = compute("sdpa", inputs, options)["output"]
    scale = natural_scales("sdpa", inputs, options)["output"]
    got = blocked.sdpa(q, k, v, attn_mask=mask, **options, **BLOCKS)
    assert got.shape == exact.shape and got.dtype == np.float64
    assert np.array_equal(np.isnan(got), np.isnan(exact)), "NaN pattern differs from the exact path"
    ok = ~np.isnan(exact)
    denom = np.maximum(scale, np.finfo(np.float64).tiny) * EPS64
    err = lambda x: float(np.max(np.abs(x[ok] - exact[ok]) / denom[ok], initial=0.0))
    return err(got), err(default)


def _assert_within_rule(q, k, v, mask, options):
    blocked_err, default_err = _errors(q, k, v, mask, options)
    tol = max(8.0, 2.0 * default_err)
    assert blocked_err <= tol, (f"blocked error {blocked_err:.2f} ulp > max(8, 2 × default "
                                f"{default_err:.2f}) = {tol:.2f} ulp for options {options}")


def _mask(kind, rng, B, H, L, S):
    if kind is None:
        return None
    if kind == "bool":
        return rng.random((B, 1, L, S)) > 0.4
    if kind == "bool-broadcast-keys":
        return rng.random((S,)) > 0.3
    if kind == "float":
        return rng.standard_normal((1, H, 1, S))
    if kind == "float-inf":
        m = rng.standard_normal((B, H, L, S))
        m[rng.random(m.shape) < 0.3] = -np.inf
        m[..., : S // 4] -= 1e4   # large finite negatives: hidden in effect, not fully masked
        return m
    raise AssertionError(kind)


OPTION_CASES = {
    "plain": ({}, None),
    "causal-top_left": ({"is_causal": True}, None),
    "causal-bottom_right": ({"is_causal": True, "causal_alignment": "bottom_right"}, None),
    "bool-mask": ({}, "bool"),
    "bool-mask-broadcast": ({}, "bool-broadcast-keys"),
    "float-mask": ({}, "float"),
    "float-mask-inf-causal": ({"is_causal": True}, "float-inf"),
    "bool-mask-causal-bottom_right": ({"is_causal": True, "causal_alignment": "bottom_right"}, "bool"),
    "explicit-scale": ({"scale": 0.3}, None),
}


@pytest.mark.parametrize("case", list(OPTION_CASES), ids=str)
@pytest.mark.parametrize("shape", [dict(L=150, S=200, E=64, Ev=48), dict(L=200, S=70, E=16, Ev=16),
                                   dict(L=97, S=97, E=128, Ev=8, H=2, Hkv=2)],
                         ids=["L<S-E64-Ev48", "L>S-E16", "L=S-E128-noGQA"])
def test_blocked_matches_exact_within_rule(case, shape):
    options, mask_kind = OPTION_CASES[case]
    q, k, v = _problem(7, **shape)
    rng = np.random.default_rng(11)
    mask = _mask(mask_kind, rng, q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    _assert_within_rule(q, k, v, mask, dict(options, enable_gqa=q.shape[1] != k.shape[1]))


@pytest.mark.parametrize("policy", ["zero", "uniform", "nan"])
def test_fully_masked_rows_follow_policy(policy):
    q, k, v = _problem(3, L=120, S=90)
    mask = np.random.default_rng(4).random((2, 1, 120, 90)) > 0.5
    mask[:, :, 5] = False            # fully masked rows
    mask[1, :, 60:70] = False
    _assert_within_rule(q, k, v, mask, {"enable_gqa": True, "fully_masked": policy})


@pytest.mark.parametrize("policy", ["zero", "uniform", "nan"])
def test_bottom_right_with_more_queries_than_keys_masks_the_first_rows(policy):
    q, k, v = _problem(5, L=180, S=60)      # rows i < L - S see no key under bottom_right
    options = {"enable_gqa": True, "is_causal": True, "causal_alignment": "bottom_right",
               "fully_masked": policy}
    _assert_within_rule(q, k, v, None, options)
    out = blocked.sdpa(q, k, v, **options, **BLOCKS)
    if policy == "zero":
        assert np.all(out[:, :, :120] == 0)


@pytest.mark.parametrize("scale", [60.0, -60.0])
def test_large_logits_take_the_running_max_pass(scale, monkeypatch):
    # Logits of several hundred: exp(s) overflows without max-subtraction, so such rows must
    # come from the careful (running-max) pass; the result must still be finite and accurate.
    q, k, v = _problem(9, L=80, S=150, E=16)
    logits = scale * np.einsum("bhle,bhse->bhls", q[:, :2], k[:, :1])
    assert np.abs(logits).max() > 800
    calls = []
    careful = blocked._careful_rows
    monkeypatch.setattr(blocked, "_careful_rows", lambda p, b, h, rows, j_end:
                        calls.append(len(rows)) or careful(p, b, h, rows, j_end))
    _assert_within_rule(q, k, v, None, {"enable_gqa": True, "scale": scale})
    assert sum(calls) > 0, "no row went through the running-max pass"
    assert np.isfinite(blocked.sdpa(q, k, v, scale=scale, enable_gqa=True, **BLOCKS)).all()


def test_inputs_of_lower_dtypes_are_evaluated_in_float64():
    q, k, v = (x.astype(np.float32) for x in _problem(2, L=64, S=64))
    got = blocked.sdpa(q, k, v, enable_gqa=True, **BLOCKS)
    want = compute("sdpa", {"query": q, "key": k, "value": v}, {"enable_gqa": True}, exact=True)["output"]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_thread_count_and_block_size_change_only_rounding():
    q, k, v = _problem(8, L=300, S=260)
    one = blocked.sdpa(q, k, v, enable_gqa=True, is_causal=True, threads=1, **BLOCKS)
    two = blocked.sdpa(q, k, v, enable_gqa=True, is_causal=True, threads=2, block_l=64, block_s=96)
    again = blocked.sdpa(q, k, v, enable_gqa=True, is_causal=True, threads=2, block_l=64, block_s=96)
    assert np.array_equal(two, again), "blocked sdpa is not deterministic"
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-14)


@pytest.mark.parametrize("kwargs, message", [
    (dict(enable_gqa=False), "enable_gqa should be True when H != Hkv"),
    (dict(enable_gqa=True, attn_mask=np.zeros((3, 5))), "attn_mask should be broadcastable"),
    (dict(enable_gqa=True, causal_alignment="middle"), "causal_alignment should be one of"),
    (dict(enable_gqa=True, fully_masked="ignore"), "fully_masked should be one of"),
])
def test_errors_say_what_was_expected(kwargs, message):
    q, k, v = _problem(1, L=8, S=8)
    with pytest.raises((ValueError, TypeError), match=message):
        blocked.sdpa(q, k, v, **kwargs)
