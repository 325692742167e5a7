"""Property-based invariant checks of spec/invariants.md (clauses inv.*), run through an adapter.

`check(adapter, dtype, seed=0)` returns one results record per invariant (check="invariant",
status pass / fail / error / skip). Each property is run by hypothesis with a fixed seed, no
example database and a fixed number of examples (EXAMPLES x the invariant's factor, fewer where
a framework compiles per shape: draws_for), never a time budget, so the same command gives the
same records on any machine under any load. Examples where documented framework bugs show are
fixed ones (Invariant.explicit), run first whatever the count. A failing example is shrunk
(within a call budget) and the record's message prints the shrunk example and a repro command
(conformance/repro.py) that draws the same examples again.

Tolerances (why the numbers are what they are). An invariant compares two results computed by
the *same* implementation, each of which the default level allows to be
`max(k * baseline, floor)` ulps of natural scale from the exact value (tolerance.TABLE). So the
difference of two results may reach twice that: we use

    INV_ULPS(op, dtype) = 2 * max(k * INV_BASELINE_ULPS, floor)       (TABLE's k and floor)

with INV_BASELINE_ULPS = 4, the largest same-precision baseline error measured on the small
shapes drawn here (`attnconf calibrate` re-measures: the control and every bundled adapter pass).
The natural scale of an attention output column is bounded by max_j |v[j, c]| (weights sum to
1), and that bound is what we use, so no reference call is needed. The structural bugs the
invariants are for (order, masking, head grouping, layout) give errors of order 1, i.e. 1e2 ulp
even at bfloat16; small numeric bugs (a 1e-5 scale error) are the agreement checks' job.
Encodings: an element at position p may err by F ulps of 1 plus the angle error
A * p * ω * eps_angle (eps_angle = float32's for tables below float64: the spec lets them compute
p·ω in float32); F = 4, A = 8 cover rounding of ω, of p·ω and of sin/cos (measured).
Rotary embeddings (inv.rope.*): each compared result may err, per element, by
    (max(k * INV_BASELINE_ULPS, floor) + arg_ulps * |θ|) ulps of the pair's norm (times m)
with k, floor, arg_ulps from TABLE[rotary_embedding, dtype] and θ = p·base^(−2i/r) the channel's
unscaled angle (a bound of every rule's), and a comparison allows twice the sum over its results:
inv_ulps plus the row's angle term, since a correct kernel's error grows with the angle as the
agreement rule admits. Measured: numpy-reference and the zoo's control <= 0.14 of it (2 x 100
draws per invariant and dtype); the zoo's RoPE bugs are O(1) or 2^8 ulp and more.

Must not import any framework; must not compute golden values (properties compare an
implementation with itself, or with NumPy float64 arithmetic on its own outputs).
Shape legend: B batch, H query heads, Hkv kv heads, L queries, S keys, E head dim, Ev value dim,
D model dim.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from attnconf.conformance import repro as repro_cmd
from attnconf.conformance import strategies as gen
from attnconf.conformance.record import Record
from attnconf.dtypes import EPS, numpy_dtype
from attnconf.errors import Unsupported, declined_message, declined_reason
from attnconf.reference.rope import pairs as rope_pairs   # the spec's pairing (rope.layout.*), indices only

INV_BASELINE_ULPS = 4.0
ENC_FLOOR_ULPS = 4.0
ENC_ANGLE_FACTOR = 8.0
SHRINK_BUDGET = 40          # adapter calls spent shrinking a failure (keeps failing runs fast)
# Random draws per invariant and adapter-dtype, times the invariant's factor (`attnconf run`'s
# default, and check's): a fixed number, so verdicts never depend on how fast the machine is.
EXAMPLES = 6
# Frameworks that compile a kernel for every new shape and dtype (XLA: 0.1-0.5 s per shape on
# CPU, most of a run's time) draw at most this many, also a fixed number; the explicit examples
# (documented framework bugs, edge shapes) run on every adapter whatever its count.
PER_SHAPE_COMPILING = {"jax": 2}
_TINY = {"float64": 2.0 ** -1022, "float32": 2.0 ** -126, "float16": 2.0 ** -14, "bfloat16": 2.0 ** -126}


class Violation(AssertionError):
    """An invariant does not hold; the message says by how much and where."""


@dataclasses.dataclass(frozen=True)
class Invariant:
    clause: str
    operation: str
    strategy: Callable          # (caps, dtype) -> hypothesis strategy
    prop: Callable              # (ctx, example) -> None, raises Violation
    requires: Callable = lambda caps, dtype: ""     # reason it cannot run here, "" if it can
    factor: int = 1             # examples = factor * max_examples (cheap encoding properties get more)
    explicit: Callable = lambda caps: ()            # examples always tried first, before random draws
    metrics: Callable | None = None                 # (inv, dtype) -> the tolerance metrics of its records (None: _table_metrics)


@dataclasses.dataclass
class Context:
    adapter: object
    dtype: str

    @property
    def caps(self):
        return self.adapter.capabilities


# ---------------------------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------------------------
def inv_ulps(operation: str, dtype: str) -> float:
    """Allowed difference between two results of one implementation, in ulps of natural scale."""
    from attnconf.conformance.tolerance import rule_for

    rule = rule_for(operation, dtype)
    return 2.0 * max(rule.k * INV_BASELINE_ULPS, rule.floor_ulps)


def angle_eps(dtype: str) -> float:
    return EPS["float64"] if dtype == "float64" else EPS["float32"]


def enc_delta(positions, omegas, dtype: str) -> np.ndarray:
    """Per-element allowance |PE_computed - PE_exact| at (position, frequency), see docstring."""
    p = np.abs(np.asarray(positions, np.float64))[:, None]
    return ENC_FLOOR_ULPS * EPS[dtype] + ENC_ANGLE_FACTOR * p * np.asarray(omegas)[None, :] * angle_eps(dtype)


def assert_close(actual, expected, scale, ulps: float, dtype: str, what: str) -> None:
    """|actual - expected| <= ulps * eps * scale elementwise; NaN matches NaN only."""
    a = np.asarray(actual, np.float64)
    x = np.asarray(expected, np.float64)
    if a.shape != x.shape:
        raise Violation(f"{what}: shapes differ, {a.shape} vs {x.shape}")
    limit = ulps * EPS[dtype] * np.maximum(np.abs(np.broadcast_to(scale, x.shape)), _TINY[dtype])
    _assert_within(a, x, limit, what, f"{ulps:g} ulp of natural scale at {dtype}")


def _assert_within(a, x, limit, what: str, rule: str) -> None:
    both_nan = np.isnan(a) & np.isnan(x)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan, 0.0, np.abs(a - x))
    bad = ~(diff <= limit)
    if bad.any():
        ratio = np.where(np.isnan(diff), np.inf, diff / np.maximum(limit, 1e-300))
        idx = np.unravel_index(int(np.argmax(np.where(bad, ratio, -1))), a.shape)
        raise Violation(f"{what}: {int(bad.sum())} of {a.size} elements differ; worst at "
                        f"{tuple(int(i) for i in idx)}: {float(a[idx])!r} vs {float(x[idx])!r} "
                        f"(|Δ| {diff[idx]:.3g} > {np.broadcast_to(limit, a.shape)[idx]:.3g} = {rule})")


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


def call_encoding(ctx: Context, n, dim, **options) -> np.ndarray:
    ad = ctx.adapter
    out = np.asarray(ad.to_numpy(ad.sinusoidal_encoding(n, dim, dtype=ctx.dtype, **options)))
    if out.shape != (n, dim):
        raise Violation(f"encoding table should have shape {(n, dim)}, but got {out.shape}")
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


# ---------------------------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------------------------
def _sdpa64(q, k, v):
    """Canonical float64 attention without masks (fallback when the adapter has no sdpa)."""
    logits = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ v


def prop_mha_decomposition(ctx, ex):
    x, kv, w = gen.mha_arrays(ex, ctx.dtype)
    h, e, ev = ex["H"], ex["E"], ex["Ev"]
    ad, dt = ctx.adapter, ctx.dtype
    out = ad.multi_head_attention(ad.from_numpy(x, dt), ad.from_numpy(kv, dt),
                                  {n: ad.from_numpy(a, dt) for n, a in w.items()}, num_heads=h)
    out = np.asarray(ad.to_numpy(out), np.float64)
    if out.shape != x.shape:
        raise Violation(f"multi_head_attention output should have shape {x.shape}, but got {out.shape}")

    def split(y, width):   # (B, T, H·width) -> (B, H, T, width), head h owns a column block
        return y.reshape(y.shape[0], y.shape[1], h, width).transpose(0, 2, 1, 3)

    proj = {n: kv @ w["w" + n] + w.get("b" + n, 0.0) for n in ("k", "v")}
    proj["q"] = x @ w["wq"] + w.get("bq", 0.0)
    q, k, v = (gen.round_to(split(proj[n], width), dt) for n, width in (("q", e), ("k", e), ("v", ev)))
    if "sdpa" in ctx.caps.operations:
        heads = call_sdpa(ctx, q, k, v)
    else:
        heads = _sdpa64(q, k, v)
    merged = heads.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], h * ev)
    expected = merged @ w["wo"] + w.get("bo", 0.0)
    v_scale = np.abs(kv) @ np.abs(w["wv"]) + np.abs(w.get("bv", 0.0))      # natural scale of v-proj
    scale = v_scale.max(axis=1, keepdims=True) @ np.abs(w["wo"]) + np.abs(w.get("bo", 0.0))
    assert_close(out, expected, scale, inv_ulps("multi_head_attention", dt), dt,
                 "multi_head_attention differs from projections + per-head sdpa + merge + output projection")


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------
def encoding_pairs(dim: int, layout: str, frequencies: str):
    """(sin columns, cos columns) of the frequencies present with both functions, in order."""
    n_pairs = dim // 2
    n_sin = (dim + 1) // 2 if frequencies == "vaswani" else n_pairs
    i = np.arange(n_pairs)
    if layout == "interleaved":
        return 2 * i, 2 * i + 1
    if layout == "concat":
        return i, n_sin + i
    return n_pairs + i, i                                   # cos_first: [cos | sin]


def omegas64(dim: int, base: float, frequencies: str) -> np.ndarray:
    """ω_i of the paired frequencies, float64 (spec enc.frequencies.*)."""
    n = dim // 2
    i = np.arange(n, dtype=np.float64)
    if frequencies == "vaswani":
        return np.power(float(base), -2.0 * i / dim)
    return np.exp(-i * np.log(float(base)) / max(n - 1, 1))


def column_omegas(dim: int, base: float, layout: str, frequencies: str) -> np.ndarray:
    """(dim,) the frequency each column's angle uses (0 for the t2t zero column)."""
    out = np.zeros(dim)
    s, c = encoding_pairs(dim, layout, frequencies)
    w = omegas64(dim, base, frequencies)
    out[s], out[c] = w, w
    if frequencies == "vaswani" and dim % 2:        # the unpaired last sin frequency
        lone = {"interleaved": dim - 1, "concat": dim // 2, "cos_first": dim - 1}[layout]
        out[lone] = float(base) ** (-2.0 * (dim // 2) / dim)
    return out


def _enc_opts(ex):
    return dict(base=ex["base"], offset=ex["offset"], layout=ex["layout"], frequencies=ex["frequencies"])


def each_variant(prop):
    """Run an encoding property for every (layout, frequencies) the adapter claims.

    Hypothesis samples categorical choices unevenly at a handful of examples, and a variant bug
    (cos_first ignored) must not depend on luck; encoding calls are cheap.
    """
    def run(ctx, ex):
        for layout in ctx.caps.encoding_layouts:
            for freq in ctx.caps.encoding_frequencies:
                prop(ctx, dict(ex, layout=layout, frequencies=freq))
    run.__name__ = prop.__name__
    return run


def prop_enc_bounds(ctx, ex):
    pe = call_encoding(ctx, ex["n"], ex["dim"], **_enc_opts(ex))
    bad = ~(np.abs(pe) <= 1.0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Violation(f"entry {float(pe[idx])!r} at {idx} lies outside [-1, 1]")
    if ex["frequencies"] == "t2t" and ex["dim"] % 2 and np.any(pe[:, -1] != 0):
        raise Violation(f"odd d={ex['dim']} (t2t): the last column should be exactly 0, but got "
                        f"{pe[np.flatnonzero(pe[:, -1])[0], -1]!r}")


def prop_enc_pythagorean(ctx, ex):
    pe = call_encoding(ctx, ex["n"], ex["dim"], **_enc_opts(ex))
    s, c = encoding_pairs(ex["dim"], ex["layout"], ex["frequencies"])
    if not len(s):
        return
    total = pe[:, s] ** 2 + pe[:, c] ** 2
    _assert_within(total, np.ones_like(total), 4 * ENC_FLOOR_ULPS * EPS[ctx.dtype],
                   f"sin²+cos² of the {ex['layout']} column pairs (sin {s.tolist()}, cos {c.tolist()}) is not 1",
                   f"{4 * ENC_FLOOR_ULPS:g} ulp of 1 at {ctx.dtype}")


def prop_enc_rotation(ctx, ex):
    n, dim = ex["n"], ex["dim"]
    pe = call_encoding(ctx, n, dim, **_enc_opts(ex))
    s, c = encoding_pairs(dim, ex["layout"], ex["frequencies"])
    if not len(s):
        return
    k = ex["k"] % (n - 1) + 1
    w = omegas64(dim, ex["base"], ex["frequencies"])
    pos = ex["offset"] + np.arange(n)
    rs, rc = np.sin(k * w), np.cos(k * w)
    sin_p, cos_p = pe[:-k][:, s], pe[:-k][:, c]
    want_s = sin_p * rc + cos_p * rs
    want_c = cos_p * rc - sin_p * rs
    limit = enc_delta(pos[:-k], w, ctx.dtype) + enc_delta(pos[k:], w, ctx.dtype)
    what = (f"PE(p+{k}) != R({k}·ω)·PE(p) for the {ex['layout']}/{ex['frequencies']} pairs "
            f"(positions from {ex['offset']}); the frequencies or pairing differ from the claimed variant")
    _assert_within(pe[k:][:, s], want_s, limit, what + " [sin]", "4 ulp + 8·p·ω·eps_angle per element, twice")
    _assert_within(pe[k:][:, c], want_c, limit, what + " [cos]", "4 ulp + 8·p·ω·eps_angle per element, twice")


def prop_enc_relative(ctx, ex):
    n, dim = ex["n"], ex["dim"]
    pe = call_encoding(ctx, n, dim, **_enc_opts(ex))
    s, c = encoding_pairs(dim, ex["layout"], ex["frequencies"])
    if not len(s) or n < 2:
        return
    cols = np.concatenate([s, c])
    m = ex["m"] % (n - 1) + 1
    rng = np.random.default_rng(ex["seed"])
    t1, t2 = rng.integers(0, n - m, 2)
    dots = [pe[a, cols] @ pe[b, cols] for a, b in ((t1, t2), (t1 + m, t2 + m))]
    w = omegas64(dim, ex["base"], ex["frequencies"])
    pos = ex["offset"] + np.array([t1, t2, t1 + m, t2 + m])
    limit = 2 * enc_delta(pos, w, ctx.dtype).sum() + 2 * len(cols) * EPS[ctx.dtype]
    _assert_within(np.array([dots[1]]), np.array([dots[0]]), limit,
                   f"PE(p)·PE(q) changed when p={ex['offset'] + t1}, q={ex['offset'] + t2} were both shifted by {m}",
                   "the per-element encoding allowance summed over pairs")


def prop_enc_offset_shift(ctx, ex):
    n, dim, o = ex["n"], ex["dim"], ex["offset"]
    if o == 0:
        return
    d = min(o, ex["m"]) if ex["seed"] % 2 else o if o <= 64 else ex["m"]   # d == o reaches offset 0
    opts = _enc_opts(ex)
    a = call_encoding(ctx, n, dim, **opts)
    b = call_encoding(ctx, n + d, dim, **dict(opts, offset=o - d))[d:]
    w = column_omegas(dim, ex["base"], ex["layout"], ex["frequencies"])
    limit = 2 * enc_delta(o + np.arange(n), w, ctx.dtype)
    _assert_within(a, b, limit, f"rows of the table with offset={o} differ from rows {d}… of the table "
                   f"with offset={o - d}", "twice the per-element encoding allowance")


# ---------------------------------------------------------------------------------------------
# Rotary embeddings (spec rope.*): each property compares results of the implementation with
# each other, or with float64 NumPy arithmetic on its own outputs (a rotation by k·ω)
# ---------------------------------------------------------------------------------------------
def call_rope(ctx: Context, x, positions, **options) -> np.ndarray:
    ad = ctx.adapter
    out = ad.rotary_embedding(ad.from_numpy(x, ctx.dtype), ad.index_from_numpy(positions), **options)
    out = np.asarray(ad.to_numpy(out))
    if out.shape != x.shape:
        raise Violation(f"rotary_embedding output should have x's shape {x.shape}, but got {out.shape}")
    return out.astype(np.float64)


def rope_gain(scaling) -> float:
    """The YaRN attention factor m (rope.scaling.yarn), 1 for every other rule."""
    if not scaling or scaling["rope_type"] != "yarn":
        return 1.0
    given, f = scaling.get("attention_factor"), float(scaling["factor"])
    return float(given) if given is not None else (1.0 if f <= 1 else 0.1 * np.log(f) + 1.0)


def rope_omegas(r: int, base: float, scaling) -> np.ndarray:
    """ω_i, float64, for the position-independent rules whose ω NumPy states in one line:
    unscaled (rope.frequencies) and linear (rope.scaling.linear)."""
    w = np.power(float(base), -2.0 * np.arange(r // 2) / r)
    return w / float(scaling["factor"]) if scaling else w


def rope_norms(x, r: int, layout: str, gain: float = 1.0) -> np.ndarray:
    """Natural scale (rope.scale): m·‖pair‖ on both channels of each pair, |x| elsewhere."""
    ia, ib = rope_pairs(r, layout)
    out = np.abs(np.asarray(x, np.float64))
    n = gain * np.hypot(x[..., ia], x[..., ib])
    out[..., ia], out[..., ib] = n, n
    return out


def rope_allow(ctx: Context, x, positions, r: int, layout: str, base: float, gain: float = 1.0) -> np.ndarray:
    """Per element, what one result may err by (absolute): (max(k·4, floor) + arg_ulps·|θ|)·eps
    ·natural scale, with k, floor, arg_ulps of TABLE[rotary_embedding, dtype] and |θ| = p·base^(−2i/r)
    the unscaled angle of the channel, which bounds the scaled one (every rule divides ω or grows
    the base), 0 on pass-through channels. See the module docstring."""
    from attnconf.conformance.tolerance import rule_for

    rule = rule_for("rotary_embedding", ctx.dtype)
    b, h, t, e = x.shape
    pos = np.asarray(positions, np.float64).reshape(-1, 1, t, 1)
    theta = np.zeros((pos.shape[0], 1, t, e))
    ia, ib = rope_pairs(r, layout)
    theta[..., ia] = theta[..., ib] = pos * np.power(float(base), -2.0 * np.arange(r // 2) / r)
    ulps = max(rule.k * INV_BASELINE_ULPS, rule.floor_ulps) + rule.arg_ulps * theta
    return ulps * EPS[ctx.dtype] * np.maximum(rope_norms(x, r, layout, gain), _TINY[ctx.dtype])


def _rope_setup(ctx, ex):
    x, pos, opts = gen.rope_arrays(ex, ctx.dtype)
    return x, pos, opts, ex["r"] or ex["E"]


def _rope_what(ex, opts) -> str:
    s = opts["scaling"]["rope_type"] if opts["scaling"] else "no"
    return f"layout {ex['layout']}, rotary_dim {opts['rotary_dim']}, base {ex['base']:g}, {s} scaling"


def prop_rope_norms(ctx, ex):
    x, pos, opts, r = _rope_setup(ctx, ex)
    y = call_rope(ctx, x, pos, **opts)
    ia, ib = rope_pairs(r, ex["layout"])
    m = rope_gain(opts["scaling"])
    allow = rope_allow(ctx, x, pos, r, ex["layout"], ex["base"], m)[..., ia]
    got, want = np.hypot(y[..., ia], y[..., ib]), m * np.hypot(x[..., ia], x[..., ib])
    _assert_within(got, want, 2 * np.broadcast_to(allow, got.shape),
                   f"the norm of a rotated pair ({_rope_what(ex, opts)}; pairs {ia.tolist()} with "
                   f"{ib.tolist()}) differs from the input pair's" + (f" times m = {m:.6g}" if m != 1 else ""),
                   "twice the per-element RoPE allowance")


def prop_rope_relative(ctx, ex):
    q, pos, opts, r = _rope_setup(ctx, ex)
    rng = np.random.default_rng(ex["seed"] + 1)
    k = gen.round_to(rng.uniform(-1, 1, q.shape), ctx.dtype)
    pk = ex["offset"] // 2 + rng.permutation(q.shape[2]).astype(np.int64)        # another m − n per token
    s, lay, m = ex["shift"], ex["layout"], rope_gain(opts["scaling"])
    dots, limit = [], 0.0
    for a, b in ((pos, pk), (pos + s, pk + s)):
        yq, yk = call_rope(ctx, q, a, **opts), call_rope(ctx, k, b, **opts)
        dots.append((yq * yk).sum(axis=-1))
        aq, ak = rope_allow(ctx, q, a, r, lay, ex["base"], m), rope_allow(ctx, k, b, r, lay, ex["base"], m)
        limit = limit + 2 * (aq * rope_norms(k, r, lay, m) + ak * rope_norms(q, r, lay, m)).sum(axis=-1)
    _assert_within(dots[1], dots[0], limit,
                   f"<R(m)q, R(n)k> changed when both positions were shifted by {s} ({_rope_what(ex, opts)}; "
                   f"query positions from {int(np.min(pos))}, key positions from {int(np.min(pk))})",
                   "the per-element allowances of the four rotations through the dot products")


def prop_rope_identity(ctx, ex):
    x, pos, opts, r = _rope_setup(ctx, ex)
    zero = np.zeros_like(pos)
    y = call_rope(ctx, x, zero, **opts)
    _assert_within(y, x, 2 * rope_allow(ctx, x, zero, r, ex["layout"], ex["base"]),
                   f"rotary_embedding at position 0 is not the identity ({_rope_what(ex, opts)})",
                   "twice the per-element RoPE allowance at angle 0")


def prop_rope_partial(ctx, ex):
    x, pos, opts, r = _rope_setup(ctx, ex)
    lay, m = ex["layout"], rope_gain(opts["scaling"])
    y = call_rope(ctx, x, pos, **opts)
    full = call_rope(ctx, x[..., :r], pos, **dict(opts, rotary_dim=None))
    allow = rope_allow(ctx, x, pos, r, lay, ex["base"], m)
    _assert_within(y[..., r:], x[..., r:], 2 * allow[..., r:],
                   f"channels {r} … {ex['E'] - 1} should pass through unchanged ({_rope_what(ex, opts)})",
                   "twice the per-element RoPE allowance at angle 0")
    sub = np.broadcast_to(allow[..., :r], full.shape)
    _assert_within(y[..., :r], full, 2 * sub + 2 * sub,
                   f"channels 0 … {r - 1} with rotary_dim={r} of E={ex['E']} differ from rotary_embedding of "
                   f"those {r} channels alone ({_rope_what(ex, opts)}): the rotated channels or their "
                   "frequencies (base^(−2i/r), not base^(−2i/E)) are not the spec's", "twice the allowance of each")


def prop_rope_linearity(ctx, ex):
    x1, pos, opts, r = _rope_setup(ctx, ex)
    rng = np.random.default_rng(ex["seed"] + 1)
    x2 = gen.round_to(rng.uniform(-1, 1, x1.shape), ctx.dtype)
    a, b = (float(v) for v in rng.choice([-2.0, -0.5, 0.5, 1.0, 2.0], 2))     # powers of 2: exact
    xc = gen.round_to(a * x1 + b * x2, ctx.dtype)
    y1, y2, yc = (call_rope(ctx, v, pos, **opts) for v in (x1, x2, xc))
    lay, base, m = ex["layout"], ex["base"], rope_gain(opts["scaling"])
    limit = 2 * (abs(a) * rope_allow(ctx, x1, pos, r, lay, base, m) + abs(b) * rope_allow(ctx, x2, pos, r, lay, base, m)
                 + rope_allow(ctx, xc, pos, r, lay, base, m))
    _assert_within(yc, a * y1 + b * y2, limit,
                   f"rotary_embedding({a:g}·x1 + {b:g}·x2) differs from {a:g}·rotary_embedding(x1) + "
                   f"{b:g}·rotary_embedding(x2) ({_rope_what(ex, opts)})", "twice the allowance of each result")


def prop_rope_shift(ctx, ex):
    x, pos, opts, r = _rope_setup(ctx, ex)
    k, lay = ex["shift"], ex["layout"]
    y0 = call_rope(ctx, x, pos, **opts)
    y1 = call_rope(ctx, x, pos + k, **opts)
    ia, ib = rope_pairs(r, lay)
    theta = k * rope_omegas(r, ex["base"], opts["scaling"])                  # float64, on the outputs
    c, s = np.cos(theta), np.sin(theta)
    want = y0.copy()
    want[..., ia] = y0[..., ia] * c - y0[..., ib] * s
    want[..., ib] = y0[..., ib] * c + y0[..., ia] * s
    limit = 2 * (2 * rope_allow(ctx, x, pos, r, lay, ex["base"]) + rope_allow(ctx, x, pos + k, r, lay, ex["base"]))
    _assert_within(y1, want, limit,
                   f"rotary_embedding at positions p + {k} differs from its output at p rotated by {k}·ω "
                   f"({_rope_what(ex, opts)}; positions from {int(np.min(pos))})",
                   "twice the allowance of each result (the rotated one counted twice)")


def _rope_strategy(*scalings, partial=False):
    def strategy(caps, dtype):
        from hypothesis import strategies as st

        usable = [s for s in scalings if s == "none" or s in caps.rope_scaling]
        return gen.rope_examples(caps.rope_layouts, usable, partial=partial) if caps.rope_layouts else st.nothing()
    return strategy


def _rope_edges(*, partial=False, scaling="none"):
    """Invariant.explicit for RoPE, for each claimed layout: positions from 3000 (beyond the
    integers float16 and bfloat16 hold, 2048 and 256) and from 100 000 (float32 angles then err
    by ~6e-3 rad; float16 cannot hold the position), where angles in a low dtype show whatever
    the draws reach (transformers PR #29285, gpt-neox PR #1016)."""
    def edges(caps):
        ex = {"B": 1, "H": 1, "T": 4, "E": 8, "r": 4 if partial else 0, "layout": "interleaved",
              "base": 10000.0, "scaling": scaling, "offset": 0, "shift": 5, "per_batch": False, "seed": 0}
        return tuple(dict(ex, layout=lay, offset=o) for lay in caps.rope_layouts for o in (3000, 100_000))
    return edges


_ROPE_ALL = ("none", "linear", "dynamic", "yarn", "llama3")
_ROPE_UNSCALED_GAIN = ("none", "linear", "dynamic", "llama3")       # m = 1
_ROPE_POSITION_FREE = ("none", "linear", "yarn", "llama3")          # ω independent of the positions


def _rope_metrics(inv: Invariant, dtype: str) -> dict:
    """RoPE's rule: the TABLE row's 2·max(k·4, floor) plus the row's angle term per channel."""
    from attnconf.conformance.tolerance import rule_for

    rule = rule_for("rotary_embedding", dtype)
    return {"tolerance_ulps": inv_ulps("rotary_embedding", dtype),
            "rule": f"2 x (max(k x {INV_BASELINE_ULPS:g}, floor) + {rule.arg_ulps:g} x |θ|) from "
                    f"TABLE[rotary_embedding, {dtype}] per compared result, in ulps of the pair's norm "
                    "(θ = p·base^(−2i/r), the channel's unscaled angle)"}


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------
def _needs(flag: str, reason: str):
    return lambda caps, dtype: "" if getattr(caps, flag) else reason


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


def _enc_strategy(caps, dtype):
    return gen.encoding_examples(caps.encoding_layouts, caps.encoding_frequencies,
                                 offset=caps.encoding_offset, base=caps.encoding_base)


def _mha_strategy(caps, dtype):
    from hypothesis import strategies as st

    self_attn = gen.mha_examples(cross=False, bias=caps.mha_biases)
    return st.one_of(self_attn, gen.mha_examples(cross=True, bias=caps.mha_biases)) if caps.mha_cross else self_attn


def _sdpa_edges(*, min_b=1, min_l=1, min_s=1, gqa=False, extra=()):
    """Invariant.explicit for an sdpa invariant: fixed examples run first on every adapter, so
    that the records of documented framework bugs never depend on what the draws reach:
    one batch element and one kv head with L = 1, S = 2, E = 1 (two of L, S, E equal to 1: XLA
    on CPU rejects that bfloat16 dot, jax.json; with gqa a group of 2 on one kv head, the MQA
    shape Keras's einsum rejects, tensorflow.json); the invariant's minimum sizes are kept.
    extra: further examples of that invariant (see INVARIANTS)."""
    edge = {"B": max(1, min_b), "Hkv": 1, "G": 2 if gqa else 1, "L": max(1, min_l), "S": max(2, min_s),
            "E": 1, "Ev": 0, "seed": 0}
    return lambda caps: (edge,) + tuple(extra)


# E = 3: a softmax scale 1/sqrt(3) that float32 cannot hold (Keras rounds it to its floatx,
# tensorflow.json inv.scale_homogeneity float64); powers of two are exact and pass.
_ODD_HEAD_DIM = {"B": 1, "Hkv": 1, "G": 1, "L": 2, "S": 3, "E": 3, "Ev": 0, "seed": 0}
# A dominant key at logits up to 100 puts the output at the edge of the hull, where a float32
# softmax's weight sum (JAX for float64 inputs, jax.json inv.finite float64) shows (measured).
_NEAR_HULL_EDGE = {"B": 2, "Hkv": 2, "G": 1, "L": 6, "S": 9, "E": 4, "Ev": 0, "seed": 10}


def _enc_edges(caps):
    """Invariant.explicit for encodings, with offset support: positions from 3000 (beyond the
    integers float16 and bfloat16 hold exactly, 2048 and 256) and from 100 000 (beyond float16's
    largest number, 65504), where angle arithmetic in the table's dtype shows (keras_hub.json:
    SinePositionEncoding computes p·ω in the table's dtype, and in float32 for float64)."""
    if not (caps.encoding_layouts and caps.encoding_frequencies):
        return ()
    ex = {"dim": 8, "n": 8, "offset": 0, "base": 10000.0, "layout": caps.encoding_layouts[0],
          "frequencies": caps.encoding_frequencies[0], "k": 3, "m": 2, "seed": 0}
    return tuple(dict(ex, offset=o) for o in ((3000, 100_000) if caps.encoding_offset else (0,)))


def _mha_explicit(caps):
    """A layer whose sequence length equals its head count with one-wide heads (L = H = 2, E = Ev = 1):
    a per-head bias of shape (H, 1) is then ambiguous against (B, T, H, 1), and Keras's TF ops.add
    takes it for a per-position bias (tf.nn.bias_add on axis 1). Random draws hit it rarely."""
    return ({"B": 1, "L": 2, "S": 2, "H": 2, "E": 1, "Ev": 1, "D": 2, "Dkv": 2, "cross": False,
             "bias": bool(caps.mha_biases), "seed": 0},)


def _enc_offset_strategy(caps, dtype):
    from hypothesis import strategies as st
    return gen.encoding_examples(caps.encoding_layouts, caps.encoding_frequencies, offset=True,
                                 base=caps.encoding_base).filter(lambda ex: ex["offset"] > 0) \
        if caps.encoding_offset else st.nothing()


def _table_metrics(inv: Invariant, dtype: str) -> dict:
    """The tolerance of an invariant judged by its operation's row of tolerance.TABLE."""
    return {"tolerance_ulps": inv_ulps(inv.operation, dtype),
            "rule": f"2 x max(k x {INV_BASELINE_ULPS:g}, floor) from TABLE[{inv.operation}, "
                    f"{dtype}], in ulps of the max|v| bound of the natural scale"}


def _enc_metrics(inv: Invariant, dtype: str) -> dict:
    """The encodings' own rule: a floor plus the angle's rounding (not a TABLE row)."""
    return {"tolerance_ulps": ENC_FLOOR_ULPS,
            "rule": f"per element {ENC_FLOOR_ULPS:g} ulp + {ENC_ANGLE_FACTOR:g}·p·ω·eps_angle "
                    "(eps_angle: float32's below float64), for each of the two compared tables"}


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
    Invariant("inv.mha.decomposition", "multi_head_attention", _mha_strategy, prop_mha_decomposition,
              factor=3, explicit=_mha_explicit),
    Invariant("inv.enc.bounds", "sinusoidal_encoding", _enc_strategy, each_variant(prop_enc_bounds), factor=2,
              explicit=_enc_edges, metrics=_enc_metrics),
    Invariant("inv.enc.pythagorean", "sinusoidal_encoding", _enc_strategy, each_variant(prop_enc_pythagorean), factor=2,
              explicit=_enc_edges, metrics=_enc_metrics),
    Invariant("inv.enc.rotation", "sinusoidal_encoding", _enc_strategy, each_variant(prop_enc_rotation), factor=2,
              explicit=_enc_edges, metrics=_enc_metrics),
    Invariant("inv.enc.relative", "sinusoidal_encoding", _enc_strategy, each_variant(prop_enc_relative), factor=2,
              explicit=_enc_edges, metrics=_enc_metrics),
    Invariant("inv.enc.offset_shift", "sinusoidal_encoding", _enc_offset_strategy, each_variant(prop_enc_offset_shift),
              _needs("encoding_offset", "needs offset support"), factor=2, explicit=_enc_edges, metrics=_enc_metrics),
    Invariant("inv.rope.norms", "rotary_embedding", _rope_strategy(*_ROPE_ALL), prop_rope_norms,
              explicit=_rope_edges(), metrics=_rope_metrics),
    Invariant("inv.rope.relative", "rotary_embedding", _rope_strategy(*_ROPE_POSITION_FREE), prop_rope_relative,
              explicit=_rope_edges(), metrics=_rope_metrics),
    Invariant("inv.rope.identity", "rotary_embedding", _rope_strategy(*_ROPE_UNSCALED_GAIN), prop_rope_identity,
              explicit=_rope_edges(), metrics=_rope_metrics),
    Invariant("inv.rope.partial", "rotary_embedding", _rope_strategy(*_ROPE_ALL, partial=True), prop_rope_partial,
              explicit=_rope_edges(partial=True), metrics=_rope_metrics),
    Invariant("inv.rope.linearity", "rotary_embedding", _rope_strategy(*_ROPE_ALL), prop_rope_linearity,
              explicit=_rope_edges(), metrics=_rope_metrics),
    Invariant("inv.rope.shift", "rotary_embedding", _rope_strategy("none", "linear"), prop_rope_shift,
              explicit=_rope_edges(), metrics=_rope_metrics),
)


# ---------------------------------------------------------------------------------------------
# Running a property with hypothesis
# ---------------------------------------------------------------------------------------------
class _Skip(Exception):
    pass


def run_property(inv: Invariant, ctx: Context, *, seed: int, max_examples: int, shrink: bool = True,
                 budget_s: float | None = None):
    """(status, message, examples_run, failing_example) for one invariant on one adapter/dtype.

    Hypothesis draws examples from a fixed seed without a database (reproducible); a failure is
    shrunk, but after SHRINK_BUDGET further adapter calls new candidates are treated as passing
    (the best failure so far is kept and replayed from a cache), so a broken implementation
    costs a bounded time. An example the plug-in declines (NotImplementedError) is declined alone,
    like a fixed example outside the adapter's range: the other draws still run; when every
    example is declined the status is skip, "declined: <reason>".
    """
    import hypothesis
    from hypothesis import HealthCheck, Phase, settings

    failures: dict = {}
    passed: set = set()
    declined: dict = {}      # example key -> the reason the plug-in gave (NotImplementedError)
    state = {"budget": SHRINK_BUDGET, "ran": 0, "last": None, "skip": None}
    start = time.perf_counter()

    def key(ex):
        return tuple(sorted(ex.items()))

    def test(ex):
        k = key(ex)
        if k in failures:
            state["last"] = (ex, failures[k])
            raise failures[k]
        if state["skip"] is not None:
            raise state["skip"]
        if k in passed:          # hypothesis repeats examples at small max_examples
            return
        if (not failures and budget_s is not None and state["ran"] >= 1
                and time.perf_counter() - start > budget_s):
            return               # time share spent (slow, e.g. per-shape-compiling, adapters)
        if failures:
            if state["budget"] <= 0:
                return
            state["budget"] -= 1
        try:
            inv.prop(ctx, ex)
            state["ran"] += 1
            passed.add(k)
        except Unsupported as exc:
            if k in explicit:    # a fixed example outside this adapter's range: the draws still run
                passed.add(k)
                return
            state["skip"] = _Skip(exc.reason)
            raise state["skip"]
        except NotImplementedError as exc:   # the plug-in declines this example only: the draws go on
            declined[k] = declined_reason(exc)
            passed.add(k)
            return
        except Violation as exc:
            failures[k] = exc
            state["last"] = (ex, exc)
            raise
        except Exception as exc:  # the implementation raised: a non-conformance, reported as error
            err = _Raised(f"{type(exc).__name__}: {exc}")
            failures[k] = err
            state["last"] = (ex, err)
            raise err

    strategy = inv.strategy(ctx.caps, ctx.dtype)
    explicit = {key(ex) for ex in inv.explicit(ctx.caps)}
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)
    given = hypothesis.given(strategy)(test)
    for ex in reversed(tuple(inv.explicit(ctx.caps))):    # hypothesis runs explicit examples first
        given = hypothesis.example(ex)(given)
    runner = settings(max_examples=max_examples * inv.factor, database=None, deadline=None,
                      derandomize=False, phases=phases, report_multiple_bugs=False,
                      suppress_health_check=list(HealthCheck), print_blob=False,
                      verbosity=hypothesis.Verbosity.quiet)(
        hypothesis.seed(seed)(given))
    try:
        runner()
    except _Skip as exc:
        return "skip", f"unsupported: {exc}", state["ran"], None
    except (Violation, _Raised) as exc:
        ex, err = state["last"] if state["last"] else (None, exc)
        status = "error" if isinstance(err, _Raised) else "fail"
        return status, str(err), state["ran"], ex
    except hypothesis.errors.Unsatisfiable:
        return "skip", "no example of this property fits the adapter's capabilities", 0, None
    if declined:             # every example declined: skip; some: a pass that says what it lacks
        distinct = list(dict.fromkeys(declined.values()))
        reasons = "; ".join(distinct[:3]) + (f"; and {len(distinct) - 3} other reasons" if len(distinct) > 3 else "")
        if not state["ran"]:
            return "skip", declined_message(reasons), 0, None
        return "pass", declined_message(f"{len(declined)} of {len(declined) + state['ran']} examples "
                                        f"({reasons}); the others passed"), state["ran"], None
    return "pass", "", state["ran"], None


class _Raised(Exception):
    """The implementation raised an exception on valid input."""


def repro(adapter, clause: str, dtype: str, seed: int) -> str:
    """The command that reruns an invariant record (adapter: an instance or its name)."""
    return repro_cmd.command(repro_cmd.adapter_args(adapter), f"invariant/{clause}", dtype, seed=seed)


def _record(ctx: Context, inv: Invariant, *, status, message, duration, seed, max_examples,
            examples=0, example=None, metrics=None) -> dict:
    """An invariant's record (a Record's JSON form). metrics: instead of the examples count and
    the invariant's tolerance metrics (determinism has its own)."""
    name = getattr(ctx.adapter, "name", type(ctx.adapter).__name__)
    if metrics is None:
        metrics = {"examples": examples, **(inv.metrics or _table_metrics)(inv, ctx.dtype)}
        if example is not None:
            metrics["counterexample"] = dict(example)
    return Record(
        adapter=name, framework=getattr(ctx.adapter, "framework", ""),
        operation=inv.operation, case=f"invariant/{inv.clause}", clauses=[inv.clause],
        dtype=ctx.dtype, check="invariant", status=status, metrics=metrics,
        message=message, repro=repro(ctx.adapter, inv.clause, ctx.dtype, seed),
        duration_s=round(duration, 4), options={"seed": seed, "max_examples": max_examples},
        shapes={},
    ).to_json()


def applicable(inv: Invariant, caps, dtype: str) -> str:
    """"" when the invariant can run on these capabilities, else the reason it is skipped."""
    if inv.operation not in caps.operations:
        return f"{inv.operation} is not implemented"
    if dtype not in caps.dtypes:
        return f"dtype {dtype} is not supported"
    return inv.requires(caps, dtype)


def check(adapter, dtype: str, *, seed: int = 0, max_examples: int | None = None,
          select: str | None = None, shrink: bool = True, budget_s: float | None = None,
          repro_args: str | None = None) -> list[dict]:
    """Run every invariant (or those `select` selects) on `adapter` at `dtype`.

    Returns results records (check="invariant"), one per invariant plus determinism. Never
    raises for implementation faults: those are `error` records.
    max_examples: random draws per invariant (times its factor; None: EXAMPLES), capped for
    per-shape-compiling frameworks (draws_for). The count is fixed, never a matter of time, so
    a call draws the same examples and gives the same statuses on any machine under any load;
    each invariant's explicit examples (documented framework bugs) always run first.
    select: as `attnconf run --select` (conformance/repro.selects), on the case id
    `invariant/<clause>`; a bare clause like "inv.convex_hull" selects as a substring.
    budget_s: an opt-in wall-time cap shared by the invariants (a property past its share stops
    drawing): its records depend on machine load, so `attnconf run` never passes one.
    repro_args: the run's repro.run_args for this adapter (default: its name or remembered spec).
    """
    ctx = Context(adapter, dtype)
    records = []
    max_examples = draws_for(adapter, max_examples)
    chosen = [inv for inv in INVARIANTS if repro_cmd.selects(select, f"invariant/{inv.clause}")]
    runnable = [inv for inv in chosen if not applicable(inv, adapter.capabilities, dtype)]
    share = None if budget_s is None else budget_s / max(len(runnable), 1)
    for inv in chosen:
        t0 = time.perf_counter()
        reason = applicable(inv, adapter.capabilities, dtype)
        if reason:
            records.append(_record(ctx, inv, status="skip", message=f"unsupported: {reason}",
                                   duration=0.0, seed=seed, max_examples=max_examples))
            continue
        status, message, ran, ex = run_property(inv, ctx, seed=seed, max_examples=max_examples,
                                                shrink=shrink, budget_s=share)
        if ex is not None:
            message = (f"{inv.clause} does not hold; shrunk counterexample: {gen.describe(ex)}\n"
                       f"{message}")
        records.append(_record(ctx, inv, status=status, message=message, seed=seed, examples=ran,
                               duration=time.perf_counter() - t0, max_examples=max_examples, example=ex))
    if repro_cmd.selects(select, "invariant/inv.determinism"):
        records.append(check_determinism(adapter, dtype, seed=seed))
    if repro_args is not None:
        records = [dict(r, repro=repro_cmd.command(repro_args, r["case"], dtype, seed=seed)) for r in records]
    return records


def record_ids(adapter=None) -> list[str]:
    """The case ids of check's records (the same for every adapter): what --select can select."""
    return [f"invariant/{inv.clause}" for inv in INVARIANTS] + ["invariant/inv.determinism"]


def draws_for(adapter, max_examples: int | None = None) -> int:
    """Random draws per invariant (before its factor) for this adapter: max_examples (None:
    EXAMPLES), at most PER_SHAPE_COMPILING[framework] where the framework compiles per shape.
    A declared number, not a measured time, so the examples drawn depend on nothing else."""
    n = EXAMPLES if max_examples is None else int(max_examples)
    cap = PER_SHAPE_COMPILING.get(getattr(adapter, "framework", ""))
    return max(1, n if cap is None else min(n, cap))


# ---------------------------------------------------------------------------------------------
# Determinism: its own record, not a property (one fixed, moderately sized input, run twice)
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DeterminismProbe:
    """One operation's determinism input: the first probe whose operation the adapter offers
    runs (it belongs to its operation, as an invariant does)."""
    operation: str
    call: Callable                  # (ctx, seed) -> a no-argument call returning a NumPy array
    metrics: Callable | None = None  # as Invariant.metrics, for the probe's skip and error records


def _determinism_sdpa(ctx: Context, seed: int):
    ex = {"B": 2, "Hkv": 2, "G": 1, "L": 16, "S": 48, "E": 8, "Ev": 0, "seed": seed}
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    return lambda: call_sdpa(ctx, q, k, v)


def _determinism_mha(ctx: Context, seed: int):
    ex = {"B": 2, "L": 12, "S": 12, "H": 2, "E": 4, "Ev": 4, "D": 8, "Dkv": 8, "cross": False,
          "bias": False, "seed": seed}
    x, _, w = gen.mha_arrays(ex, ctx.dtype)
    ad = ctx.adapter
    return lambda: np.asarray(ad.to_numpy(ad.multi_head_attention(
        ad.from_numpy(x, ctx.dtype), ad.from_numpy(x, ctx.dtype),
        {n: ad.from_numpy(a, ctx.dtype) for n, a in w.items()}, num_heads=2)), np.float64)


def _determinism_encoding(ctx: Context, seed: int):
    return lambda: call_encoding(ctx, 64, 16, offset=0 if not ctx.caps.encoding_offset else 1000)


def _determinism_rope(ctx: Context, seed: int):
    ex = {"B": 2, "H": 2, "T": 16, "E": 16, "r": 0, "layout": ctx.caps.rope_layouts[0], "base": 10000.0,
          "scaling": "none", "offset": 1000, "shift": 1, "per_batch": False, "seed": seed}
    x, pos, opts = gen.rope_arrays(ex, ctx.dtype)
    return lambda: call_rope(ctx, x, pos, **opts)


DETERMINISM_PROBES: tuple[DeterminismProbe, ...] = (
    DeterminismProbe("sdpa", _determinism_sdpa),
    DeterminismProbe("multi_head_attention", _determinism_mha),
    DeterminismProbe("sinusoidal_encoding", _determinism_encoding, _enc_metrics),
    DeterminismProbe("rotary_embedding", _determinism_rope, _rope_metrics),
)


def _determinism_call(ctx: Context, seed: int):
    """(probe, call) of the first probe whose operation the adapter offers, or (None, None)."""
    probe = next((p for p in DETERMINISM_PROBES if p.operation in ctx.caps.operations), None)
    return (probe, probe.call(ctx, seed)) if probe is not None else (None, None)


def check_determinism(adapter, dtype: str, *, seed: int = 0) -> dict:
    ctx = Context(adapter, dtype)
    first = DETERMINISM_PROBES[0]
    inv = Invariant("inv.determinism", first.operation, None, None, metrics=first.metrics)
    t0 = time.perf_counter()
    probe, fn = _determinism_call(ctx, seed) if dtype in adapter.capabilities.dtypes else (None, None)
    if fn is None:
        reason = "no operation to run" if dtype in adapter.capabilities.dtypes else f"dtype {dtype} is not supported"
        return _record(ctx, inv, status="skip", message=f"unsupported: {reason}", duration=0.0,
                       seed=seed, max_examples=1)
    op = probe.operation
    inv = dataclasses.replace(inv, operation=op, metrics=probe.metrics)
    try:
        a, b = fn(), fn()
    except Unsupported as exc:
        return _record(ctx, inv, status="skip", message=f"unsupported: {exc.reason}", duration=0.0,
                       seed=seed, max_examples=1)
    except NotImplementedError as exc:   # the plug-in declines: a skip, not an error
        return _record(ctx, inv, status="skip", message=declined_message(declined_reason(exc)),
                       duration=time.perf_counter() - t0, seed=seed, max_examples=1)
    except Exception as exc:
        return _record(ctx, inv, status="error", message=f"{type(exc).__name__}: {exc}",
                       duration=time.perf_counter() - t0, seed=seed, max_examples=1)
    same = a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if same:
        status, message = "pass", ""
    else:
        diff = float(np.nanmax(np.abs(a - b))) if a.shape == b.shape else float("nan")
        claimed = adapter.capabilities.deterministic
        status = "fail" if claimed else "pass"
        message = (f"two calls on identical {op} inputs differ (max |Δ| {diff:.3g}); "
                   + ("the adapter claims determinism" if claimed else "the adapter declares itself nondeterministic"))
    return _record(ctx, inv, status=status, message=message, duration=time.perf_counter() - t0,
                   seed=seed, max_examples=1, metrics={"identical": bool(same), "examples": 1})
