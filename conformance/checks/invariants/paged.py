"""Invariants of `sdpa_paged` (spec/invariants.md inv.paged.*), metamorphic as the kernels' own
suites write them: paged equals contiguous; permuting pages with the block table changes nothing;
garbage (NaN, ±∞, 1e30) in unused pages and in slots beyond the cache lengths, and a larger
allocated capacity, leave output and lse bitwise unchanged; real logits below −5·10⁴ take part.
Named by the sdpa_paged registry entry (`invariants=`); run by the core.

Each property compares results of the implementation with each other (never with the reference).
Tolerances: inv_ulps(sdpa_paged, dtype) of max|v| for the output, of max(1, |lse|) + √E (a bound of
its natural scale, |s| <= √E for the drawn q, k in [−1, 1]) for the lse; the garbage and capacity
properties are bitwise (paged.garbage).
Shape legend: B, H, Hkv, L, E, Ev; pages (N, P, Hkv, E); block table (B, M); lengths (B,).
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps
from attnconf.dtypes import EPS

_PAGES = (1, 2, 3, 5, 16)


def examples(caps, dtype):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "B": st.integers(1, 2), "Hkv": st.integers(1, 2), "G": st.integers(1, 2) if caps.gqa else st.just(1),
        "L": st.integers(1, 3), "E": st.just(8), "page": st.sampled_from(_PAGES),
        "causal": st.booleans(), "seed": gen.SEEDS})


def arrays(ex, dtype):
    """(q, key_pages, value_pages, block_table, lengths): the sequences on shuffled pages, one spare
    page (the block table's unused entries name it), every unread slot random (the properties
    overwrite them)."""
    rng = np.random.default_rng(ex["seed"])
    b, hkv, e, p = ex["B"], ex["Hkv"], ex["E"], ex["page"]
    # cache lengths >= L in the draws (the queries' own keys are in the cache, as kernels that
    # append them require); the explicit "empty" example has sequences without keys
    lengths = rng.integers(0, 3, b) if ex.get("empty") else ex["L"] + rng.integers(0, 8, b)
    need = [int(-(-n // p)) for n in lengths]
    n_pages = sum(need) + 1
    order = rng.permutation(n_pages)
    m = max(need + [1])
    table = np.full((b, m), order[-1], np.int64)
    kp = gen.round_to(rng.uniform(-1, 1, (n_pages, p, hkv, e)), dtype)
    vp = gen.round_to(rng.uniform(-1, 1, (n_pages, p, hkv, e)) + rng.uniform(-2, 2, e), dtype)
    start = 0
    for i, n in enumerate(need):
        table[i, :n] = order[start:start + n]
        start += n
    q = gen.round_to(rng.uniform(-1, 1, (b, hkv * ex["G"], ex["L"], e)), dtype)
    return q, kp, vp, table, lengths.astype(np.int64)


def read_slots(kp, table, lengths) -> np.ndarray:
    """(N, P) bool: the slots some sequence reads (t < lengths[b])."""
    n, p = kp.shape[:2]
    read = np.zeros((n, p), bool)
    for b, k in enumerate(lengths):
        t = np.arange(int(k))
        read[table[b, t // p], t % p] = True
    return read


def call(ctx: Context, q, kp, vp, table, lengths, **options):
    """adapter.sdpa_paged in native form -> (output, lse) float64."""
    ad = ctx.adapter
    if q.shape[1] != kp.shape[2]:
        options["enable_gqa"] = True
    res = ad.sdpa_paged(*(ad.from_numpy(a, ctx.dtype) for a in (q, kp, vp)),
                        ad.index_from_numpy(np.asarray(table, np.int64)),
                        ad.index_from_numpy(np.asarray(lengths, np.int64)), **options)
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        raise Violation(f"sdpa_paged should return (output, lse), but got {type(res).__name__}")
    out, lse = (np.asarray(ad.to_numpy(r)).astype(np.float64) for r in res)
    want = q.shape[:-1] + (vp.shape[-1],)
    if out.shape != want or lse.shape != q.shape[:-1]:
        raise Violation(f"sdpa_paged outputs should have shapes {want} and {q.shape[:-1]}, "
                        f"but got {out.shape} and {lse.shape}")
    return out, lse


def _close(ctx, got, want, vp, q, what):
    ulps = inv_ulps("sdpa_paged", ctx.dtype)
    vmax = float(np.abs(vp).max()) if vp.size else 1.0
    assert_close(got[0], want[0], vmax, ulps, ctx.dtype, f"{what}: output")
    a, x = got[1], want[1]
    same = (a == x) | (np.isnan(a) & np.isnan(x))            # −∞ = −∞ for empty rows
    scale = np.maximum(1.0, np.where(np.isfinite(x), np.abs(x), 0.0)) + np.sqrt(q.shape[-1])
    assert_close(np.where(same, 0.0, a), np.where(same, 0.0, x), scale, ulps, ctx.dtype, f"{what}: lse")


def _bitwise(got, want, what):
    for name, a, x in (("output", got[0], want[0]), ("lse", got[1], want[1])):
        if not np.array_equal(a, x, equal_nan=True):
            bad = ~((a == x) | (np.isnan(a) & np.isnan(x)))
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise Violation(f"{what}: {name} changed at {idx}: {float(x[idx])!r} -> {float(a[idx])!r} "
                            f"({int(bad.sum())} of {a.size} elements; spec paged.garbage: bitwise)")


# --- inv.paged.contiguous ------------------------------------------------------------------------
def prop_contiguous(ctx, ex):
    q, kp, vp, table, lengths = arrays(ex, ctx.dtype)
    paged = call(ctx, q, kp, vp, table, lengths, is_causal=ex["causal"])
    width = max(1, int(lengths.max()))
    kc = np.zeros((len(lengths), width) + kp.shape[2:])
    vc = np.zeros((len(lengths), width) + vp.shape[2:])
    p = kp.shape[1]
    for b, k in enumerate(lengths):
        t = np.arange(int(k))
        kc[b, :k], vc[b, :k] = kp[table[b, t // p], t % p], vp[table[b, t // p], t % p]
    flat = call(ctx, q, kc, vc, np.arange(len(lengths))[:, None], lengths, is_causal=ex["causal"])
    _close(ctx, paged, flat, vp, q, f"page size {p} vs one page of {width} per sequence (lengths {lengths.tolist()})")


# --- inv.paged.permute ---------------------------------------------------------------------------
def prop_permute(ctx, ex):
    q, kp, vp, table, lengths = arrays(ex, ctx.dtype)
    base = call(ctx, q, kp, vp, table, lengths, is_causal=ex["causal"])
    perm = np.random.default_rng(ex["seed"] + 1).permutation(kp.shape[0])
    kp2, vp2 = np.empty_like(kp), np.empty_like(vp)
    kp2[perm], vp2[perm] = kp, vp
    moved = call(ctx, q, kp2, vp2, perm[table], lengths, is_causal=ex["causal"])
    _close(ctx, moved, base, vp, q, f"pages permuted by {perm.tolist()} with the block table")


# --- inv.paged.garbage / inv.paged.capacity ------------------------------------------------------
def _fill(ex, dtype):
    big = 65504.0 if dtype == "float16" else 1e30
    return (np.nan, np.inf, -np.inf, big)[ex["seed"] % 4]


def prop_garbage(ctx, ex):
    q, kp, vp, table, lengths = arrays(ex, ctx.dtype)
    base = call(ctx, q, kp, vp, table, lengths, is_causal=ex["causal"])
    unread = ~read_slots(kp, table, lengths)
    fill = _fill(ex, ctx.dtype)
    kp2, vp2 = kp.copy(), vp.copy()
    kp2[unread], vp2[unread] = fill, fill
    _bitwise(call(ctx, q, kp2, vp2, table, lengths, is_causal=ex["causal"]), base,
             f"{int(unread.sum())} unread slots filled with {fill!r}")


def prop_capacity(ctx, ex):
    q, kp, vp, table, lengths = arrays(ex, ctx.dtype)
    base = call(ctx, q, kp, vp, table, lengths, is_causal=ex["causal"])
    extra = 1 + ex["seed"] % 3
    fill = _fill(ex, ctx.dtype)
    junk = np.full((extra,) + kp.shape[1:], fill)
    kp2, vp2 = np.concatenate([kp, junk]), np.concatenate([vp, junk[..., :vp.shape[-1]]])
    cols = np.broadcast_to(kp.shape[0] + np.arange(extra), (len(lengths), extra))
    _bitwise(call(ctx, q, kp2, vp2, np.concatenate([table, cols], axis=1), lengths, is_causal=ex["causal"]),
             base, f"capacity grown by {extra} page(s) of {fill!r} (block table {table.shape[1]} -> "
                   f"{table.shape[1] + extra} columns)")


# --- inv.paged.sentinel --------------------------------------------------------------------------
_SHIFT = 60000.0      # float16 and bfloat16 hold it (bfloat16 rounds it to 59904)


def prop_sentinel(ctx, ex):
    """Every real logit shifted to about −6·10⁴ (an extra head-dim channel: q = c against k = −1,
    scale 1): the keys after each query (causal) must still get weight exactly 0. Value channel c
    marks the sequence's key K_b − L + 1 + c (a key only rows i <= c must not see), so row i's
    channels c >= i are exactly 0 in any dtype: a hidden key is excluded, not outweighed."""
    L = max(ex["L"], 2)
    q, kp, vp, table, lengths = arrays(dict(ex, L=L, empty=False), ctx.dtype)
    c = float(np.ravel(gen.round_to(np.array([_SHIFT]), ctx.dtype))[0])
    q[..., -1], kp[..., -1] = c, -1.0
    p = kp.shape[1]
    vp[..., :L - 1] = 0.0
    for b, n in enumerate(lengths):
        for m in range(L - 1):
            t = int(n) - L + 1 + m
            vp[table[b, t // p], t % p, :, m] = 1.0
    out, _ = call(ctx, q, kp, vp, table, lengths, is_causal=True, scale=1.0)
    hidden = np.arange(L - 1)[None, :] >= np.arange(L)[:, None]           # (L rows, L − 1 channels)
    got = out[..., :L - 1]
    leak = np.where(hidden, got, 0.0)
    if np.any(leak != 0):
        idx = tuple(int(i) for i in np.argwhere(leak != 0)[0])
        raise Violation(f"with every real logit near −{c:g} (below a finite −5·10⁴ sentinel), query {idx[2]} "
                        f"of sequence {idx[0]} gives weight {float(got[idx])!r} to key K_b − L + {idx[3] + 1}, "
                        f"which the causal rule hides (spec paged.sentinel: hidden keys are excluded, weight 0)")


def _sentinel_requires(caps, dtype):
    return "" if caps.explicit_scale else "needs an explicit scale"


_EDGE = {"B": 2, "Hkv": 1, "G": 1, "L": 2, "E": 8, "page": 3, "causal": True, "seed": 4}


def _edges(caps):
    """Page sizes 3 and 1 (the draws add 2, 5 and 16), then sequences of 0 … 2 keys (L = 2: an empty cache, and rows
    at negative positions), which an adapter whose cache must hold the L queries' keys skips."""
    return (_EDGE, dict(_EDGE, page=1, seed=9, B=1, L=3), dict(_EDGE, seed=5, empty=True))


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.paged.contiguous", "sdpa_paged", examples, prop_contiguous, explicit=_edges),
    Invariant("inv.paged.permute", "sdpa_paged", examples, prop_permute, explicit=_edges),
    Invariant("inv.paged.garbage", "sdpa_paged", examples, prop_garbage, explicit=_edges),
    Invariant("inv.paged.capacity", "sdpa_paged", examples, prop_capacity, explicit=_edges),
    Invariant("inv.paged.sentinel", "sdpa_paged", examples, prop_sentinel, requires=_sentinel_requires,
              explicit=_edges),
)
