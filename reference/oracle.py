"""Arbitrary-precision oracle (mpmath, ~40 digits) for sdpa, its gradients, mha, the encodings and RoPE.

For what: the independent yardstick against which tests and `attnconf accuracy` measure the
reference's paths in ulps of natural scale. Written from the spec's formulas with plain loops, on
purpose sharing no code with the reference (only the validation of arguments is skipped: callers
pass valid, small inputs). Results are rounded to float64 once at the end (their error, 2^-130
relative before that rounding, is far below one float64 ulp).
Must not: be used on large inputs (it is ~10^5 times slower than NumPy) or import any framework.

Shapes as in the reference: query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev),
attn_mask broadcastable to (B, H, L, S); mha inputs (B, L, D), (B, S, Dkv); tables (T, d).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np

DPS = 40


def _mp(x):
    # an mpf passes unrounded (mha's projections); anything else is a float64 value
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(float(x))


def _probabilities(q, k, mask, is_causal, alignment, scale, policy, b, h, i, group):
    """The row p[b, h, i, :] as mpf values, or None for a fully-masked row under 'zero'/'nan'."""
    L, S, E = q.shape[2], k.shape[2], q.shape[3]
    kv = h // group
    logits = []
    for j in range(S):
        s = mpmath.fsum(_mp(q[b, h, i, e]) * _mp(k[b, kv, j, e]) for e in range(E)) * scale
        ok = True
        if mask is not None:
            mval = mask[b, h, i, j]
            if mask.dtype == np.bool_:
                ok = bool(mval)
            elif np.isneginf(mval):
                ok = False
            else:
                s += _mp(mval)
        if is_causal:
            shift = 0 if alignment == "top_left" else S - L
            ok = ok and j <= i + shift
        logits.append(s if ok else None)
    live = [s for s in logits if s is not None]
    if not live:
        return None
    m = max(live)
    ex = [mpmath.exp(s - m) if s is not None else mpmath.mpf(0) for s in logits]
    z = mpmath.fsum(ex)
    return [x / z for x in ex]


def _setup(query, key, value, attn_mask, scale):
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (query, key, value))
    B, H, L, E = q.shape
    S = k.shape[2]
    mask = None if attn_mask is None else np.broadcast_to(np.asarray(attn_mask), (B, H, L, S))
    sc = 1 / mpmath.sqrt(E) if scale is None else _mp(scale)
    return q, k, v, mask, sc, H // k.shape[1]


def _finish(x: np.ndarray, as_dd: bool):
    """An object array of mpf as float64, or as the double-double pair (hi, lo) when as_dd."""
    hi = x.astype(np.float64)
    if not as_dd:
        return hi
    with mpmath.workdps(DPS):
        lo = np.array([float(a - mpmath.mpf(float(h))) if mpmath.isfinite(a) else 0.0
                       for a, h in zip(x.ravel(), hi.ravel())]).reshape(hi.shape)
    return hi, lo


def sdpa(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
         scale=None, enable_gqa=False, fully_masked="zero", as_dd=False):
    """sdpa at ~40 digits, rounded to float64 (or as a double-double (hi, lo) when as_dd)."""
    out, _, _, _ = _sdpa_rows(query, key, value, attn_mask, is_causal, causal_alignment, scale,
                              fully_masked)
    return _finish(out, as_dd)


def _sdpa_rows(query, key, value, attn_mask, is_causal, alignment, scale, policy):
    with mpmath.workdps(DPS):
        q, k, v, mask, sc, group = _setup(query, key, value, attn_mask, scale)
        B, H, L, _ = q.shape
        S, Ev = v.shape[2], v.shape[3]
        out = np.empty((B, H, L, Ev), dtype=object)
        probs = np.empty((B, H, L, S), dtype=object)
        for b in range(B):
            for h in range(H):
                for i in range(L):
                    p = _probabilities(q, k, mask, is_causal, alignment, sc, policy, b, h, i, group)
                    if p is None:
                        fill = {"zero": mpmath.mpf(0), "uniform": mpmath.mpf(1) / S,
                                "nan": mpmath.mpf("nan")}[policy]
                        p = [fill] * S
                    probs[b, h, i] = p
                    for c in range(Ev):
                        out[b, h, i, c] = mpmath.fsum(p[j] * _mp(v[b, h // group, j, c]) for j in range(S))
        return out, probs, sc, group


def sdpa_options(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
                 scale=None, enable_gqa=False, window=None, softcap=None, sinks=None, alibi_slopes=None,
                 query_offset=None, key_lengths=None, query_lengths=None, chunk=None, fully_masked="zero",
                 as_dd=False):
    """sdpa with the kernel options of spec/sdpa_options.md at ~40 digits, from its formulas,
    row by row: p_i, c·tanh(s/c), −m·|p_i − j|, the mask, the visible set, the sink's term."""
    with mpmath.workdps(DPS):
        q, k, v, mask, sc, group = _setup(query, key, value, attn_mask, scale)
        B, H, L, _ = q.shape
        S, Ev = v.shape[2], v.shape[3]
        ints = lambda a: None if a is None else [int(x) for x in np.asarray(a)]
        offset, klen, qlen = ints(query_offset), ints(key_lengths), ints(query_lengths)
        out = np.empty((B, H, L, Ev), dtype=object)
        for b in range(B):
            kb = S if klen is None else klen[b]
            lb = L if qlen is None else qlen[b]
            for h in range(H):
                for i in range(L):
                    if offset is not None:
                        pos = offset[b] + i
                    else:
                        pos = i + (kb - lb if causal_alignment == "bottom_right" else 0)
                    terms = []
                    for j in range(S):
                        s = mpmath.fsum(_mp(q[b, h, i, e]) * _mp(k[b, h // group, j, e])
                                        for e in range(q.shape[3])) * sc
                        if softcap is not None:
                            s = _mp(softcap) * mpmath.tanh(s / _mp(softcap))
                        if alibi_slopes is not None:
                            m = np.asarray(alibi_slopes, dtype=np.float64)
                            s -= _mp(m[h] if m.ndim == 1 else m[b, h]) * abs(pos - j)
                        ok = j < kb and (not is_causal or j <= pos)
                        if window is not None:
                            left, right = window
                            ok = ok and (left is None or j - pos >= -left) and (right is None or j - pos <= right)
                        if chunk is not None:   # sdpa.opt.chunk: the same chunk, j <= p_i
                            ok = ok and j // chunk == pos // chunk and j <= pos
                        if mask is not None:
                            mval = mask[b, h, i, j]
                            if mask.dtype == np.bool_:
                                ok = ok and bool(mval)
                            elif np.isneginf(mval):
                                ok = False
                            else:
                                s += _mp(mval)
                        terms.append(s if ok else None)
                    sink = None if sinks is None else float(np.asarray(sinks, dtype=np.float64)[h])
                    live = [s for s in terms if s is not None]
                    if sink is not None and math.isfinite(sink):
                        live.append(_mp(sink))
                    if i >= lb or (not live and fully_masked == "zero"):
                        out[b, h, i] = [mpmath.mpf(0)] * Ev
                        continue
                    if not live:
                        fill = mpmath.mpf(1) / S if fully_masked == "uniform" else mpmath.mpf("nan")
                        p = [fill] * S
                    else:
                        top = max(live)
                        ex = [mpmath.exp(s - top) if s is not None else mpmath.mpf(0) for s in terms]
                        z = mpmath.fsum(ex + ([mpmath.exp(_mp(sink) - top)] if sink is not None
                                              and math.isfinite(sink) else []))
                        p = [x / z for x in ex]
                    for c in range(Ev):
                        out[b, h, i, c] = mpmath.fsum(p[j] * _mp(v[b, h // group, j, c]) for j in range(S))
        return _finish(out, as_dd)


def sdpa_vjp(query, key, value, grad_output, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, fully_masked="zero",
             as_dd=False):
    """(dq, dk, dv) at ~40 digits from the closed-form gradient of softmax attention."""
    with mpmath.workdps(DPS):
        out, probs, sc, group = _sdpa_rows(query, key, value, attn_mask, is_causal,
                                           causal_alignment, scale, fully_masked)
        q, k, v = (np.asarray(a, dtype=np.float64) for a in (query, key, value))
        g = np.asarray(grad_output, dtype=np.float64)
        B, H, L, E = q.shape
        Hkv, S, Ev = k.shape[1], k.shape[2], v.shape[3]
        zero = mpmath.mpf(0)
        dq = np.full(q.shape, zero, dtype=object)
        dk = np.full(k.shape, zero, dtype=object)
        dv = np.full(v.shape, zero, dtype=object)
        for b in range(B):
            for h in range(H):
                kv = h // group
                for i in range(L):
                    p = probs[b, h, i]
                    # A fully-masked row under 'uniform' has constant logits: no dS (see spec).
                    constant = fully_masked == "uniform" and _fully_masked(
                        q, k, attn_mask, is_causal, causal_alignment, b, h, i)
                    dp = [mpmath.fsum(_mp(g[b, h, i, c]) * _mp(v[b, kv, j, c]) for c in range(Ev))
                          for j in range(S)]
                    d = mpmath.fsum(p[j] * dp[j] for j in range(S))
                    for j in range(S):
                        for c in range(Ev):
                            dv[b, kv, j, c] += p[j] * _mp(g[b, h, i, c])
                        ds = zero if constant else p[j] * (dp[j] - d)
                        for e in range(E):
                            dq[b, h, i, e] += sc * ds * _mp(k[b, kv, j, e])
                            dk[b, kv, j, e] += sc * ds * _mp(q[b, h, i, e])
        return _finish(dq, as_dd), _finish(dk, as_dd), _finish(dv, as_dd)


def _fully_masked(q, k, attn_mask, is_causal, alignment, b, h, i):
    L, S = q.shape[2], k.shape[2]
    for j in range(S):
        ok = True
        if attn_mask is not None:
            m = np.broadcast_to(np.asarray(attn_mask), (q.shape[0], q.shape[1], L, S))[b, h, i, j]
            ok = bool(m) if m.dtype == np.bool_ else not np.isneginf(m)
        if is_causal:
            ok = ok and j <= i + (0 if alignment == "top_left" else S - L)
        if ok:
            return False
    return True


def multi_head_attention(query_input, key_value_input, weights, *, num_heads, num_kv_heads=None,
                         attn_mask=None, is_causal=False, as_dd=False):
    """The mha layer at ~40 digits: projections, heads, softmax attention, output projection."""
    with mpmath.workdps(DPS):
        x = np.asarray(query_input, dtype=np.float64)
        xkv = x if key_value_input is None else np.asarray(key_value_input, dtype=np.float64)
        w = {n: np.asarray(a, dtype=np.float64) for n, a in weights.items() if a is not None}
        H = num_heads
        Hkv = num_kv_heads or H
        B, L, D = x.shape
        S = xkv.shape[1]
        E = w["wq"].shape[1] // H
        Ev = w["wv"].shape[1] // Hkv

        def proj(inp, wn, bn):
            W = w[wn]
            rows, cols = inp.shape[1], W.shape[1]
            res = np.empty((inp.shape[0], rows, cols), dtype=object)
            for bb in range(inp.shape[0]):
                for t in range(rows):
                    for c in range(cols):
                        acc = mpmath.fsum(_mp(inp[bb, t, dd]) * _mp(W[dd, c]) for dd in range(W.shape[0]))
                        res[bb, t, c] = acc + (_mp(w[bn][c]) if bn in w else 0)
            return res

        Q, K, V = proj(x, "wq", "bq"), proj(xkv, "wk", "bk"), proj(xkv, "wv", "bv")
        # the heads as sdpa's (B, H, L, E) and (B, Hkv, S, E), unrounded: sdpa's own probabilities
        Qh = Q.reshape(B, L, H, E).transpose(0, 2, 1, 3)
        Kh = K.reshape(B, S, Hkv, E).transpose(0, 2, 1, 3)
        mask = None if attn_mask is None else np.broadcast_to(np.asarray(attn_mask), (B, H, L, S))
        sc, group = 1 / mpmath.sqrt(E), H // Hkv
        merged = np.empty((B, L, H * Ev), dtype=object)
        for b in range(B):
            for h in range(H):
                kv = h // group
                for i in range(L):
                    p = _probabilities(Qh, Kh, mask, is_causal, "top_left", sc, "zero", b, h, i, group)
                    p = [mpmath.mpf(0)] * S if p is None else p     # a fully-masked row: zero
                    for c in range(Ev):
                        merged[b, i, h * Ev + c] = mpmath.fsum(p[j] * V[b, j, kv * Ev + c] for j in range(S))
        out = np.empty((B, L, D), dtype=object)
        wo = w["wo"]
        for b in range(B):
            for i in range(L):
                for c in range(wo.shape[1]):
                    acc = mpmath.fsum(merged[b, i, r] * _mp(wo[r, c]) for r in range(wo.shape[0]))
                    out[b, i, c] = acc + (_mp(w["bo"][c]) if "bo" in w else 0)
        return _finish(out, as_dd)


def sinusoidal_encoding(num_positions, dim, *, base=10000.0, offset=0, layout="interleaved",
                        frequencies="vaswani", positions=None, as_dd=False):
    """The table at ~40 digits (mpmath sin/cos of p·ω with exact p and ω), rounded to float64.

    `positions` (optional list of ints) evaluates arbitrary rows instead of offset … offset+T−1.
    """
    pos = list(range(offset, offset + num_positions)) if positions is None else list(positions)
    with mpmath.workdps(DPS):
        b = mpmath.mpf(base)
        if frequencies == "vaswani":
            omegas = [b ** (-mpmath.mpf(2 * i) / dim) for i in range((dim + 1) // 2)]
            n_cos = dim // 2
        else:
            n = dim // 2
            omegas = [b ** (-mpmath.mpf(i) / max(n - 1, 1)) for i in range(n)]
            n_cos = n
        out = np.full((len(pos), dim), mpmath.mpf(0), dtype=object)
        for t, p in enumerate(pos):
            sins = [mpmath.sin(p * w) for w in omegas]
            coss = [mpmath.cos(p * w) for w in omegas[:n_cos]]
            if layout == "interleaved":
                cols = [None] * dim
                for i, s in enumerate(sins):
                    cols[2 * i] = s
                for i, c in enumerate(coss):
                    cols[2 * i + 1] = c
                cols = [mpmath.mpf(0) if c is None else c for c in cols]
            elif layout == "concat":
                cols = sins + coss
            else:
                cols = coss + sins
            cols = cols + [mpmath.mpf(0)] * (dim - len(cols))
            out[t, :] = cols
        return _finish(out, as_dd)


def _rope_frequencies(r, base, scaling, length):
    """ω_i (i < r/2) and the attention factor m of spec rope.frequencies / rope.scaling.*."""
    b = mpmath.mpf(base)
    w = [b ** (-mpmath.mpf(2 * i) / r) for i in range(r // 2)]
    sc = dict(scaling or {})
    kind = sc.get("rope_type")
    if kind is None:
        return w, mpmath.mpf(1)
    f = mpmath.mpf(sc["factor"])
    if kind == "linear":
        return [v / f for v in w], mpmath.mpf(1)
    l0 = mpmath.mpf(sc["original_max_position_embeddings"])
    if kind == "dynamic":
        if length <= l0:
            return w, mpmath.mpf(1)
        b = b * (f * length / l0 - (f - 1)) ** (mpmath.mpf(r) / (r - 2))
        return [b ** (-mpmath.mpf(2 * i) / r) for i in range(r // 2)], mpmath.mpf(1)
    if kind == "yarn":
        d = [r * mpmath.log(l0 / (2 * mpmath.pi * mpmath.mpf(sc.get(k, v)))) / (2 * mpmath.log(b))
             for k, v in (("beta_fast", 32), ("beta_slow", 1))]
        if sc.get("truncate", True):
            d = [mpmath.floor(d[0]), mpmath.ceil(d[1])]
        lo, hi = max(d[0], 0), min(d[1], r - 1)
        hi = hi + mpmath.mpf("0.001") if lo == hi else hi
        ramp = [min(max((i - lo) / (hi - lo), 0), 1) for i in range(r // 2)]
        m = sc.get("attention_factor")
        m = mpmath.mpf(m) if m is not None else (mpmath.mpf("0.1") * mpmath.log(f) + 1 if f > 1 else mpmath.mpf(1))
        return [v / f * t + v * (1 - t) for v, t in zip(w, ramp)], m
    lf, hf = mpmath.mpf(sc.get("low_freq_factor", 1)), mpmath.mpf(sc.get("high_freq_factor", 4))
    out = []
    for v in w:
        lam = 2 * mpmath.pi / v
        s = (l0 / lam - lf) / (hf - lf)
        out.append(v / f if lam > l0 / lf else v if lam < l0 / hf else (1 - s) * v / f + s * v)
    return out, mpmath.mpf(1)


def rotary_embedding(x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                     layout="interleaved", as_dd=False):
    """RoPE at ~40 digits: every pair rotated by mpmath cos/sin of p·ω_i (exact p and ω_i)."""
    x = np.asarray(x, dtype=np.float64)
    B, H, T, E = x.shape
    pos = np.broadcast_to(np.asarray(positions).reshape(-1, T), (B, T))
    r = E if rotary_dim is None else rotary_dim
    with mpmath.workdps(DPS):
        w, m = _rope_frequencies(r, base, scaling, int(pos.max()) + 1)
        out = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(*x.shape):
            out[idx] = _mp(x[idx])
        for b in range(B):
            for t in range(T):
                p = int(pos[b, t])
                for i, wi in enumerate(w):
                    ia, ib = (2 * i, 2 * i + 1) if layout == "interleaved" else (i, i + r // 2)
                    c, s = mpmath.cos(p * wi), mpmath.sin(p * wi)
                    for h in range(H):
                        xa, xb = _mp(x[b, h, t, ia]), _mp(x[b, h, t, ib])
                        out[b, h, t, ia] = m * (xa * c - xb * s)
                        out[b, h, t, ib] = m * (xb * c + xa * s)
        return _finish(out, as_dd)


def ulp_error(actual, expected, scale) -> float:
    """max |actual − expected| / (scale · 2^-52) (tol.metric at float64); NaN-aware.

    expected: float64 array, or the oracle's (hi, lo) pair to measure against the unrounded value.
    """
    actual = np.asarray(actual, dtype=np.float64)
    lo = 0.0
    if isinstance(expected, tuple):
        expected, lo = expected
    expected = np.asarray(expected, dtype=np.float64)
    both_nan = np.isnan(actual) & np.isnan(expected)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan, 0.0, np.abs((actual - expected) - lo))
    if np.isnan(diff).any():
        return math.inf
    denom = np.asarray(scale, dtype=np.float64) * 2.0 ** -52
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diff == 0, 0.0, diff / denom)
    return float(np.max(r)) if r.size else 0.0
