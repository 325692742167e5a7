"""Gradients of scaled dot-product attention (clause sdpa.grad): the reference vector-Jacobian product.

For what: (dq, dk, dv) = the gradients of <sdpa(q, k, v), grad_output> with respect to q, k, v,
in the same three flavours as sdpa (default float64, exact=True golden grade, same-precision
baseline). Must not: import any framework; differentiate through the mask, scale or causal flag
(they are constants).

Math (per b, h; P the attention probabilities, dO = grad_output, G = H / Hkv):

    dV_j  = Σ_i P_ij dO_i                       (summed over the G query heads of a kv head)
    dP_ij = dO_i · v_j,   D_i = Σ_j P_ij dP_ij  (= dO_i · o_i)
    dS_ij = P_ij (dP_ij − D_i)
    dQ_i  = scale · Σ_j dS_ij k_j
    dK_j  = scale · Σ_i dS_ij q_i               (summed over the group)

Fully-masked rows (sdpa.fully_masked): "zero" → P row 0, no gradient; "uniform" → P = 1/S feeds
dV only (the logits are constants there, so dS = 0); "nan" → NaN propagates.
Shapes: query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev), grad_output (B, H, L, Ev);
dq like query, dk like key, dv like value.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from attnconf.reference import precise
from attnconf.reference.sdpa import (Arith, Problem, _use_blocked, check_options,
                                     forward_exact_ld, forward_plain, prepare, query_kv)
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
    d = np.sum(p * dp, axis=-1, keepdims=True)
    ds = p * (dp - d)
    if policy == "uniform" and full.any():
        ds = np.where(full, xp_zero, ds)  # constant logits on such rows: no gradient to q, k
    return ds


def vjp_plain(pb: Problem, g, ar: Arith):
    """(dq, dk, dv) by the straightforward algorithm in ar's precision (compute dtype)."""
    c = ar.compute
    q, k, v = ar.input(pb.q), ar.input(pb.k), ar.input(pb.v)
    g = ar.input(g)
    _, p, full = forward_plain(pb, ar, q, k, v)
    p = ar.round(p)
    dv = ar.matmul(np.swapaxes(p, -1, -2), g)
    dp = ar.matmul(g, np.swapaxes(v, -1, -2))
    ds = ar.round(_dS(p, dp, full, pb.fully_masked, c.type(0)))
    sc = c.type(pb.scale)
    dq = ar.round(np.matmul(ds, k) * sc)
    dk = ar.round(np.matmul(np.swapaxes(ds, -1, -2), q) * sc)
    return dq, _group_sum(dk, pb.group), _group_sum(dv, pb.group)


def vjp_exact(pb: Problem, g):
    """(dq, dk, dv) in float64, <= 1 ulp of natural scale: dd products, long-double sums."""
    _, p, full = forward_exact_ld(pb)
    g = np.asarray(g, dtype=np.float64)
    dv = precise.ld_matmul(np.swapaxes(p, -1, -2), g.astype(np.longdouble))
    dph, dpl = precise.dd_matmul(g, np.swapaxes(pb.v, -1, -2))
    dp = precise.to_ld(dph, dpl)
    ds = _dS(p, dp, full, pb.fully_masked, np.longdouble(0))
    sc = precise.to_ld(*pb.scale_dd)
    dq = precise.ld_matmul(ds, pb.k) * sc
    dk = precise.ld_matmul(np.swapaxes(ds, -1, -2), pb.q) * sc
    return (dq.astype(np.float64), _group_sum(dk, pb.group).astype(np.float64),
            _group_sum(dv, pb.group).astype(np.float64))


def sdpa_vjp(query, key, value, grad_output, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, fully_masked="zero",
             exact=False, precision=None):
    """(dq, dk, dv): gradients of <sdpa(query, key, value, …), grad_output> (clause sdpa.grad).

    Same options as sdpa. grad_output (B, H, L, Ev). Returns float64 arrays for precision
    None/"float64" (exact=True: <= 1 ulp of natural scale), else arrays of the named dtype.
    """
    check_options(precision=precision, exact=exact, fully_masked=fully_masked,
                  causal_alignment=causal_alignment)
    from attnconf.reference import blocked  # SPEED HOOK: large inputs (see sdpa._use_blocked)
    if _use_blocked(*blocked.logit_shape(query, key), exact, precision):
        return blocked.sdpa_vjp(query, key, value, grad_output, attn_mask=attn_mask,
                                is_causal=is_causal, causal_alignment=causal_alignment,
                                scale=scale, enable_gqa=enable_gqa, fully_masked=fully_masked)
    pb = prepare(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                 causal_alignment=causal_alignment, scale=scale, enable_gqa=enable_gqa,
                 fully_masked=fully_masked)
    g = _check_grad(pb, grad_output)
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
    scale of dS_ij is w_ij = p_ij (a_ij + A_i); then
      dq: |scale| · Σ_j w_ij |k_j|,  dk: |scale| · Σ_i w_ij |q_i|,  dv: Σ_i p_ij |dO_i|
    (dk, dv summed over the query heads of a group). Fully-masked rows use uniform p.
    """
    _, p, _ = forward_plain(dataclasses.replace(pb, fully_masked="uniform"), Arith(None))
    ag = np.abs(np.asarray(g, dtype=np.float64))
    a = np.matmul(ag, np.abs(np.swapaxes(pb.v, -1, -2)))
    w = p * (a + np.sum(p * a, axis=-1, keepdims=True))
    sc = abs(pb.scale)
    dq = sc * np.matmul(w, np.abs(pb.k))
    dk = sc * np.matmul(np.swapaxes(w, -1, -2), np.abs(pb.q))
    dv = np.matmul(np.swapaxes(p, -1, -2), ag)
    return {"dq": dq, "dk": _group_sum(dk, pb.group), "dv": _group_sum(dv, pb.group)}
