"""Invariants of scaled dot-product attention (spec/invariants.md inv.*): its properties, their
example strategies and fixed examples, and its determinism probe. Named by the sdpa registry entry
(attnconf/operations/sdpa.py `invariants=`); run by the core, attnconf.conformance.checks.invariants."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, DeterminismProbe, Invariant, Violation, _needs, assert_close, inv_ulps
from attnconf.dtypes import EPS


# ---------------------------------------------------------------------------------------------
# Calling the adapter
# ---------------------------------------------------------------------------------------------
def call_sdpa(ctx: Context, q, k, v, *, mask=None, **options) -> np.ndarray:
    ad = ctx.adapter
    native = [ad.from_numpy(a, ctx.dtype) for a in (q, k, v)]
    m = None if mask is None else ad.mask_from_numpy(mask, ctx.dtype)
    out = np.asarray(ad.to_numpy(ad.sdpa(*native, attn_mask=m, **options)))
    want = q.shape[:-1] + (v.shape[-1],)
    if out.shape != want:
        raise Violation(f"sdpa output should have shape {want}, but got {out.shape}")
    return out.astype(np.float64)


def value_scale(v: np.ndarray, h: int) -> np.ndarray:
    """max_j |v[b, g(h), j, c]| as (B, H, 1, Ev): a bound of every output's natural scale."""
    m = np.abs(v).max(axis=-2, keepdims=True)
    return np.repeat(m, h // v.shape[1], axis=1)


def _mask_kind(ctx: Context, prefer="bool"):
    kinds = ctx.caps.mask_kinds
    return prefer if prefer in kinds else (kinds[0] if kinds else None)


def _as_kind(mask_bool: np.ndarray, kind: str):
    return mask_bool if kind == "bool" else np.where(mask_bool, 0.0, -np.inf)


def _gqa_opts(q, k) -> dict:
    return {"enable_gqa": True} if q.shape[1] != k.shape[1] else {}


# ---------------------------------------------------------------------------------------------
# SDPA properties
# ---------------------------------------------------------------------------------------------
def _hull(ctx, q, k, v, allowed, out, what):
    """out[b,h,i,c] within [min, max] of v[b,g(h),j,c] over allowed j (rows with any allowed)."""
    h = q.shape[1]
    vv = np.repeat(v, h // v.shape[1], axis=1)[:, :, None, :, :]          # (B,H,1,S,Ev)
    al = np.broadcast_to(allowed, q.shape[:2] + (q.shape[2], k.shape[2]))[..., None]
    hi = np.where(al, vv, -np.inf).max(axis=3)
    lo = np.where(al, vv, np.inf).min(axis=3)
    live = al.any(axis=3)
    tol = inv_ulps("sdpa", ctx.dtype) * EPS[ctx.dtype] * value_scale(v, h)
    with np.errstate(invalid="ignore"):
        excess = np.where(live, np.maximum(out - hi, lo - out), -np.inf)
    bad = ~(excess <= tol)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Violation(f"{what}: output {float(out[idx])!r} at {idx} lies outside [{float(lo[idx])!r}, {float(hi[idx])!r}] "
                        f"(min/max of the attended values) by more than {tol[idx[:2] + (0, idx[3])]:.3g}")


def prop_convex_hull(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    kind = _mask_kind(ctx)
    allowed = gen.row_mask(rng, (q.shape[0], 1, q.shape[2], k.shape[2])) if kind else np.ones((1, 1, 1, 1), bool)
    out = call_sdpa(ctx, q, k, v, mask=_as_kind(allowed, kind) if kind else None, **_gqa_opts(q, k))
    _hull(ctx, q, k, v, allowed, out, "output outside the convex hull of attended values")


def prop_query_permutation(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    perm = rng.permutation(q.shape[2])
    kind = _mask_kind(ctx)
    m = gen.row_mask(rng, (q.shape[0], 1, q.shape[2], k.shape[2])) if kind else None
    base = call_sdpa(ctx, q, k, v, mask=None if m is None else _as_kind(m, kind), **_gqa_opts(q, k))
    permuted = call_sdpa(ctx, q[:, :, perm], k, v, mask=None if m is None else _as_kind(m[:, :, perm], kind),
                         **_gqa_opts(q, k))
    assert_close(permuted, base[:, :, perm], value_scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype),
                 ctx.dtype, f"permuting queries by {perm.tolist()} did not permute the output rows")


def prop_key_permutation(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    perm = rng.permutation(k.shape[2])
    kind = _mask_kind(ctx)
    m = gen.row_mask(rng, (q.shape[0], 1, q.shape[2], k.shape[2])) if kind else None
    base = call_sdpa(ctx, q, k, v, mask=None if m is None else _as_kind(m, kind), **_gqa_opts(q, k))
    permuted = call_sdpa(ctx, q, k[:, :, perm], v[:, :, perm],
                         mask=None if m is None else _as_kind(m[..., perm], kind), **_gqa_opts(q, k))
    assert_close(permuted, base, value_scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                 f"permuting keys and values jointly by {perm.tolist()} changed the output")


def prop_causal_prefix(ctx, ex):
    for alignment in ctx.caps.causal_alignments:
        _causal_prefix(ctx, ex, alignment)


def _causal_prefix(ctx, ex, alignment):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    l, s = q.shape[2], k.shape[2]
    cut = int(rng.integers(1, s)) if s > 1 else 1      # keys >= cut change
    k2, v2 = k.copy(), v.copy()
    k2[:, :, cut:] = gen.round_to(rng.uniform(-1, 1, k2[:, :, cut:].shape), ctx.dtype)
    v2[:, :, cut:] = gen.round_to(rng.uniform(-3, 3, v2[:, :, cut:].shape), ctx.dtype)
    last_visible = np.arange(l) + (0 if alignment == "top_left" else s - l)
    rows = last_visible < cut                           # rows that cannot see any changed key
    opts = dict(is_causal=True, causal_alignment=alignment, **_gqa_opts(q, k))
    a = call_sdpa(ctx, q, k, v, **opts)
    b = call_sdpa(ctx, q, k2, v2, **opts)
    scale = np.maximum(value_scale(v, q.shape[1]), value_scale(v2, q.shape[1]))
    assert_close(b[:, :, rows], a[:, :, rows], scale, inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                 f"causal ({alignment}, L={l}, S={s}): changing keys/values {cut}…{s - 1} changed "
                 f"output rows {np.flatnonzero(rows).tolist()}, which must not see them")


def prop_masked_keys(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    kind = _mask_kind(ctx)
    keep = gen.row_mask(rng, (q.shape[0], 1, 1, k.shape[2]), p_keep=0.5)   # key padding mask
    gone = ~keep[:, 0, 0, :]                                               # (B, S)
    k2, v2 = k.copy(), v.copy()
    big = gen.round_to(rng.uniform(-1, 1, k.shape) * 64, ctx.dtype)        # large logits if leaked
    k2 = np.where(gone[:, None, :, None], big, k2)
    v2 = np.where(gone[:, None, :, None], gen.round_to(rng.uniform(-8, 8, v.shape), ctx.dtype), v2)
    a = call_sdpa(ctx, q, k, v, mask=_as_kind(keep, kind), **_gqa_opts(q, k))
    b = call_sdpa(ctx, q, k2, v2, mask=_as_kind(keep, kind), **_gqa_opts(q, k))
    assert_close(b, a, value_scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                 f"changing masked-out keys/values (mask kind {kind}, masked keys per batch "
                 f"{[np.flatnonzero(g).tolist() for g in gone]}) changed the output")


def prop_mask_equivalence(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    l, s = q.shape[2], k.shape[2]
    scale = value_scale(v, q.shape[1])
    tol = inv_ulps("sdpa", ctx.dtype)
    if {"bool", "float"} <= set(ctx.caps.mask_kinds):
        m = gen.row_mask(rng, (q.shape[0], 1, l, s))
        a = call_sdpa(ctx, q, k, v, mask=m, **_gqa_opts(q, k))
        b = call_sdpa(ctx, q, k, v, mask=np.where(m, 0.0, -np.inf), **_gqa_opts(q, k))
        assert_close(b, a, scale, tol, ctx.dtype, "a float 0/-inf mask and the equal bool mask disagree")
    for alignment in ctx.caps.causal_alignments:
        shift = 0 if alignment == "top_left" else s - l
        tri = np.arange(s)[None, :] <= np.arange(l)[:, None] + shift
        kind = _mask_kind(ctx)
        a = call_sdpa(ctx, q, k, v, is_causal=True, causal_alignment=alignment, **_gqa_opts(q, k))
        b = call_sdpa(ctx, q, k, v, mask=_as_kind(tri[None, None], kind), **_gqa_opts(q, k))
        assert_close(b, a, scale, tol, ctx.dtype,
                     f"is_causal ({alignment}) and the explicit {kind} causal mask disagree")
        if ctx.caps.mask_and_causal:
            m = gen.row_mask(rng, (q.shape[0], 1, l, s)) | ~tri        # every row keeps a visible key
            m[..., 0] |= tri[:, 0]
            c = call_sdpa(ctx, q, k, v, mask=_as_kind(m, kind), is_causal=True, causal_alignment=alignment,
                          **_gqa_opts(q, k))
            d = call_sdpa(ctx, q, k, v, mask=_as_kind(m & tri, kind), **_gqa_opts(q, k))
            assert_close(c, d, scale, tol, ctx.dtype, f"attn_mask with is_causal ({alignment}) differs from "
                         "the intersection of the mask with the causal mask")


def prop_batch_independence(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    full = call_sdpa(ctx, q, k, v, **_gqa_opts(q, k))
    scale, tol = value_scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype)
    for b in range(q.shape[0]):
        one = call_sdpa(ctx, q[b:b + 1], k[b:b + 1], v[b:b + 1], **_gqa_opts(q, k))
        assert_close(one, full[b:b + 1], scale[b:b + 1], tol, ctx.dtype,
                     f"batch element {b} computed alone differs from the batched result")
    g = q.shape[1] // k.shape[1]
    for h in range(q.shape[1]):
        one = call_sdpa(ctx, q[:, h:h + 1], k[:, h // g:h // g + 1], v[:, h // g:h // g + 1])
        assert_close(one, full[:, h:h + 1], scale[:, h:h + 1], tol, ctx.dtype,
                     f"query head {h} computed alone (with kv head {h // g}) differs from the all-heads result")


def prop_gqa_repeat(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    g = q.shape[1] // k.shape[1]
    a = call_sdpa(ctx, q, k, v, enable_gqa=True)
    b = call_sdpa(ctx, q, np.repeat(k, g, axis=1), np.repeat(v, g, axis=1))
    assert_close(a, b, value_scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                 f"GQA (H={q.shape[1]}, Hkv={k.shape[1]}) differs from explicitly repeat_interleaved K/V")


def prop_value_linearity(ctx, ex):
    q, k, v1 = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    v2 = gen.round_to(rng.uniform(-1, 1, v1.shape), ctx.dtype)
    a, b = (float(x) for x in rng.choice([-2.0, -0.5, 0.5, 1.0, 2.0], 2))   # powers of 2: exact
    vc = gen.round_to(a * v1 + b * v2, ctx.dtype)
    h = q.shape[1]
    o1, o2, oc = (call_sdpa(ctx, q, k, x, **_gqa_opts(q, k)) for x in (v1, v2, vc))
    scale = abs(a) * value_scale(v1, h) + abs(b) * value_scale(v2, h) + value_scale(vc, h)
    assert_close(oc, a * o1 + b * o2, scale, inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                 f"sdpa(q, k, {a:g}·v1 + {b:g}·v2) differs from {a:g}·sdpa(q, k, v1) + {b:g}·sdpa(q, k, v2)")


def prop_scale_homogeneity(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    scale, tol = value_scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype)
    e = q.shape[-1]
    a = call_sdpa(ctx, q, k, v, **_gqa_opts(q, k))
    b = call_sdpa(ctx, q, k, v, scale=1.0 / np.sqrt(e), **_gqa_opts(q, k))
    assert_close(a, b, scale, tol, ctx.dtype, f"default scale differs from explicit scale=1/sqrt(E={e})")
    c = float(rng.choice([0.5, 2.0, 4.0]))
    s = float(rng.uniform(0.2, 2.0))
    a = call_sdpa(ctx, q * c, k, v, scale=s, **_gqa_opts(q, k))
    b = call_sdpa(ctx, q, k, v, scale=c * s, **_gqa_opts(q, k))
    assert_close(a, b, scale, tol, ctx.dtype, f"sdpa({c:g}·q, k, v, scale={s:.6g}) differs from "
                 f"sdpa(q, k, v, scale={c * s:.6g})")


def prop_finite(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    rng = np.random.default_rng(ex["seed"] + 1)
    logits = np.einsum("bhle,bhse->bhls", q, np.repeat(k, q.shape[1] // k.shape[1], axis=1)) / np.sqrt(q.shape[-1])
    peak = float(np.abs(logits).max())
    target = float(rng.choice([1e2, 1e3, 1e4]))
    if peak > 0:
        q = gen.round_to(q * (target / peak), ctx.dtype)
    # One fully-masked query row when the adapter takes masks and claims a finite policy
    # (zero or uniform): its output must be finite too (sdpa.fully_masked, sdpa.range).
    allowed, mask, note = np.ones((1, 1, 1, 1), bool), None, ""
    kind = _mask_kind(ctx)
    if kind and ctx.caps.fully_masked != "nan":
        allowed = gen.row_mask(rng, (q.shape[0], 1, q.shape[2], k.shape[2]))
        dead = int(rng.integers(0, q.shape[2]))
        allowed[:, :, dead, :] = False
        mask, note = _as_kind(allowed, kind), f" and query row {dead} fully masked ({kind} mask)"
    out = call_sdpa(ctx, q, k, v, mask=mask, **_gqa_opts(q, k))
    if not np.isfinite(out).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise Violation(f"non-finite output {float(out[idx])!r} at {idx} for finite inputs with logits up to "
                        f"±{target:g}{note}")
    _hull(ctx, q, k, v, allowed, out, f"with logits up to ±{target:g}, output")


def _needs_causal(caps, dtype):
    return "" if caps.causal_alignments else "needs is_causal support"


def _needs_one_mask(caps, dtype):
    return "" if caps.mask_kinds else "needs attn_mask support"


def _sdpa_strategy(**kw):
    def strategy(caps, dtype):
        args = dict(kw)
        gqa = args.pop("gqa", None)
        args.setdefault("ev_differs", caps.value_dim_differs)
        # Generic properties keep H == Hkv: a GQA fault must fail inv.gqa_repeat, not everything.
        return gen.sdpa_examples(gqa=bool(gqa), **args)
    return strategy


def _sdpa_edges(*, min_b=1, min_l=1, min_s=1, gqa=False, extra=()):
    """Invariant.explicit for an sdpa invariant: fixed examples run first on every adapter, so
    that the records of documented framework bugs never depend on what the draws reach:
    one batch element and one kv head with L = 1, S = 2, E = 1 (two of L, S, E equal to 1: XLA
    on CPU rejects that bfloat16 dot, jax.json; with gqa a group of 2 on one kv head, the MQA
    shape Keras's einsum rejects, tensorflow.json); the invariant's minimum sizes are kept.
    extra: further examples of that invariant (see INVARIANTS)."""
    edge = {"B": max(1, min_b), "Hkv": 1, "G": 2 if gqa else 1, "L": max(1, min_l), "S": max(2, min_s),
            "E": 1, "Ev": 0, "seed": 0}
    # and one square example (L = S, one group per kv head unless gqa): a kernel that takes only
    # L = S, or has no GQA, is judged on every invariant even when no draw fits it
    n = max(4, min_l, min_s)
    square = {"B": max(1, min_b), "Hkv": 2, "G": 2 if gqa else 1, "L": n, "S": n, "E": 4, "Ev": 0, "seed": 3}
    return lambda caps: (edge, square) + tuple(extra)


# E = 3: a softmax scale 1/sqrt(3) that float32 cannot hold (Keras rounds it to its floatx,
# tensorflow.json inv.scale_homogeneity float64); powers of two are exact and pass.
_ODD_HEAD_DIM = {"B": 1, "Hkv": 1, "G": 1, "L": 2, "S": 3, "E": 3, "Ev": 0, "seed": 0}


# A dominant key at logits up to 100 puts the output at the edge of the hull, where a float32
# softmax's weight sum (JAX for float64 inputs, jax.json inv.finite float64) shows (measured).
_NEAR_HULL_EDGE = {"B": 2, "Hkv": 2, "G": 1, "L": 6, "S": 9, "E": 4, "Ev": 0, "seed": 10}


def _determinism_sdpa(ctx: Context, seed: int):
    # L = S: a square-only kernel is judged on determinism too
    ex = {"B": 2, "Hkv": 2, "G": 1, "L": 32, "S": 32, "E": 8, "Ev": 0, "seed": seed}
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    return lambda: call_sdpa(ctx, q, k, v)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.convex_hull", "sdpa", _sdpa_strategy(), prop_convex_hull, explicit=_sdpa_edges()),
    Invariant("inv.query_permutation", "sdpa", _sdpa_strategy(), prop_query_permutation, explicit=_sdpa_edges()),
    Invariant("inv.key_permutation", "sdpa", _sdpa_strategy(min_s=2), prop_key_permutation,
              explicit=_sdpa_edges(min_s=2)),
    Invariant("inv.causal_prefix", "sdpa", _sdpa_strategy(min_s=2, min_l=2), prop_causal_prefix, _needs_causal,
              explicit=_sdpa_edges(min_s=2, min_l=2)),
    Invariant("inv.masked_keys", "sdpa", _sdpa_strategy(min_s=2), prop_masked_keys, _needs_one_mask,
              explicit=_sdpa_edges(min_s=2)),
    Invariant("inv.mask_equivalence", "sdpa", _sdpa_strategy(), prop_mask_equivalence, _needs_one_mask,
              explicit=_sdpa_edges()),
    Invariant("inv.batch_independence", "sdpa", _sdpa_strategy(min_b=2), prop_batch_independence,
              explicit=_sdpa_edges(min_b=2)),
    Invariant("inv.gqa_repeat", "sdpa", _sdpa_strategy(gqa=True), prop_gqa_repeat,
              _needs("gqa", "needs GQA (enable_gqa) support"), explicit=_sdpa_edges(gqa=True)),
    Invariant("inv.value_linearity", "sdpa", _sdpa_strategy(), prop_value_linearity, explicit=_sdpa_edges()),
    Invariant("inv.scale_homogeneity", "sdpa", _sdpa_strategy(), prop_scale_homogeneity,
              _needs("explicit_scale", "needs an explicit scale argument"),
              explicit=_sdpa_edges(extra=(_ODD_HEAD_DIM,))),
    Invariant("inv.finite", "sdpa", _sdpa_strategy(), prop_finite, explicit=_sdpa_edges(extra=(_NEAR_HULL_EDGE,))),
)

DETERMINISM = DeterminismProbe("sdpa", _determinism_sdpa)
