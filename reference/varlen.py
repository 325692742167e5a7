"""Packed variable-length attention (spec section `varlen`): the reference of `sdpa_varlen`.

For what: the (output, lse) every packed-batch kernel is judged against, defined as the sdpa
reference with its log-sum-exp (reference/lse.py) applied to each sequence alone
(varlen.sequence), in the same three flavours (default float64, exact=True, and the
same-precision baseline `precision=<dtype>`). Sequences of equal (L_b, S_b) are evaluated as one
batch, so packed evaluation costs about what the contiguous reference costs on the same work
(`attnconf bench` prints the ratio). Must not: import any framework; give a sequence any key of
another (no block-diagonal mask with finite sentinels: the keys of other sequences are simply
not in the call).

Math (sequence b: query rows cq[b] … cq[b+1] − 1, key rows ck[b] … ck[b+1] − 1):

    out[cq[b] + i], lse[cq[b] + i] = sdpa_lse(q[cq[b]:cq[b+1]], k[ck[b]:ck[b+1]], v[…],
                                              L = L_b, S = S_b, the case's options)
    rows ≥ cq[B]: out 0, lse −∞                                          (varlen.padding)

Shapes: query (total_q, H, E), key (total_k, Hkv, E), value (total_k, Hkv, Ev), cu_seqlens_q and
cu_seqlens_k (B + 1,) integers; output (total_q, H, Ev), lse (total_q, H).
"""
from __future__ import annotations

import numpy as np

from attnconf.reference.lse import natural_scale_lse, sdpa_lse
from attnconf.validation import check_array, check_choice, fail

CAUSAL_ALIGNMENTS = ("bottom_right", "top_left")   # varlen.causal: bottom-right is the default


def check_cu_seqlens(name: str, cu, total: int) -> np.ndarray:
    """varlen.layout: (B + 1,) integers from 0, non-decreasing, ending at most at `total`."""
    arr = check_array(name, cu, ndim=1, legend="(B + 1,)", floating=False)
    if not np.issubdtype(arr.dtype, np.integer):
        fail(f"{name} dtype", "an integer dtype (int32 or int64)", str(arr.dtype), TypeError)
    if arr.size < 2:
        fail(name, "of shape (B + 1,) with B >= 1", f"shape {arr.shape}")
    c = arr.astype(np.int64)
    if c[0] != 0:
        fail(f"{name}[0]", "0", int(c[0]))
    if np.any(np.diff(c) < 0):
        fail(name, "non-decreasing", c.tolist())
    if c[-1] > total:
        fail(f"{name}[B]", f"<= {total} (the packed length)", int(c[-1]))
    return c


def check_arguments(query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                    causal_alignment):
    """The one validation of sdpa_varlen's own arguments (the per-sequence sdpa checks the rest)."""
    q = check_array("query", query, ndim=3, legend="(total_q, H, E)")
    k = check_array("key", key, ndim=3, legend="(total_k, Hkv, E)")
    v = check_array("value", value, ndim=3, legend="(total_k, Hkv, Ev)")
    if v.shape[:2] != k.shape[:2]:
        fail("value shape (total_k, Hkv)", str(k.shape[:2]), f"{v.shape[:2]} (shape {v.shape})")
    if k.shape[2] != q.shape[2]:
        fail("key head dim E", f"{q.shape[2]} (the query's last dim)", f"{k.shape[2]} (shape {k.shape})")
    cq = check_cu_seqlens("cu_seqlens_q", cu_seqlens_q, q.shape[0])
    ck = check_cu_seqlens("cu_seqlens_k", cu_seqlens_k, k.shape[0])
    if cq.size != ck.size:
        fail("cu_seqlens_k shape", f"({cq.size},) like cu_seqlens_q", f"shape ({ck.size},)")
    for name, m, lengths in (("max_seqlen_q", max_seqlen_q, np.diff(cq)),
                             ("max_seqlen_k", max_seqlen_k, np.diff(ck))):
        if m is None:
            continue
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)):
            fail(name, "an int or None", repr(m), TypeError)
        if m < int(lengths.max()):
            fail(name, f">= the longest sequence ({int(lengths.max())})", int(m))
    check_choice("causal_alignment", causal_alignment, CAUSAL_ALIGNMENTS)
    return q, k, v, cq, ck


def sdpa_varlen(query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False,
                window=None, softcap=None, sinks=None, precision=None, exact=False):
    """Attention over packed variable-length sequences (spec/varlen.md) -> (output, lse).

    query (total_q, H, E), key (total_k, Hkv, E), value (total_k, Hkv, Ev), cu_seqlens_q /
    cu_seqlens_k (B + 1,) -> output (total_q, H, Ev), lse (total_q, H). Each sequence is
    reference.lse.sdpa_lse of its own rows (varlen.sequence), with causal_alignment per sequence
    (varlen.causal, default bottom-right). Dtypes as sdpa_lse gives them.
    """
    q, k, v, cq, ck = check_arguments(query, key, value, cu_seqlens_q, cu_seqlens_k,
                                      max_seqlen_q, max_seqlen_k, causal_alignment)
    kw = dict(is_causal=is_causal, causal_alignment=causal_alignment, scale=scale,
              enable_gqa=enable_gqa, window=window, softcap=softcap, sinks=sinks,
              precision=precision, exact=exact)
    out, lse = per_sequence(q, k, v, cq, ck, lambda qb, kb, vb, extra: sdpa_lse(qb, kb, vb, **kw, **extra))
    return out, lse


def natural_scales(query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                   is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False,
                   window=None, softcap=None, sinks=None):
    """Natural scales (tol.metric) of (output, lse): sdpa's and sdpa_lse's of each sequence's rows
    (Σ_j p_ij |v_jc|; 1 + Σ_j p_ij |s_ij|). Padding rows: 1 (their exact values are 0 and −∞)."""
    import importlib

    _sdpa = importlib.import_module("attnconf.reference.sdpa")  # the package attribute is the function
    q, k, v, cq, ck = check_arguments(query, key, value, cu_seqlens_q, cu_seqlens_k,
                                      max_seqlen_q, max_seqlen_k, causal_alignment)
    kw = dict(is_causal=is_causal, causal_alignment=causal_alignment, scale=scale,
              enable_gqa=enable_gqa, window=window, softcap=softcap, sinks=sinks)

    def one(qb, kb, vb, extra):
        pb = _sdpa.prepare(qb, kb, vb, **{n: x for n, x in dict(kw, **extra).items() if x is not None})
        return _sdpa.natural_scale(pb), natural_scale_lse(pb)

    out, lse = per_sequence(q, k, v, cq, ck, one, fill=(1.0, 1.0))
    return out.astype(np.float64), lse.astype(np.float64)


def per_sequence(q, k, v, cq, ck, fn, fill=(0.0, -np.inf)):
    """Scatter fn(q_b, k_b, v_b, extra) -> (rows (n, H, L_b, ·), per-row (n, H, L_b)) over the
    sequences, grouped by (L_b, S_b) (varlen.sequence): one call per group of equal lengths, each
    batch row of the reference computed independently, so the numbers are those of one call per
    sequence. Rows of no sequence keep `fill` (varlen.padding: output 0, LSE −∞)."""
    lq, lk = np.diff(cq), np.diff(ck)
    out, lse = None, None
    for lb, sb in sorted(set(zip(lq.tolist(), lk.tolist()))):
        if lb == 0:            # varlen.empty: no query row, nothing to write
            continue
        seqs = np.flatnonzero((lq == lb) & (lk == sb))
        qi = (cq[seqs][:, None] + np.arange(lb)[None, :])            # (n, L_b) packed query rows
        kb, vb, extra = _keys(k, v, ck[seqs], sb)
        o, s = fn(np.ascontiguousarray(np.swapaxes(q[qi], 1, 2)), kb, vb, extra)   # queries (n, H, L_b, E)
        if out is None:        # the dtypes fn gives at this precision
            out, lse = _filled(q, v, o.dtype, s.dtype, fill)
        out[qi] = np.swapaxes(o, 1, 2)
        lse[qi] = np.swapaxes(s, 1, 2)
    if out is None:            # no query row at all: the dtypes of a tiny call
        z = np.zeros((1, q.shape[1], 1, q.shape[2]), q.dtype)
        o, s = fn(z, np.zeros((1, k.shape[1], 1, k.shape[2]), k.dtype),
                  np.zeros((1, v.shape[1], 1, v.shape[2]), v.dtype), {})
        out, lse = _filled(q, v, o.dtype, s.dtype, fill)
    return out, lse


def _filled(q, v, out_dtype, lse_dtype, fill):
    return (np.full((q.shape[0], q.shape[1], v.shape[2]), fill[0], dtype=out_dtype),
            np.full(q.shape[:2], fill[1], dtype=lse_dtype))


def _keys(k, v, starts, sb: int):
    """(keys, values, extra sdpa options) of the sequences starting at `starts`, each S_b keys
    long, as (n, Hkv, S_b, ·). S_b = 0 (varlen.empty): one zero key hidden by key_lengths = 0,
    so every row is fully masked by the sdpa reference's own rule (output 0, LSE −∞ or the sink)."""
    n = starts.size
    if sb == 0:
        return (np.zeros((n, k.shape[1], 1, k.shape[2]), k.dtype), np.zeros((n, v.shape[1], 1, v.shape[2]), v.dtype),
                {"key_lengths": np.zeros(n, np.int64)})
    ki = starts[:, None] + np.arange(sb)[None, :]
    return np.ascontiguousarray(np.swapaxes(k[ki], 1, 2)), np.ascontiguousarray(np.swapaxes(v[ki], 1, 2)), {}
