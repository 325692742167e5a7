"""Invariants of packed variable-length attention (spec/invariants.md inv.varlen.*): packed equals
padded with lengths, each sequence equals itself alone, packed equals a block-diagonal mask,
padding is never read, logits below a finite sentinel take part. Named by the sdpa_varlen registry
entry (`invariants=`); run by the core, attnconf.conformance.checks.invariants.

Each property compares results of the implementation with each other (never with the reference),
each result allowed inv_ulps(sdpa_varlen, dtype) of the natural-scale bound max|v| (outputs) and
of max(1, |lse|) (LSEs), as the sdpa invariants. The alignments drawn are the adapter's
`varlen_alignments` (default both; () draws no causal case), GQA only where Capabilities.gqa, key
lengths equal to the query lengths where the adapter sets `varlen_self_attention`; the padded and block-diagonal forms run only where the
adapter's sdpa takes what they need (key/query lengths; boolean masks).
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps

ALIGNMENTS = ("bottom_right", "top_left")
POISONS = (np.nan, np.inf, -np.inf, 1e30)


def alignments(adapter) -> tuple:
    return tuple(getattr(adapter, "varlen_alignments", ALIGNMENTS))


def call(ctx: Context, q, k, v, cq, ck, **kw):
    """(output, lse) of adapter.sdpa_varlen as float64, shapes checked."""
    ad = ctx.adapter
    if q.shape[1] != k.shape[1]:
        kw["enable_gqa"] = True
    lq, lk = np.diff(cq), np.diff(ck)
    res = ad.sdpa_varlen(*(ad.from_numpy(a, ctx.dtype) for a in (q, k, v)),
                         ad.index_from_numpy(np.asarray(cq, np.int32)), ad.index_from_numpy(np.asarray(ck, np.int32)),
                         int(max(lq.max(), 1)), int(max(lk.max(), 1)), **kw)
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        raise Violation(f"sdpa_varlen should return (output, lse), but got {type(res).__name__}")
    out = np.asarray(ad.to_numpy(res[0])).astype(np.float64)
    want = (q.shape[0], q.shape[1], v.shape[-1])
    # no LSE (an optional output): compared as all −∞, i.e. only the outputs are compared
    lse = np.full(want[:2], -np.inf) if res[1] is None else np.asarray(ad.to_numpy(res[1])).astype(np.float64)
    if out.shape != want or lse.shape != want[:2]:
        raise Violation(f"sdpa_varlen outputs should have shapes {want} and {want[:2]}, but got {out.shape} and {lse.shape}")
    return out, lse


def _examples(caps, dtype, aligns=ALIGNMENTS):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "B": st.integers(1, 4), "Hkv": st.integers(1, 2), "G": st.integers(1, 2), "E": st.integers(1, 4),
        "seed": gen.SEEDS, "causal": st.booleans(), "align": st.sampled_from(aligns),
        "pad_q": st.integers(0, 2), "pad_k": st.integers(0, 2)})


def _strategy(caps, dtype):
    return _examples(caps, dtype)


def _arrays(ex, dtype, *, min_len=0, gqa=True, self_attention=False):
    """(q, k, v, cu_seqlens_q, cu_seqlens_k, lengths_q, lengths_k) for the example."""
    rng = np.random.default_rng(ex["seed"])
    b = ex["B"]
    lq = rng.integers(min_len, 6, b)
    lk = rng.integers(min_len, 7, b)
    if lq.sum() == 0:
        lq[0] = 1
    if self_attention:      # one segment vector for queries and keys (varlen_self_attention)
        lk = lq.copy()
    h, hkv, e = ex["Hkv"] * (ex["G"] if gqa else 1), ex["Hkv"], ex["E"]
    tq, tk = int(lq.sum()) + ex["pad_q"], int(lk.sum()) + ex["pad_k"]
    q = gen.round_to(rng.uniform(-1, 1, (tq, h, e)), dtype)
    k = gen.round_to(rng.uniform(-1, 1, (tk, hkv, e)), dtype)
    v = gen.round_to(rng.uniform(-1, 1, (tk, hkv, e)), dtype)
    cq = np.concatenate([[0], np.cumsum(lq)]).astype(np.int32)
    ck = np.concatenate([[0], np.cumsum(lk)]).astype(np.int32)
    return q, k, v, cq, ck, lq, lk


def _self(ctx) -> bool:
    """Whether the adapter packs self-attention only (cu_seqlens_k = cu_seqlens_q): its draws too."""
    return bool(getattr(ctx.adapter, "varlen_self_attention", False))


def _kw(ctx, ex):
    """The example's causal options, its alignment replaced by one the adapter takes (a draw the
    adapter cannot run would skip the whole invariant)."""
    aligns = alignments(ctx.adapter)
    if not aligns:           # no causal rule at all (varlen_alignments = ()): non-causal draws only
        return dict(is_causal=False)
    align = ex["align"] if ex["align"] in aligns else aligns[0]
    return dict(is_causal=bool(ex["causal"]), causal_alignment=align)


def _vscale(v, h):
    return np.abs(v).max() if v.size else 1.0


def _compare(ctx, a, b, v, h, what, rows=None):
    """Outputs within inv_ulps of max|v|, LSEs within inv_ulps of max(1, |lse|); `rows` selects."""
    ulps = inv_ulps("sdpa_varlen", ctx.dtype)
    (oa, la), (ob, lb) = a, b
    if rows is not None:
        oa, la, ob, lb = oa[rows], la[rows], ob[rows], lb[rows]
    assert_close(oa, ob, _vscale(v, h), ulps, ctx.dtype, f"{what} (output)")
    lse_scale = np.maximum(np.where(np.isfinite(lb), np.abs(lb), 0.0), 1.0)
    same = la == lb                  # equal infinities (−∞: no visible key) match, as NaN matches NaN
    assert_close(np.where(same, 0.0, la), np.where(same, 0.0, lb), lse_scale, ulps, ctx.dtype, f"{what} (lse)")


# --- inv.varlen.padded ---------------------------------------------------------------------------
def _requires_lengths(caps, dtype):
    missing = [o for o in ("key_lengths", "query_lengths") if o not in caps.sdpa_options]
    return f"needs the sdpa option(s) {', '.join(missing)} (Capabilities.sdpa_options)" if missing else ""


def _padded_call(ctx, q, k, v, cq, ck, lq, lk, kw):
    """sdpa of the padded form (B, H, max L_b, E) with query_lengths / key_lengths; back to packed rows."""
    ad = ctx.adapter
    b, lmax, smax = lq.size, max(int(lq.max()), 1), max(int(lk.max()), 1)
    qp = np.zeros((b, q.shape[1], lmax, q.shape[2]))
    kp = np.zeros((b, k.shape[1], smax, k.shape[2]))
    vp = np.zeros((b, v.shape[1], smax, v.shape[2]))
    for i in range(b):
        qp[i, :, :lq[i]] = q[cq[i]:cq[i + 1]].transpose(1, 0, 2)
        kp[i, :, :lk[i]] = k[ck[i]:ck[i + 1]].transpose(1, 0, 2)
        vp[i, :, :lk[i]] = v[ck[i]:ck[i + 1]].transpose(1, 0, 2)
    opts = dict(kw, key_lengths=ad.index_from_numpy(lk.astype(np.int64)),
                query_lengths=ad.index_from_numpy(lq.astype(np.int64)))
    if q.shape[1] != k.shape[1]:
        opts["enable_gqa"] = True
    out = np.asarray(ad.to_numpy(ad.sdpa(*(ad.from_numpy(a, ctx.dtype) for a in (qp, kp, vp)), **opts)), np.float64)
    packed = np.zeros((q.shape[0], q.shape[1], v.shape[2]))
    for i in range(b):
        packed[cq[i]:cq[i + 1]] = out[i, :, :lq[i]].transpose(1, 0, 2)
    return packed


def prop_padded(ctx, ex):
    q, k, v, cq, ck, lq, lk = _arrays(ex, ctx.dtype, gqa=ctx.caps.gqa, self_attention=_self(ctx))
    kw = _kw(ctx, ex)
    out, _ = call(ctx, q, k, v, cq, ck, **kw)
    padded = _padded_call(ctx, q, k, v, cq, ck, lq, lk, kw)
    # rows without a visible key follow the fully-masked policy of each path: compared only where
    # the sequence has keys (an empty sequence's rows are the profile's and the goldens' business)
    live = np.repeat(lk > 0, lq)
    live = np.concatenate([live, np.zeros(q.shape[0] - live.size, bool)])
    assert_close(out[live], padded[live], _vscale(v, q.shape[1]), inv_ulps("sdpa_varlen", ctx.dtype), ctx.dtype,
                 f"packed {lq.tolist()}/{lk.tolist()} differs from sdpa padded with query_lengths/key_lengths ({kw})")


# --- inv.varlen.alone ----------------------------------------------------------------------------
def prop_alone(ctx, ex):
    q, k, v, cq, ck, lq, lk = _arrays(ex, ctx.dtype, gqa=ctx.caps.gqa, self_attention=_self(ctx))
    kw = _kw(ctx, ex)
    both = call(ctx, q, k, v, cq, ck, **kw)
    # bitwise where the adapter declares its packed kernel batch invariant (`batch_invariant`);
    # a sequence alone runs on other shapes, whose last bits a correct kernel may round otherwise
    bitwise = bool(getattr(ctx.adapter, "batch_invariant", False))
    for i in range(lq.size):
        if lq[i] == 0:
            continue
        alone = call(ctx, q[cq[i]:cq[i + 1]], k[ck[i]:ck[i + 1]], v[ck[i]:ck[i + 1]],
                     np.array([0, lq[i]]), np.array([0, lk[i]]), **kw)
        part = (both[0][cq[i]:cq[i + 1]], both[1][cq[i]:cq[i + 1]])
        what = f"sequence {i} ({lq[i]} queries, {lk[i]} keys) of {lq.tolist()}/{lk.tolist()} differs from itself alone ({kw})"
        if bitwise:
            for name, a, b in (("output", part[0], alone[0]), ("lse", part[1], alone[1])):
                if not np.array_equal(a, b, equal_nan=True):
                    idx = tuple(int(j) for j in np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b))))[0])
                    raise Violation(f"{what}: {name} not bitwise equal (the adapter declares batch_invariant); "
                                    f"first at {idx}: {a[idx]!r} vs {b[idx]!r}")
        else:
            _compare(ctx, part, alone, v, q.shape[1], what)


# --- inv.varlen.block_diagonal -------------------------------------------------------------------
def _requires_bool_mask(caps, dtype):
    return "" if "bool" in caps.mask_kinds else "needs boolean masks (Capabilities.mask_kinds)"


def block_diagonal(cq, ck, tq, tk, is_causal, align):
    """(total_q, total_k) bool: query rows of sequence b see its key rows (and its causal rule)."""
    allowed = np.zeros((tq, tk), bool)
    for b in range(cq.size - 1):
        lb, sb = int(cq[b + 1] - cq[b]), int(ck[b + 1] - ck[b])
        block = np.ones((lb, sb), bool)
        if is_causal:
            shift = sb - lb if align == "bottom_right" else 0
            block = np.arange(sb)[None, :] <= np.arange(lb)[:, None] + shift
        allowed[cq[b]:cq[b + 1], ck[b]:ck[b + 1]] = block
    return allowed


def prop_block_diagonal(ctx, ex):
    q, k, v, cq, ck, lq, lk = _arrays(ex, ctx.dtype, min_len=1, gqa=ctx.caps.gqa, self_attention=_self(ctx))
    kw = _kw(ctx, ex)
    out, _ = call(ctx, q, k, v, cq, ck, **kw)
    ad = ctx.adapter
    mask = block_diagonal(cq, ck, q.shape[0], k.shape[0], kw["is_causal"], kw.get("causal_alignment", "top_left"))
    q4, k4, v4 = (a.transpose(1, 0, 2)[None] for a in (q, k, v))
    opts = {"enable_gqa": True} if q.shape[1] != k.shape[1] else {}
    ref = ad.sdpa(*(ad.from_numpy(a, ctx.dtype) for a in (q4, k4, v4)),
                  attn_mask=ad.mask_from_numpy(mask[None, None], ctx.dtype), **opts)
    ref = np.asarray(ad.to_numpy(ref), np.float64)[0].transpose(1, 0, 2)
    live = mask.any(axis=-1)
    assert_close(out[live], ref[live], _vscale(v, q.shape[1]), inv_ulps("sdpa_varlen", ctx.dtype), ctx.dtype,
                 f"packed {lq.tolist()}/{lk.tolist()} differs from sdpa under the block-diagonal mask ({kw})")


# --- inv.varlen.poison ---------------------------------------------------------------------------
def prop_poison(ctx, ex):
    ex = dict(ex, pad_q=max(ex["pad_q"], 1), pad_k=max(ex["pad_k"], 1))
    q, k, v, cq, ck, lq, lk = _arrays(ex, ctx.dtype, gqa=ctx.caps.gqa, self_attention=_self(ctx))
    kw = _kw(ctx, ex)
    clean = call(ctx, q, k, v, cq, ck, **kw)
    poison = POISONS[ex["seed"] % len(POISONS)]
    if poison == 1e30 and ctx.dtype in ("float16",):
        poison = np.inf      # 1e30 is +inf in float16 anyway
    qp, kp, vp = q.copy(), k.copy(), v.copy()
    qp[cq[-1]:], kp[ck[-1]:], vp[ck[-1]:] = poison, poison, poison
    dirty = call(ctx, qp, kp, vp, cq, ck, **kw)
    for name, a, b in (("output", dirty[0], clean[0]), ("lse", dirty[1], clean[1])):
        if not np.array_equal(a, b, equal_nan=True):
            bad = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b))))
            idx = tuple(int(j) for j in bad[0])
            raise Violation(f"{poison!r} in the padding after cu_seqlens_q[B] = {int(cq[-1])} and cu_seqlens_k[B] = "
                            f"{int(ck[-1])} changed the {name} at {len(bad)} places; first at {idx}: "
                            f"{a[idx]!r} vs {b[idx]!r} ({lq.tolist()}/{lk.tolist()}, {kw})")


# --- inv.varlen.sentinel -------------------------------------------------------------------------
SENTINEL_SHIFT = -6.0e4


def prop_sentinel(ctx, ex):
    q, k, v, cq, ck, lq, lk = _arrays(ex, ctx.dtype, min_len=1, gqa=ctx.caps.gqa, self_attention=_self(ctx))
    if lq.size < 2:       # needs a neighbour to leak from
        return
    target = ex["seed"] % lq.size
    rng = np.random.default_rng(ex["seed"] + 1)
    # values: the target sequence's in [1, 2], the others' in [−2, −1]
    mine = np.zeros(k.shape[0], bool)
    mine[ck[target]:ck[target + 1]] = True
    v = gen.round_to(np.where(mine[:, None, None], rng.uniform(1, 2, v.shape), rng.uniform(-2, -1, v.shape)), ctx.dtype)
    # one extra channel: q 1 everywhere, k −6e4 on the target's keys: its logits all shift by −6e4
    q = np.concatenate([q, np.ones(q.shape[:2] + (1,))], axis=-1)
    k = np.concatenate([k, np.where(mine[:, None, None], SENTINEL_SHIFT, 0.0) * np.ones(k.shape[:2] + (1,))], axis=-1)
    v = np.concatenate([v, v[..., :1]], axis=-1)   # Ev = E + 1 too, for adapters that need Ev = E
    kw = _kw(ctx, ex)
    out, _ = call(ctx, q, k, v, cq, ck, scale=1.0, **kw)
    rows = out[cq[target]:cq[target + 1]]
    # rows that see a key of their own are convex combinations of values in [1, 2]
    live = block_diagonal(cq, ck, q.shape[0], k.shape[0], kw["is_causal"], kw.get("causal_alignment", "top_left"))
    live = live[cq[target]:cq[target + 1]].any(axis=-1)
    slack = 0.05 if ctx.dtype in ("float16", "bfloat16") else 1e-3   # rounding of values near 1, not a leak (O(1))
    low = rows[live]
    if low.size and not np.all(low >= 1.0 - slack):
        raise Violation(f"with every logit of sequence {target} shifted by {SENTINEL_SHIFT:g} (real logits below a "
                        f"−5e4 sentinel), its output left its own values' range [1, 2]: min {float(np.nanmin(low))!r} "
                        f"({lq.tolist()}/{lk.tolist()}, {kw}): keys of other sequences took part")


def _edges(caps):
    """Three sequences (seed 14: lengths [0, 4, 3] and [2, 0, 4], both kinds of empty), GQA, causal, padding: fixed, first."""
    return ({"B": 3, "Hkv": 1, "G": 2, "E": 2, "seed": 14, "causal": True, "align": "bottom_right",
             "pad_q": 1, "pad_k": 2},)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.varlen.padded", "sdpa_varlen", _strategy, prop_padded, requires=_requires_lengths,
              explicit=_edges),
    Invariant("inv.varlen.alone", "sdpa_varlen", _strategy, prop_alone, explicit=_edges),
    Invariant("inv.varlen.block_diagonal", "sdpa_varlen", _strategy, prop_block_diagonal, requires=_requires_bool_mask),
    Invariant("inv.varlen.poison", "sdpa_varlen", _strategy, prop_poison, explicit=_edges),
    Invariant("inv.varlen.sentinel", "sdpa_varlen", _strategy, prop_sentinel),
)
