"""The packed reference (reference/varlen.py, spec/varlen.md): each sequence is sdpa_lse of its own
rows, padding rows are 0 / −∞ and padding keys are never read, empty sequences, the block-diagonal
form, the three evaluation paths, and one-line errors for malformed cu_seqlens."""
from __future__ import annotations

import numpy as np
import pytest

from attnconf import operations, reference
from attnconf.reference.lse import sdpa_lse
from attnconf.reference.sdpa import sdpa
from attnconf.reference.varlen import sdpa_varlen
from attnconf.reference.varlen_cases import cu_seqlens


def _packed(lq, lk, h=4, hkv=2, e=4, pad_q=0, pad_k=0, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((sum(lq) + pad_q, h, e))
    k = rng.standard_normal((sum(lk) + pad_k, hkv, e))
    v = rng.standard_normal((sum(lk) + pad_k, hkv, e + 1))
    return q, k, v, cu_seqlens(lq), cu_seqlens(lk)


OPTIONS = [dict(), dict(is_causal=True), dict(is_causal=True, causal_alignment="top_left"),
           dict(window=(1, 0), is_causal=True), dict(softcap=2.0), dict(sinks=np.array([0.5, -1.0, 2.0, -np.inf]))]


@pytest.mark.parametrize("kw", OPTIONS, ids=["plain", "causal_br", "causal_tl", "window", "softcap", "sinks"])
def test_each_sequence_is_sdpa_lse_of_its_own_rows(kw):
    lq, lk = [2, 0, 4, 1, 3], [5, 3, 4, 0, 3]
    q, k, v, cq, ck = _packed(lq, lk, pad_q=2, pad_k=3)
    out, lse = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, **kw)
    align = kw.pop("causal_alignment", "bottom_right")
    for b in range(len(lq)):
        rows = slice(cq[b], cq[b + 1])
        if lq[b] == 0:
            continue
        if lk[b] == 0:   # varlen.empty: fully masked (0; LSE −∞ or the sink)
            assert np.all(out[rows] == 0)
            want = -np.inf if "sinks" not in kw else kw["sinks"]
            assert np.array_equal(lse[rows], np.broadcast_to(want, lse[rows].shape))
            continue
        one = lambda x, s: x[s].transpose(1, 0, 2)[None]   # noqa: E731
        o, s = sdpa_lse(one(q, rows), one(k, slice(ck[b], ck[b + 1])), one(v, slice(ck[b], ck[b + 1])),
                        enable_gqa=True, causal_alignment=align, **kw)
        assert np.array_equal(out[rows], o[0].transpose(1, 0, 2))
        assert np.array_equal(lse[rows], s[0].T)
    assert np.all(out[cq[-1]:] == 0) and np.all(np.isneginf(lse[cq[-1]:]))   # varlen.padding


@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf, 1e30])
def test_padding_is_never_read(poison):
    q, k, v, cq, ck = _packed([3, 2], [4, 3], pad_q=2, pad_k=3)
    clean = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, is_causal=True)
    q[cq[-1]:], k[ck[-1]:], v[ck[-1]:] = poison, poison, poison
    dirty = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, is_causal=True)
    for a, b in zip(clean, dirty):
        assert np.array_equal(a, b)


def test_block_diagonal_mask_on_the_packed_batch_gives_the_same_rows():
    from attnconf.conformance.checks.invariants.varlen import block_diagonal

    lq, lk = [2, 4, 3], [5, 4, 2]
    q, k, v, cq, ck = _packed(lq, lk)
    out, _ = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, is_causal=True)
    mask = block_diagonal(cq, ck, q.shape[0], k.shape[0], True, "bottom_right")
    whole = sdpa(*(x.transpose(1, 0, 2)[None] for x in (q, k, v)), attn_mask=mask, enable_gqa=True)
    live = mask.any(axis=-1)
    np.testing.assert_allclose(out[live], whole[0].transpose(1, 0, 2)[live], rtol=1e-13, atol=1e-14)


def test_logits_far_below_a_finite_sentinel_still_take_part():
    q, k, v, cq, ck = _packed([3, 2], [3, 4], h=2, hkv=2)
    shifted_k = np.concatenate([k, np.where(np.arange(k.shape[0]) < ck[1], -6e4, 0.0)[:, None, None]
                                * np.ones(k.shape[:2] + (1,))], axis=-1)
    shifted_q = np.concatenate([q, np.ones(q.shape[:2] + (1,))], axis=-1)
    base, lse0 = sdpa_varlen(q, k, v, cq, ck, scale=1.0)
    out, lse = sdpa_varlen(shifted_q, shifted_k, v, cq, ck, scale=1.0)
    np.testing.assert_allclose(out, base, rtol=1e-9, atol=1e-12)   # softmax is shift invariant
    np.testing.assert_allclose(lse[:cq[1]], lse0[:cq[1]] - 6e4, rtol=1e-12)


def test_total_q_below_the_batch_size_and_all_empty():
    q, k, v, cq, ck = _packed([0, 1, 0, 0, 1], [2, 3, 0, 1, 4])
    out, lse = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, is_causal=True)
    assert out.shape == (2, 4, 5) and lse.shape == (2, 4) and np.all(np.isfinite(lse))
    q, k, v, cq, ck = _packed([0, 0], [0, 0], pad_q=2)
    out, lse = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True)
    assert np.all(out == 0) and np.all(np.isneginf(lse))


def test_paths_and_dtypes():
    q, k, v, cq, ck = _packed([3, 5], [4, 6])
    default, d_lse = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, is_causal=True)
    exact, e_lse = sdpa_varlen(q, k, v, cq, ck, enable_gqa=True, is_causal=True, exact=True)
    assert exact.dtype == np.float64 and e_lse.dtype == np.float64
    np.testing.assert_allclose(default, exact, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(d_lse, e_lse, rtol=1e-13, atol=1e-13)
    half, h_lse = sdpa_varlen(*(x.astype(np.float16) for x in (q, k, v)), cq, ck, enable_gqa=True,
                              is_causal=True, precision="float16")
    assert half.dtype == np.float16 and h_lse.dtype == np.float32    # sdpa.lse.dtype
    op = operations.get("sdpa_varlen")
    assert op.output_dtype("lse", "bfloat16") == "float32" and op.output_dtype("output", "bfloat16") == "bfloat16"


def test_natural_scales_are_positive_where_the_output_is_not_exactly_zero():
    q, k, v, cq, ck = _packed([3, 2, 2], [4, 0, 3], pad_q=1)
    inputs = dict(query=q, key=k, value=v, cu_seqlens_q=cq, cu_seqlens_k=ck)
    scales = reference.natural_scales("sdpa_varlen", inputs, {"enable_gqa": True})
    assert np.all(scales["lse"] >= 1.0)
    assert np.all(scales["output"][:cq[1]] > 0) and np.all(scales["output"][cq[2]:cq[3]] > 0)


@pytest.mark.parametrize("cq, ck, message", [
    (np.array([1, 3], np.int32), np.array([0, 3], np.int32), "cu_seqlens_q[0] should be 0, but got 1"),
    (np.array([0, 3, 2], np.int32), np.array([0, 1, 3], np.int32), "cu_seqlens_q should be non-decreasing"),
    (np.array([0, 3], np.int32), np.array([0, 9], np.int32), "cu_seqlens_k[B] should be <= 6"),
    (np.array([0, 3], np.int32), np.array([0, 1, 3], np.int32), "cu_seqlens_k shape should be (2,)"),
    (np.array([0.0, 3.0]), np.array([0, 3], np.int32), "cu_seqlens_q dtype should be an integer dtype"),
    (np.array([0], np.int32), np.array([0], np.int32), "cu_seqlens_q should be of shape (B + 1,) with B >= 1"),
])
def test_malformed_cu_seqlens_are_one_line_errors(cq, ck, message):
    q, k, v, _, _ = _packed([3], [6])
    with pytest.raises((ValueError, TypeError)) as info:
        sdpa_varlen(q, k, v, cq, ck, enable_gqa=True)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_max_seqlen_below_the_longest_sequence_is_rejected():
    q, k, v, cq, ck = _packed([3, 2], [4, 3])
    with pytest.raises(ValueError, match=r"max_seqlen_k should be >= the longest sequence \(4\), but got 3"):
        sdpa_varlen(q, k, v, cq, ck, 3, 3, enable_gqa=True)
    sdpa_varlen(q, k, v, cq, ck, 8, 8, enable_gqa=True)   # larger: changes nothing


def test_golden_cases_cite_known_clauses_and_store_int32_offsets():
    cases = operations.get("sdpa_varlen").resolve("cases")()
    assert 8 <= len(cases) <= 16   # modest: the default run's time
    for case in cases:
        assert case.inputs["cu_seqlens_q"].dtype == np.int32 and case.inputs["cu_seqlens_k"].dtype == np.int32
    cited = {c for case in cases for c in case.clauses}
    assert {"varlen.layout", "varlen.sequence", "varlen.causal", "varlen.empty", "varlen.padding",
            "varlen.lse", "sdpa.gqa", "sdpa.opt.window", "sdpa.opt.softcap", "sdpa.opt.sinks"} <= cited
