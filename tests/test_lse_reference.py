"""The log-sum-exp reference (attnconf.reference.lse, spec sdpa.lse.*): its output is sdpa's bit for
bit, its LSE is the natural log of the softmax denominator (checked against an mpmath evaluation
written here from the spec's formula), −∞ for rows with no key and padded rows, the sink's exp in
the denominator, float32 for the lower precisions. Must not test adapters or the merge.
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

from attnconf.reference.lse import sdpa_lse
from attnconf.reference.sdpa import sdpa

RNG = np.random.default_rng(7)
Q = np.round(RNG.standard_normal((2, 4, 5, 8)) * 16) / 16
K = np.round(RNG.standard_normal((2, 2, 7, 8)) * 16) / 16
V = np.round(RNG.standard_normal((2, 2, 7, 3)) * 16) / 16
SINKS = np.array([0.5, -1.0, 2.0, -np.inf])
OPTIONS = {
    "plain": {},
    "causal_br": {"is_causal": True, "causal_alignment": "bottom_right"},
    "sinks": {"sinks": SINKS},
    "softcap_alibi": {"softcap": 2.0, "alibi_slopes": np.array([0.5, 0.25, 0.125, 0.0625])},
    "window_decode": {"window": (1, 0), "query_offset": np.array([2, 0]), "is_causal": True},
    "key_lengths_zero_sinks": {"key_lengths": np.array([0, 3]), "sinks": SINKS},
    "query_lengths": {"query_lengths": np.array([2, 5])},
    "scale": {"scale": 0.3},
}


def _logits_mp(b, h, i, kw):
    """The row's logits after scale, softcap and ALiBi, None where hidden, in mpmath (spec order)."""
    g = h // 2
    scale = kw.get("scale", 1 / mpmath.sqrt(8))
    pos = i + (int(kw["query_offset"][b]) if "query_offset" in kw else
               (7 - 5 if kw.get("causal_alignment") == "bottom_right" else 0))
    row = []
    for j in range(7):
        hidden = (kw.get("is_causal") and j > pos) or ("key_lengths" in kw and j >= kw["key_lengths"][b])
        if "window" in kw:
            left, right = kw["window"]
            hidden = hidden or j - pos < -left or j - pos > right
        if hidden:
            row.append(None)
            continue
        s = mpmath.fsum(mpmath.mpf(float(Q[b, h, i, e])) * mpmath.mpf(float(K[b, g, j, e])) for e in range(8)) * scale
        if "softcap" in kw:
            s = kw["softcap"] * mpmath.tanh(s / kw["softcap"])
        if "alibi_slopes" in kw:
            s -= mpmath.mpf(float(kw["alibi_slopes"][h])) * abs(pos - j)
        row.append(s)
    return row


def _lse_mp(kw):
    out = np.zeros((2, 4, 5))
    with mpmath.workprec(120):
        for b, h, i in np.ndindex(2, 4, 5):
            terms = [mpmath.exp(s) for s in _logits_mp(b, h, i, kw) if s is not None]
            if "sinks" in kw and np.isfinite(kw["sinks"][h]):
                terms.append(mpmath.exp(mpmath.mpf(float(kw["sinks"][h]))))
            padded = "query_lengths" in kw and i >= kw["query_lengths"][b]
            out[b, h, i] = -np.inf if padded or not terms else float(mpmath.log(mpmath.fsum(terms)))
    return out


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("precision", [None, "float32", "bfloat16"])
def test_output_is_sdpa_bit_for_bit(name, precision):
    out, _ = sdpa_lse(Q, K, V, enable_gqa=True, precision=precision, **OPTIONS[name])
    want = sdpa(Q, K, V, enable_gqa=True, precision=precision, **OPTIONS[name])
    assert out.dtype == want.dtype and np.array_equal(out, want, equal_nan=True)


@pytest.mark.parametrize("name", OPTIONS)
def test_exact_lse_is_the_natural_log_of_the_denominator(name):
    _, lse = sdpa_lse(Q, K, V, enable_gqa=True, exact=True, **OPTIONS[name])
    want = _lse_mp(OPTIONS[name])
    assert lse.dtype == np.float64
    assert np.array_equal(np.isneginf(lse), np.isneginf(want))
    fin = np.isfinite(want)
    # <= 1 ulp of the LSE's natural-scale bound 1 + max|s| (here < 8)
    assert np.max(np.abs(lse[fin] - want[fin])) <= 8 * 2.0 ** -52


@pytest.mark.parametrize("name", OPTIONS)
def test_default_and_baseline_paths_agree_with_exact(name):
    _, exact = sdpa_lse(Q, K, V, enable_gqa=True, exact=True, **OPTIONS[name])
    fin = np.isfinite(exact)
    for precision, tol in ((None, 1e-14), ("float32", 1e-5), ("float16", 2e-2), ("bfloat16", 1e-1)):
        _, lse = sdpa_lse(Q, K, V, enable_gqa=True, precision=precision, **OPTIONS[name])
        assert lse.dtype == (np.float64 if precision is None else np.float32)   # sdpa.lse.dtype
        assert np.array_equal(np.isneginf(lse), ~fin)
        assert np.max(np.abs(lse[fin] - exact[fin]), initial=0) <= tol, precision


def test_empty_rows_padded_rows_and_sink_only_rows():
    _, lse = sdpa_lse(Q, K, V, enable_gqa=True, key_lengths=np.array([0, 3]), sinks=SINKS, exact=True)
    # batch 0 sees no key: its LSE is the sink (sdpa.lse.sinks), −∞ for the head whose sink is −∞
    assert np.array_equal(lse[0, :3], np.broadcast_to(SINKS[:3, None], (3, 5)))
    assert np.all(np.isneginf(lse[0, 3]))
    _, lse = sdpa_lse(Q, K, V, enable_gqa=True, query_lengths=np.array([2, 5]))
    assert np.all(np.isneginf(lse[0, :, 2:])) and np.all(np.isfinite(lse[0, :, :2]))   # sdpa.lse.padded
    mask = np.ones((1, 1, 5, 7), bool)
    mask[..., 3, :] = False
    _, lse = sdpa_lse(Q, K, V, enable_gqa=True, attn_mask=mask)
    assert np.all(np.isneginf(lse[:, :, 3])) and not np.isnan(lse).any()   # sdpa.lse.empty


def test_lse_reproduces_the_output():
    # sdpa.lse.definition: output_i = Σ_j exp(s_ij − lse_i) v_j
    kw = {"sinks": SINKS, "is_causal": True}
    out, lse = sdpa_lse(Q, K, V, enable_gqa=True, **kw)
    s = Q @ np.swapaxes(np.repeat(K, 2, axis=1), -1, -2) / np.sqrt(8)
    s = np.where(np.tril(np.ones((5, 7), bool)), s, -np.inf)
    p = np.exp(s - lse[..., None])
    assert np.allclose(p @ np.repeat(V, 2, axis=1), out, atol=1e-13)


def test_bad_input_reads_as_sdpa_does():
    with pytest.raises(ValueError, match="should"):
        sdpa_lse(Q, K[:, :, :, :4], V, enable_gqa=True)
    with pytest.raises(ValueError, match="precision should be"):
        sdpa_lse(Q, K, V, enable_gqa=True, precision="float8")
