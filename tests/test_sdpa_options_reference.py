"""The reference's sdpa kernel options (spec sdpa.opt.*): exact path against the mpmath oracle,
the semantics the clauses fix, the one-line validation, and the unsupported-option rule.

Must not test real frameworks (the adapters' tests do) or hard-code expected numbers: every
expected value is the oracle's or another evaluation of the reference.
"""
from __future__ import annotations

import numpy as np
import pytest

import attnconf.reference as R
from attnconf.errors import Unsupported
from attnconf.operations import sdpa as entry
from attnconf.reference import oracle
from attnconf.reference.sdpa_option_cases import option_cases

EPS64 = 2.0 ** -52
SMALL = [c for c in option_cases() if c.inputs["key"].shape[2] <= 16]


def _kw(case):
    return dict(attn_mask=case.inputs.get("attn_mask"), **entry._options(case.inputs, case.options))


def _ulps(actual, expected, scale):
    return float(np.max(np.abs(actual - expected) / (np.maximum(scale, 1e-300) * EPS64)))


@pytest.mark.parametrize("case", SMALL, ids=lambda c: c.id)
def test_exact_path_matches_the_oracle(case):
    q, k, v = (case.inputs[n] for n in ("query", "key", "value"))
    exact = R.sdpa(q, k, v, exact=True, **_kw(case))
    want = oracle.sdpa_options(q, k, v, **_kw(case))
    scale = R.natural_scales("sdpa", case.inputs, case.options)["output"]
    assert _ulps(exact, want, scale) <= 1.0
    default = R.sdpa(q, k, v, **_kw(case))
    assert _ulps(default, want, scale) <= 16.0   # default path, logits up to 1e4 (spec/accuracy.md)


def _qkv(B=2, H=2, L=5, S=7, E=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, H, L, E)), rng.standard_normal((B, H, S, E)), rng.standard_normal((B, H, S, E))


@pytest.mark.parametrize("align", ["top_left", "bottom_right"])
def test_window_none_0_is_the_causal_rule(align):
    q, k, v = _qkv()
    causal = R.sdpa(q, k, v, is_causal=True, causal_alignment=align, exact=True)
    assert np.array_equal(R.sdpa(q, k, v, window=(None, 0), causal_alignment=align, exact=True), causal)
    assert np.array_equal(R.sdpa(q, k, v, window=(None, None), exact=True), R.sdpa(q, k, v, exact=True))


def test_window_counts_left_plus_one_plus_right_keys():
    # with V = identity rows, the output row is the weights: count the keys that got weight
    q, k, _ = _qkv(B=1, H=1, L=9, S=9, E=4)
    eye = np.eye(9)[None, None]
    w = R.sdpa(q, k, eye, window=(3, 1), exact=True)[0, 0]
    rel = np.arange(9)[None, :] - np.arange(9)[:, None]
    assert np.array_equal(w > 0, (rel >= -3) & (rel <= 1))


def test_a_sink_of_minus_infinity_is_no_sink_and_a_finite_one_scales_weights_down():
    q, k, v = _qkv(H=3)
    plain = R.sdpa(q, k, v, exact=True)
    assert np.array_equal(R.sdpa(q, k, v, sinks=np.full(3, -np.inf), exact=True), plain)
    eye = np.broadcast_to(np.eye(7), (2, 3, 7, 7))
    w = R.sdpa(q, k, eye, sinks=np.array([0.0, 1.0, -2.0]), exact=True)
    assert np.all(w.sum(-1) < 1.0) and np.all(w > 0)


def test_a_row_without_keys_but_with_a_sink_is_zero_not_the_policy():
    q, k, v = _qkv(B=1, H=2)
    mask = np.ones((1, 2, 5, 7), bool)
    mask[0, :, 2] = False
    for policy in ("zero", "uniform", "nan"):
        out = R.sdpa(q, k, v, attn_mask=mask, sinks=np.array([0.5, -np.inf]), fully_masked=policy)
        assert np.all(out[0, 0, 2] == 0.0)            # finite sink: weights 0, output 0
        if policy == "uniform":                        # −∞ sink: a fully-masked row, its policy
            assert np.allclose(out[0, 1, 2], v[0, 1].mean(0))


def test_decode_step_by_step_equals_one_causal_pass():
    q, k, v = _qkv(B=1, H=2, L=12, S=12)
    full = R.sdpa(q, k, v, is_causal=True, window=(4, 0), exact=True)
    for t in range(12):
        step = R.sdpa(q[:, :, t:t + 1], k[:, :, :t + 1], v[:, :, :t + 1], is_causal=True, window=(4, 0),
                      query_offset=np.array([t]), exact=True)
        assert np.array_equal(step[:, :, 0], full[:, :, t])
    chunk = R.sdpa(q[:, :, 8:], k, v, is_causal=True, window=(4, 0), query_offset=np.array([8]), exact=True)
    assert np.array_equal(chunk, full[:, :, 8:])


def test_query_offset_s_minus_l_is_bottom_right():
    q, k, v = _qkv(L=3, S=9)
    br = R.sdpa(q, k, v, is_causal=True, causal_alignment="bottom_right", alibi_slopes=np.array([0.5, 0.25]), exact=True)
    off = R.sdpa(q, k, v, is_causal=True, alibi_slopes=np.array([0.5, 0.25]), query_offset=np.array([6, 6]), exact=True)
    assert np.array_equal(br, off)


def test_lengths_pad_rows_and_keys():
    q, k, v = _qkv(B=2, L=5, S=7)
    out = R.sdpa(q, k, v, key_lengths=np.array([7, 3]), query_lengths=np.array([5, 2]))
    assert np.all(out[1, :, 2:] == 0.0) and np.all(np.isfinite(out))
    # the valid rows of sequence 1 are those of its unpadded problem
    alone = R.sdpa(q[1:, :, :2], k[1:, :, :3], v[1:, :, :3])
    assert np.allclose(out[1:, :, :2], alone, rtol=0, atol=1e-15)


def test_softcap_tends_to_no_cap_and_bounds_the_logits():
    q, k, v = _qkv()
    plain = R.sdpa(q, k, v, exact=True)
    assert np.allclose(R.sdpa(q, k, v, softcap=1e9, exact=True), plain, rtol=0, atol=1e-14)
    # two keys, logits far apart: capped at c the weight ratio stays within exp(2c)
    q2 = np.array([[[[30.0, 0.0]]]])
    k2 = np.array([[[[10.0, 0.0], [-10.0, 0.0]]]])
    w = R.sdpa(q2, k2, np.eye(2)[None, None], scale=1.0, softcap=2.0, exact=True)[0, 0, 0]
    assert w[0] / w[1] <= np.exp(4.0) * (1 + 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_same_precision_baseline_is_close_and_finite(dtype):
    case = next(c for c in option_cases() if c.id == "sdpa/opt_combined_all")
    base = R.compute("sdpa", case.inputs, case.options, precision=dtype)["output"].astype(np.float64)
    exact = R.compute("sdpa", case.inputs, case.options, exact=True)["output"]
    scale = R.natural_scales("sdpa", case.inputs, case.options)["output"]
    eps = {"float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}[dtype]
    assert np.all(np.isfinite(base)) and np.max(np.abs(base - exact) / (scale * eps)) < 64


def test_options_never_reach_the_blocked_path(monkeypatch):
    from attnconf.reference import blocked

    monkeypatch.setattr(blocked, "DISPATCH_MIN_LOGITS", 1)
    q, k, v = _qkv()
    # without options the blocked path takes it; with any option, the unblocked one
    assert np.allclose(R.sdpa(q, k, v), R.sdpa(q, k, v, exact=True), rtol=0, atol=1e-14)
    monkeypatch.setattr(blocked, "sdpa", lambda *a, **kw: pytest.fail("blocked path used for an option"))
    R.sdpa(q, k, v, window=(2, 0))
    R.sdpa(q, k, v, key_lengths=np.array([3, 7]))


Q = np.zeros((2, 2, 3, 4))
K = np.zeros((2, 2, 5, 4))


@pytest.mark.parametrize("kw,exc,text", [
    (dict(window=(-1, 0)), ValueError, "window left should be None (unbounded) or an int >= 0, but got -1"),
    (dict(window=(1,)), TypeError, "window should be None or a pair (left, right)"),
    (dict(window=(1.5, 0)), TypeError, "window left should be None or an int >= 0, but got 1.5"),
    (dict(softcap=0.0), ValueError, "softcap should be None (off) or a finite number > 0, but got 0.0"),
    (dict(softcap=-3.0), ValueError, "softcap should be None (off) or a finite number > 0, but got -3.0"),
    (dict(softcap=float("inf")), ValueError, "softcap should be None (off) or a finite number > 0"),
    (dict(sinks=np.zeros(3)), ValueError, "sinks should be of shape (H,) = (2,), but got shape (3,)"),
    (dict(sinks=np.array([np.nan, 0.0])), ValueError, "sinks should be finite or −inf"),
    (dict(alibi_slopes=np.zeros((2, 3))), ValueError, "alibi_slopes should be of shape (H,) or (B, H)"),
    (dict(alibi_slopes=np.array([1, 2])), TypeError, "alibi_slopes dtype should be floating, but got int64"),
    (dict(query_offset=np.array([1, -1])), ValueError, "query_offset should be a past length >= 0"),
    (dict(query_offset=np.array([1.0, 2.0])), TypeError, "query_offset dtype should be an integer dtype"),
    (dict(query_offset=np.array([1, 2]), causal_alignment="bottom_right"), ValueError,
     "causal_alignment should be 'top_left' (the default) when query_offset is given, but got 'bottom_right'"),
    (dict(key_lengths=np.array([6, 1])), ValueError, "key_lengths should be between 0 and S = 5, but got [6, 1]"),
    (dict(query_lengths=np.array([3])), ValueError, "query_lengths should be of shape (B,) = (2,), but got shape (1,)"),
])
def test_bad_options_explain_in_one_line(kw, exc, text):
    with pytest.raises(exc) as info:
        R.sdpa(Q, K, K, **kw)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_an_adapter_without_the_option_skips_the_case():
    from attnconf.adapters.numpy_reference import NumpyReferenceAdapter

    ref = NumpyReferenceAdapter()
    assert set(ref.capabilities.sdpa_options) == set(entry.OPTION_NAMES)

    class Plain:
        name = "plain"
        capabilities = type(ref.capabilities)()

        def sdpa(self, *a, **kw):
            raise AssertionError("called although the option is unsupported")

    case = next(c for c in option_cases() if c.id == "sdpa/opt_key_lengths_b3")
    with pytest.raises(Unsupported, match="key_lengths"):
        entry.call(Plain(), case.inputs, case.options, "float64")
    out = entry.call(ref, case.inputs, case.options, "float64")
    assert np.array_equal(out, R.compute("sdpa", case.inputs, case.options)["output"])
