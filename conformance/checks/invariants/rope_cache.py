"""Invariants of RoPE from given caches (spec/invariants.md inv.rope_cache.*): permuting the cache
rows together with the position ids changes nothing, and with the exact cos/sin tables of a base
the operation is the base-built rotary_embedding of the same implementation. Named by the
registry entry attnconf/operations/rope_cache.py (`invariants=`); run by checks.invariants.

Results of the implementation are compared with each other, each allowed inv_ulps(rope_cache,
dtype) of |x| (the permutation), or the rotary_embedding tolerance of its angles (the tables).
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps


def call(ctx: Context, x, cos, sin, ids, **options) -> np.ndarray:
    ad = ctx.adapter
    out = ad.rope_cache(ad.from_numpy(x, ctx.dtype), ad.from_numpy(cos, ctx.dtype), ad.from_numpy(sin, ctx.dtype),
                        ad.index_from_numpy(ids), **options)
    out = np.asarray(ad.to_numpy(out))
    if out.shape != x.shape:
        raise Violation(f"rope_cache output should have x's shape {x.shape}, but got {out.shape}")
    return out.astype(np.float64)


def _examples(caps, dtype):
    from hypothesis import strategies as st

    layouts = tuple(l for l in caps.rope_layouts if l in ("half", "interleaved")) or ("half",)
    return st.fixed_dictionaries({
        "B": st.integers(1, 2), "H": st.integers(1, 3), "T": st.integers(1, 5), "E": st.sampled_from((2, 4, 8)),
        "N": st.integers(1, 12), "partial": st.booleans(), "layout": st.sampled_from(layouts), "seed": gen.SEEDS})


def _rows(ex) -> int:
    """N >= T: onnxruntime rejects a cache with fewer rows than tokens (a golden case says so);
    the properties here are about the rows read, not that refusal."""
    return max(ex["N"], ex["T"])


def _draw(ex, dtype):
    rng = np.random.default_rng(ex["seed"])
    e = ex["E"]
    r = 2 if ex["partial"] and e > 2 else e
    x = gen.round_to(rng.uniform(-1, 1, (ex["B"], ex["H"], ex["T"], e)), dtype)
    ids = rng.integers(0, _rows(ex), (ex["B"], ex["T"]))
    return rng, x, ids, r


# --- inv.rope_cache.permuted_rows ------------------------------------------------------------------
def prop_permuted_rows(ctx, ex):
    rng, x, ids, r = _draw(ex, ctx.dtype)
    n = _rows(ex)
    cos = gen.round_to(rng.uniform(-1, 1, (n, r // 2)), ctx.dtype)
    sin = gen.round_to(rng.uniform(-1, 1, (n, r // 2)), ctx.dtype)
    perm = rng.permutation(n)                          # row p moves to perm[p]
    cos2, sin2 = np.empty_like(cos), np.empty_like(sin)
    cos2[perm], sin2[perm] = cos, sin
    opts = {"rotary_dim": r, "layout": ex["layout"]}
    a = call(ctx, x, cos, sin, ids, **opts)
    b = call(ctx, x, cos2, sin2, perm[ids], **opts)
    assert_close(b, a, 2.0 * np.abs(x).max() + 1e-300, inv_ulps("rope_cache", ctx.dtype), ctx.dtype,
                 f"moving the cache rows by {perm.tolist()} with the ids changed the output ({ex['layout']})")


# --- inv.rope_cache.base_tables --------------------------------------------------------------------
def _has_rotary(caps, dtype):
    if "rotary_embedding" not in caps.operations:
        return "needs rotary_embedding too (the base-built operation it is compared with)"
    return ""


def prop_base_tables(ctx, ex):
    from attnconf.reference.rope_cache_cases import base_tables

    rng, x, _, r = _draw(ex, ctx.dtype)
    t = ex["T"]
    pos = rng.integers(0, 16, (ex["B"], t))
    cos, sin = base_tables(16, r)
    cos, sin = gen.round_to(cos, ctx.dtype), gen.round_to(sin, ctx.dtype)
    opts = {"rotary_dim": r, "layout": ex["layout"]}
    got = call(ctx, x, cos, sin, pos, **opts)
    ad = ctx.adapter
    base = np.asarray(ad.to_numpy(ad.rotary_embedding(ad.from_numpy(x, ctx.dtype), ad.index_from_numpy(pos),
                                                      rotary_dim=r, layout=ex["layout"]))).astype(np.float64)
    # both round an angle p·ω < 16 rad and a table entry: the rotary_embedding allowance at 16 rad
    ulps = inv_ulps("rotary_embedding", ctx.dtype) + 64.0
    assert_close(got, base, 2.0 * np.abs(x).max() + 1e-300, ulps, ctx.dtype,
                 f"rope_cache with the base-10000 tables differs from rotary_embedding ({ex['layout']}, r={r})")


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.rope_cache.permuted_rows", "rope_cache", _examples, prop_permuted_rows),
    Invariant("inv.rope_cache.base_tables", "rope_cache", _examples, prop_base_tables, requires=_has_rotary),
)
