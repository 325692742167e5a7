"""Gradients of scaled dot-product attention (clauses sdpa.grad, sdpa.opt.grad): the reference
vector-Jacobian product, with the kernel options of spec/sdpa.md (window, softcap, sinks, ALiBi,
decode offsets, ragged lengths).

For what: (dq, dk, dv) = the gradients of <sdpa(q, k, v), grad_output> with respect to q, k, v,
and dsinks (H,) with respect to the sinks when they are given,
in the same three flavours as sdpa (default float64, exact=True golden grade, same-precision
baseline). Must not: import any framework; differentiate through the mask, scale or causal flag
(they are constants).

Math (per b, h; P the attention probabilities, dO = grad_output, G = H / Hkv):

    dV_j  = Σ_i P_ij dO_i                       (summed over the G query heads of a kv head)
    dP_ij = dO_i · v_j,   D_i = Σ_j P_ij dP_ij  (= dO_i · o_i)
    dS_ij = P_ij (dP_ij − D_i)
    dQ_i  = scale · Σ_j dS_ij k_j
    dK_j  = scale · Σ_i dS_ij q_i               (summed over the group)

With the options (sdpa.opt.grad): a soft-cap multiplies dS_ij by its slope 1 − tanh²(x_ij / c)
(x = scale·q·kᵀ, before the cap) ahead of dQ and dK; a sink h with weight
w_i = exp(sink_h) / (Σ_j exp(s_ij) + exp(sink_h)) gives dsinks_h = −Σ_{b,i} w_i D_i (it has no
value row, so D sums the keys only); hidden keys (window, causal, key lengths) have P = 0 and get
no gradient; padded query rows (query_lengths) give none; ALiBi slopes, offsets and lengths are
constants.

Fully-masked rows (sdpa.fully_masked): "zero" → P row 0, no gradient; "uniform" → P = 1/S feeds
dV only (the logits are constants there, so dS = 0); "nan" → NaN propagates.
Shapes: query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev), grad_output (B, H, L, Ev);
dq like query, dk like key, dv like value, dsinks like sinks (H,).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from attnconf.reference import precise
from attnconf.reference.sdpa import (Arith, Problem, _use_blocked, check_options, forward_plain,
                                     logits_dd, prepare, probabilities_ld, query_kv)
from attnconf.validation import check_array, fail


def _check_grad(pb: Problem, grad_output) -> np.ndarray:
    g = check_array("grad_output", grad_output, ndim=4, legend="(B, H, L, Ev)")
    want = pb.q.shape[:3] + (pb.v.shape[3],)
    if g.shape != want:
        fail("grad_output shape (B, H, L, Ev)", str(want), str(g.shape))
    return g


def _group_sum(x: np.ndarray, group: int) -> np.ndarray:
    """Sum the G query heads of each kv head: (B, H, …) -> (B, Hkv, …) (sdpa.gqa, sdpa.grad)."""
    if group == 1:
        return x
    b, h = x.shape[:2]
    return x.reshape((b, h // group, group) + x.shape[2:]).sum(axis=2)


def _dS(p, dp, full, policy, xp_zero):
    """(dS, D): dS = P ⊙ (dP − D), D_i = Σ_j P_ij dP_ij (the sink's own weight has no value row,
    so D sums the keys only, sdpa.opt.grad)."""
    d = np.sum(p * dp, axis=-1, keepdims=True)
    ds = p * (dp - d)
    if policy == "uniform" and full.any():
        ds = np.where(full, xp_zero, ds)  # constant logits on such rows: no gradient to q, k
    return ds, d


def _plain_logits(pb: Problem, ar: Arith, q, k):
    """(raw, s): raw = scale·q·kᵀ and the full logits s the softmax sees, as forward_plain forms
    them (sdpa.logits, sdpa.opt.softcap, sdpa.opt.alibi, sdpa.mask.float, the visible set)."""
    c = ar.compute
    raw = ar.round(np.matmul(q, np.swapaxes(k, -1, -2)) * c.type(pb.scale))
    s = raw
    if pb.softcap is not None:
        cap = c.type(pb.softcap)
        s = ar.round(cap * np.tanh(raw / cap))
    if pb.bias is not None:
        s = s + pb.bias.astype(c)
    if pb.additive is not None:
        s = s + ar.input(pb.additive)
    if pb.allowed is not None:
        s = np.where(pb.allowed, s, c.type(-np.inf))
    return raw, s


def _sink_weight_plain(pb: Problem, ar: Arith, s):
    """The sink's softmax weight exp(sink − m) / z per row (B, H, L, 1) (sdpa.opt.sinks)."""
    c = ar.compute
    sink = ar.input(pb.sinks)
    m = np.maximum(np.max(s, axis=-1, keepdims=True), sink)
    shift = np.where(np.isneginf(m), c.type(0), m)
    e_sink = np.exp(sink - shift)
    z = np.sum(np.exp(s - shift), axis=-1, keepdims=True) + e_sink
    w = e_sink / np.where(z == 0, c.type(1), z)
    if pb.padded is not None:  # sdpa.opt.query_lengths: a padded row's output is the constant 0
        w = np.where(pb.padded, c.type(0), w)
    return w


def _dsinks(w, d):
    """dsinks_h = −Σ_{b,i} w_bhi · D_bhi (sdpa.opt.grad): raising a sink moves weight off the keys."""
    return -np.sum(w * d, axis=(0, 2, 3))


def vjp_plain(pb: Problem, g, ar: Arith):
    """(dq, dk, dv[, dsinks]) by the straightforward algorithm in ar's precision (compute dtype)."""
    c = ar.compute
    q, k, v = ar.input(pb.q), ar.input(pb.k), ar.input(pb.v)
    g = ar.input(g)
    _, p, full = forward_plain(pb, ar, q, k, v)
    p = ar.round(p)
    dv = ar.matmul(np.swapaxes(p, -1, -2), g)
    dp = ar.matmul(g, np.swapaxes(v, -1, -2))
    ds, d = _dS(p, dp, full, pb.fully_masked, c.type(0))
    ds = ar.round(ds)
    raw, s = (None, None) if pb.softcap is None and pb.sinks is None else _plain_logits(pb, ar, q, k)
    if pb.softcap is not None:  # sdpa.opt.grad: d(c·tanh(x/c))/dx = 1 − tanh²(x/c)
        t = np.tanh(raw / c.type(pb.softcap))
        ds = ar.round(ds * (c.type(1) - t * t))
    sc = c.type(pb.scale)
    dq = ar.round(np.matmul(ds, k) * sc)
    dk = ar.round(np.matmul(np.swapaxes(ds, -1, -2), q) * sc)
    grads = (dq, _group_sum(dk, pb.group), _group_sum(dv, pb.group))
    if pb.sinks is not None:
        grads += (_dsinks(_sink_weight_plain(pb, ar, s), d),)
    return grads


def _sink_weight_ld(pb: Problem, sh, sl):
    """The sink's weight 1 / (1 + Σ_j exp(s_j − sink)) in long double (B, H, L, 1): no
    cancellation however small it is; 0 for a −∞ sink and for padded rows."""
    sink = np.broadcast_to(pb.sinks, sh.shape[:3] + (1,))
    with np.errstate(invalid="ignore", over="ignore"):
        t, te = precise.two_sum(sh, -np.broadcast_to(sink, sh.shape))   # exact: t + te = sh − sink
        te = np.where(np.isfinite(t), te + sl, 0.0)
        e = np.exp(t.astype(np.longdouble)) * np.exp(te.astype(np.longdouble))
    if pb.allowed is not None:
        e = np.where(pb.allowed, e, np.longdouble(0))
    w = np.longdouble(1) / (np.longdouble(1) + np.sum(e, axis=-1, keepdims=True))
    hidden = np.isneginf(sink)
    if pb.padded is not None:
        hidden = hidden | pb.padded
    return np.where(hidden, np.longdouble(0), w)


def _cap_slope_ld(pb: Problem):
    """1 − tanh²(x/c) = 1 / cosh²(x/c) of the raw logits x = scale·q·kᵀ, in long double (no
    cancellation near saturation) (sdpa.opt.grad)."""
    rh, rl = logits_dd(dataclasses.replace(pb, softcap=None, bias=None, additive=None))
    x = (rh.astype(np.longdouble) + rl.astype(np.longdouble)) / np.longdouble(pb.softcap)
    with np.errstate(over="ignore"):
        ch = np.cosh(x)
    return np.longdouble(1) / (ch * ch)


def vjp_exact(pb: Problem, g):
    """(dq, dk, dv[, dsinks]) in float64, <= 1 ulp of natural scale: dd products, long-double sums."""
    sh, sl = logits_dd(pb)
    p, full = probabilities_ld(pb, sh, sl)
    g = np.asarray(g, dtype=np.float64)
    dv = precise.ld_matmul(np.swapaxes(p, -1, -2), g.astype(np.longdouble))
    dph, dpl = precise.dd_matmul(g, np.swapaxes(pb.v, -1, -2))
    dp = precise.to_ld(dph, dpl)
    ds, d = _dS(p, dp, full, pb.fully_masked, np.longdouble(0))
    if pb.softcap is not None:
        ds = ds * _cap_slope_ld(pb)
    sc = precise.to_ld(*pb.scale_dd)
    dq = precise.ld_matmul(ds, pb.k) * sc
    dk = precise.ld_matmul(np.swapaxes(ds, -1, -2), pb.q) * sc
    grads = (dq.astype(np.float64), _group_sum(dk, pb.group).astype(np.float64),
             _group_sum(dv, pb.group).astype(np.float64))
    if pb.sinks is not None:
        grads += (_dsinks(_sink_weight_ld(pb, sh, sl), d).astype(np.float64),)
    return grads


def sdpa_vjp(query, key, value, grad_output, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, window=None, softcap=None,
             sinks=None, alibi_slopes=None, query_offset=None, key_lengths=None, query_lengths=None,
             fully_masked="zero", exact=False, precision=None):
    """(dq, dk, dv), plus dsinks when sinks are given: gradients of
    <sdpa(query, key, value, …), grad_output> (clauses sdpa.grad, sdpa.opt.grad).

    Same options as sdpa, the kernel options (window, softcap, sinks, alibi_slopes, query_offset,
    key_lengths, query_lengths) included. grad_output (B, H, L, Ev); dsinks (H,). Returns float64
    arrays for precision None/"float64" (exact=True: <= 1 ulp of natural scale), else arrays of
    the named dtype. Option cases stay on this unblocked path (the blocked one knows none).
    """
    check_options(precision=precision, exact=exact, fully_masked=fully_masked,
                  causal_alignment=causal_alignment)
    options = {k: v for k, v in dict(window=window, softcap=softcap, sinks=sinks, alibi_slopes=alibi_slopes,
                                     query_offset=query_offset, key_lengths=key_lengths,
                                     query_lengths=query_lengths).items() if v is not None}
    from attnconf.reference import blocked  # SPEED HOOK: large inputs (see sdpa._use_blocked)
    if not options and _use_blocked(*blocked.logit_shape(query, key), exact, precision):
        return blocked.sdpa_vjp(query, key, value, grad_output, attn_mask=attn_mask,
                                is_causal=is_causal, causal_alignment=causal_alignment,
                                scale=scale, enable_gqa=enable_gqa, fully_masked=fully_masked)
    pb = prepare(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                 causal_alignment=causal_alignment, scale=scale, enable_gqa=enable_gqa,
                 fully_masked=fully_masked, **options)
    g = _check_grad(pb, grad_output)
    if exact and not precise.HAVE_LONGDOUBLE and options:
        fail("exact=True with the sdpa kernel options", "run where NumPy has an 80-bit long double",
             "a platform without one", NotImplementedError)
    if exact and not precise.HAVE_LONGDOUBLE:  # no 80-bit long double: the mpmath oracle (slow)
        from attnconf.reference import oracle
        return oracle.sdpa_vjp(pb.q, query_kv(pb.k, pb.group), query_kv(pb.v, pb.group), g,
                               attn_mask=attn_mask, is_causal=is_causal,
                               causal_alignment=causal_alignment, scale=scale,
                               fully_masked=fully_masked)
    if exact:
        return vjp_exact(pb, g)
    ar = Arith(precision)
    return tuple(ar.output(x) for x in vjp_plain(pb, g, ar))


def natural_scales(pb: Problem, g) -> dict[str, np.ndarray]:
    """Natural scale of each gradient element (tol.metric, spec/accuracy.md).

    With a_ij = Σ_c |dO_ic||v_jc| (the scale of dP_ij) and A_i = Σ_j p_ij a_ij (of D_i), the
    scale of dS_ij is w_ij = p_ij (a_ij + A_i) (times the soft-cap slope 1 − tanh², sdpa.opt.grad);
    then
      dq: |scale| · Σ_j w_ij |k_j|,  dk: |scale| · Σ_i w_ij |q_i|,  dv: Σ_i p_ij |dO_i|,
      dsinks_h: Σ_{b,i} w_sink · A_i  (w_sink the sink's weight)
    (dk, dv summed over the query heads of a group). Fully-masked rows use uniform p.
    """
    ar = Arith(None)
    _, p, _ = forward_plain(dataclasses.replace(pb, fully_masked="uniform"), ar)
    ag = np.abs(np.asarray(g, dtype=np.float64))
    a = np.matmul(ag, np.abs(np.swapaxes(pb.v, -1, -2)))
    big_a = np.sum(p * a, axis=-1, keepdims=True)
    w = p * (a + big_a)
    if pb.softcap is not None or pb.sinks is not None:
        raw, s = _plain_logits(pb, ar, pb.q, pb.k)
    if pb.softcap is not None:
        w = w * (1.0 - np.tanh(raw / pb.softcap) ** 2)
    sc = abs(pb.scale)
    dq = sc * np.matmul(w, np.abs(pb.k))
    dk = sc * np.matmul(np.swapaxes(w, -1, -2), np.abs(pb.q))
    dv = np.matmul(np.swapaxes(p, -1, -2), ag)
    scales = {"dq": dq, "dk": _group_sum(dk, pb.group), "dv": _group_sum(dv, pb.group)}
    if pb.sinks is not None:
        scales["dsinks"] = -_dsinks(_sink_weight_plain(pb, ar, s), big_a)
    return scales
