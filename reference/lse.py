"""Scaled dot-product attention with its log-sum-exp (spec/lse.md, clauses sdpa.lse.*): the
reference that split-KV, decode and context-parallel kernels are judged against.

For what: (output, lse) where output is exactly what reference.sdpa.sdpa returns for the same
arguments and lse is the natural log of each query row's softmax denominator, in the same three
flavours:
  * default (precision=None): float64, the straightforward algorithm (row max m, z = Σ exp(s − m),
    lse = m + log z);
  * exact=True: golden grade, <= 1 ulp of natural scale: the double-double logits of the exact
    sdpa path, exponentials and sum in 80-bit long double, m + log z rounded once;
  * precision="float32" | "float16" | "bfloat16": the same-precision baseline (tol.baseline,
    sdpa.lse.dtype): the logits as reference.sdpa's baseline forms them (half inputs: products
    accumulated in float32 and rounded to the dtype), m, z and log in float32 — LSE returned as
    float32 for all three, as kernels keep it (FlashAttention's softmax_lse, PyTorch's logsumexp).
Must not: import any framework; change the output's meaning (that is reference.sdpa's).

Math (per batch b, query head h, query row i; s_ij the logits after scaling, softcap, ALiBi and
float mask, −∞ where key j is hidden, sink_h the sink logit when sinks are given):

    lse[b,h,i] = log( Σ_j exp(s_ij) + exp(sink_h) )            (sdpa.lse.definition, sdpa.lse.sinks)
               = −∞  when no key is visible and there is no sink (sdpa.lse.empty)
               = −∞  for a padded query row i >= query_lengths[b] (sdpa.lse.padded)

so that out[b,h,i,:] = Σ_j exp(s_ij − lse[b,h,i]) · v_j (sdpa.lse.consistency).
Shapes: query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev); output (B, H, L, Ev),
lse (B, H, L).
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import precise
from attnconf.reference import sdpa_options as opt
from attnconf.reference.sdpa import Arith, Problem, logits_dd, logits_plain, prepare, sdpa


def sdpa_lse(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
             scale=None, enable_gqa=False, window=None, softcap=None, sinks=None, alibi_slopes=None,
             query_offset=None, key_lengths=None, query_lengths=None, chunk=None, fully_masked="zero",
             precision=None, exact=False):
    """Scaled dot-product attention and its log-sum-exp (spec/lse.md).

    lse[b,h,i] = log(Σ_j exp(s_ij) + exp(sink_h)),  −∞ for a row with no visible key and no sink.
    output = reference.sdpa.sdpa(same arguments), bit for bit.
    query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev) -> (output (B, H, L, Ev),
    lse (B, H, L)). Dtypes: output as sdpa gives it; lse float64 for precision None/"float64"
    and exact=True, float32 for precision "float32", "float16" and "bfloat16".
    """
    kw = dict(attn_mask=attn_mask, is_causal=is_causal, causal_alignment=causal_alignment,
              scale=scale, enable_gqa=enable_gqa, window=window, softcap=softcap, sinks=sinks,
              alibi_slopes=alibi_slopes, query_offset=query_offset, key_lengths=key_lengths,
              query_lengths=query_lengths, chunk=chunk, fully_masked=fully_masked)
    output = sdpa(query, key, value, exact=exact, precision=precision, **kw)  # validates all
    options = {k: v for k, v in kw.items() if k in opt.OPTION_NAMES and v is not None}
    base = {k: v for k, v in kw.items() if k not in opt.OPTION_NAMES}
    pb = prepare(query, key, value, **base, **options)
    if exact:
        lse = lse_exact(pb)
    else:
        lse = lse_plain(pb, Arith(precision))
    return output, lse


def _finish(lse, pb: Problem, full):
    """sdpa.lse.empty / sdpa.lse.padded: −∞ for rows with nothing in the denominator and for
    padded query rows; (B, H, L, 1) -> (B, H, L)."""
    lse = np.where(full, lse.dtype.type(-np.inf), lse)
    if pb.padded is not None:
        lse = np.where(pb.padded, lse.dtype.type(-np.inf), lse)
    return lse[..., 0]


def lse_plain(pb: Problem, ar: Arith) -> np.ndarray:
    """The log-sum-exp by the straightforward algorithm in ar.compute (float64 or float32)."""
    c = ar.compute
    s = logits_plain(pb, ar)
    m = np.max(s, axis=-1, keepdims=True)
    sink = None if pb.sinks is None else ar.input(pb.sinks)
    if sink is not None:  # sdpa.lse.sinks: the sink joins the max and the denominator
        m = np.maximum(m, sink)
    full = np.isneginf(m)
    shift = np.where(full, c.type(0), m)
    z = np.sum(np.exp(s - shift), axis=-1, keepdims=True)
    if sink is not None:
        z = z + np.exp(sink - shift)
    with np.errstate(divide="ignore"):
        lse = shift + np.log(np.where(full, c.type(1), z))
    return _finish(lse.astype(c), pb, full)


def lse_exact(pb: Problem) -> np.ndarray:
    """The log-sum-exp in float64, <= 1 ulp of natural scale (sdpa.lse.definition).

    Logits as the exact sdpa path forms them (double-double); z = Σ exp(s − m) in long double
    with s − m split exactly by two_sum; lse = m + log z summed in long double, rounded once.
    Without an 80-bit long double the sum and log are done row by row in mpmath (slow).
    """
    sh, sl = logits_dd(pb)
    if pb.allowed is not None:
        sh = np.where(pb.allowed, sh, -np.inf)
    m = np.max(sh, axis=-1, keepdims=True)
    if pb.sinks is not None:  # sdpa.lse.sinks
        m = np.maximum(m, pb.sinks)
    full = np.isneginf(m)
    m = np.where(full, 0.0, m)
    if not precise.HAVE_LONGDOUBLE:
        return _finish(_lse_mpmath(pb, sh, sl, m), pb, full)
    with np.errstate(invalid="ignore"):  # hidden entries (−∞) give NaN here, zeroed below
        t, te = precise.two_sum(sh, -m)
        corr = np.where(np.isneginf(sh), 0.0, te + sl)
        e = np.exp(t.astype(np.longdouble)) * np.exp(corr.astype(np.longdouble))
    e = np.where(np.isneginf(sh), np.longdouble(0), e)
    z = np.sum(e, axis=-1, keepdims=True)
    if pb.sinks is not None:
        with np.errstate(invalid="ignore"):  # a −∞ sink: exp(−∞) = 0, its NaN low part dropped
            u, ue = precise.two_sum(np.broadcast_to(pb.sinks, m.shape), -m)
            ue = np.where(np.isfinite(u), ue, 0.0)
        z = z + np.exp(u.astype(np.longdouble)) * np.exp(ue.astype(np.longdouble))
    with np.errstate(divide="ignore"):
        lse = m.astype(np.longdouble) + np.log(np.where(full, np.longdouble(1), z))
    return _finish(lse.astype(np.float64), pb, full)


def _lse_mpmath(pb: Problem, sh, sl, m) -> np.ndarray:
    """lse rows in mpmath at 120 bits, for platforms without an 80-bit long double."""
    import mpmath

    out = np.zeros(m.shape, np.float64)
    sinks = None if pb.sinks is None else np.broadcast_to(pb.sinks, m.shape)
    with mpmath.workprec(120):
        for idx in np.ndindex(*m.shape[:3]):
            z = mpmath.mpf(0)
            for hi, lo in zip(sh[idx], sl[idx]):
                if np.isfinite(hi):
                    z += mpmath.exp(mpmath.mpf(float(hi)) + mpmath.mpf(float(lo)))
            if sinks is not None and np.isfinite(sinks[idx][0]):
                z += mpmath.exp(mpmath.mpf(float(sinks[idx][0])))
            out[idx] = float(mpmath.log(z)) if z > 0 else -np.inf
    return out


def natural_scale_lse(pb: Problem) -> np.ndarray:
    """The natural scale of each row's LSE (tol.metric), (B, H, L): 1 + Σⱼ p_ij·|s_ij| (+ the
    sink's weight times |sink_h|), p the row's weights. A logit rounded with relative error u
    moves the LSE by p_ij·|s_ij|·u (∂lse/∂s_ij = p_ij); the 1 is the log's and the sum's own
    rounding (log z with z in [1, S + 1]). 1 for a row with no key or a padded row."""
    ar = Arith(None)
    s = logits_plain(pb, ar)
    m = np.max(s, axis=-1, keepdims=True)
    if pb.sinks is not None:
        m = np.maximum(m, pb.sinks)
    full = np.isneginf(m)
    shift = np.where(full, 0.0, m)
    e = np.exp(s - shift)
    z = np.sum(e, axis=-1, keepdims=True)
    weighted = np.sum(np.where(np.isneginf(s), 0.0, e * np.abs(np.where(np.isneginf(s), 0.0, s))),
                      axis=-1, keepdims=True)
    if pb.sinks is not None:
        sink = np.broadcast_to(pb.sinks, m.shape)
        es = np.exp(sink - shift)
        z = z + es
        weighted = weighted + np.where(np.isneginf(sink), 0.0, es * np.abs(np.where(np.isneginf(sink), 0.0, sink)))
    scale = 1.0 + weighted / np.where(full, 1.0, z)
    scale = np.where(full, 1.0, scale)
    if pb.padded is not None:
        scale = np.where(pb.padded, 1.0, scale)
    return scale[..., 0]
