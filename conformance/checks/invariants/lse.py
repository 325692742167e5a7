"""Invariants of `sdpa_lse` (spec/invariants.md inv.lse.*): splitting the keys into two blocks and
merging their states gives the LSE (and output) of all keys, shifting every logit by c shifts the
LSE by c, and sinks enter the LSE as log(exp(lse₀) + exp(sink)). Named by the sdpa_lse registry
entry (`invariants=`); run by the core, attnconf.conformance.checks.invariants.

Each property compares results of the implementation with each other, through NumPy float64
arithmetic on its own outputs (the merge of two states). Tolerances: outputs as the sdpa
invariants (inv_ulps(sdpa_lse, dtype) of the max|v| bound); LSEs inv_ulps of 1 + max|logit| of the
row (a bound of the LSE's natural scale, spec/tolerance.md), −∞ only where −∞ is expected.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps
from attnconf.conformance.checks.invariants.sdpa import value_scale

OP = "sdpa_lse"


def call(ctx: Context, q, k, v, mask=None, **options):
    """(output, lse) float64 of adapter.sdpa_lse; options' arrays (sinks) in the dtype."""
    ad = ctx.adapter
    native = {n: ad.from_numpy(np.asarray(x, np.float64), ctx.dtype) if isinstance(x, np.ndarray) else x
              for n, x in options.items()}
    if q.shape[1] != k.shape[1]:
        native["enable_gqa"] = True
    m = None if mask is None else ad.mask_from_numpy(mask, ctx.dtype)
    result = ad.sdpa_lse(*(ad.from_numpy(a, ctx.dtype) for a in (q, k, v)), attn_mask=m, **native)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Violation(f"sdpa_lse should return (output, lse), but got {type(result).__name__}")
    out, lse = (np.asarray(ad.to_numpy(x)).astype(np.float64) for x in result)
    want = (q.shape[:-1] + (v.shape[-1],), q.shape[:-1])
    if (out.shape, lse.shape) != want:
        raise Violation(f"sdpa_lse should return shapes {want}, but got {(out.shape, lse.shape)}")
    return out, lse


def lse_scale(q, k, extra=0.0) -> np.ndarray:
    """1 + max_j |scale·q_i·k_j| (+ extra) per row, (B, H, L): a bound of the LSE's natural scale."""
    kk = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
    return 1.0 + np.abs(q @ np.swapaxes(kk, -1, -2) / np.sqrt(q.shape[-1])).max(axis=-1) + abs(extra)


def assert_lse(actual, expected, scale, ulps, dtype, what):
    """assert_close for LSEs: −∞ exactly where expected is −∞, the finite rest within tolerance."""
    a, x = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != x.shape:
        raise Violation(f"{what}: shapes differ, {a.shape} vs {x.shape}")
    inf_a, inf_x = np.isneginf(a), np.isneginf(x)
    if not np.array_equal(inf_a, inf_x):
        idx = tuple(int(i) for i in np.argwhere(inf_a != inf_x)[0])
        raise Violation(f"{what}: lse at {idx} is {a[idx]!r}, expected {x[idx]!r} (−∞ exactly for a row with no key)")
    assert_close(np.where(inf_x, 0.0, a), np.where(inf_x, 0.0, x), scale, ulps, dtype, what)


def merge2(o1, l1, o2, l2):
    """The merged state of two (output, lse) states in NumPy float64 (sdpa.merge.definition)."""
    m = np.maximum(l1, l2)
    empty = np.isneginf(m)
    sh = np.where(empty, 0.0, m)
    w1, w2 = np.exp(l1 - sh), np.exp(l2 - sh)
    z = np.where(empty, 1.0, w1 + w2)
    out = (w1[..., None] * np.where(np.isneginf(l1)[..., None], 0.0, o1)
           + w2[..., None] * np.where(np.isneginf(l2)[..., None], 0.0, o2)) / z[..., None]
    with np.errstate(divide="ignore"):
        return out, np.where(empty, -np.inf, sh + np.log(z))


def _examples(caps, dtype):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "B": st.integers(1, 2), "Hkv": st.integers(1, 2), "G": st.sampled_from((1, 2) if caps.gqa else (1,)),
        "L": st.integers(1, 5), "S": st.integers(2, 9), "E": st.integers(1, 6), "Ev": st.just(0),
        "seed": gen.SEEDS, "cut": st.floats(0.0, 1.0), "shift": st.sampled_from((-3.5, 2.25, 10.0))})


# --- inv.lse.key_split ---------------------------------------------------------------------------
def prop_key_split(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype, q_scale=2.0)
    s = k.shape[2]
    c = min(max(1, int(round(ex["cut"] * s))), s - 1)
    ulps = inv_ulps(OP, ctx.dtype)
    full_o, full_l = call(ctx, q, k, v)
    o1, l1 = call(ctx, q, k[:, :, :c], v[:, :, :c])
    o2, l2 = call(ctx, q, k[:, :, c:], v[:, :, c:])
    out, lse = merge2(o1, l1, o2, l2)
    h = q.shape[1]
    assert_close(out, full_o, value_scale(v, h), ulps, ctx.dtype,
                 f"the merge of keys [0, {c}) and [{c}, {s}) differs from the output over all keys")
    assert_lse(lse, full_l, lse_scale(q, k), ulps, ctx.dtype,
               f"the merged LSE of keys [0, {c}) and [{c}, {s}) differs from the LSE over all keys")


def _needs_float_mask(caps, dtype):
    return "" if "float" in caps.mask_kinds else "needs float masks (Capabilities.mask_kinds)"


# --- inv.lse.shift -------------------------------------------------------------------------------
def prop_shift(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype, q_scale=2.0)
    c = ex["shift"]
    b, h, l, s = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    zero = np.zeros((1, 1, l, s))
    o0, l0 = call(ctx, q, k, v, zero)
    o1, l1 = call(ctx, q, k, v, zero + c)
    ulps = inv_ulps(OP, ctx.dtype)
    assert_close(o1, o0, value_scale(v, h), ulps, ctx.dtype, f"a float mask of {c} everywhere changed the output")
    assert_lse(l1, l0 + c, lse_scale(q, k, c), ulps, ctx.dtype,
               f"a float mask of {c} everywhere should add {c} to the LSE (natural log)")


def _needs_sinks(caps, dtype):
    return "" if "sinks" in caps.sdpa_options else "needs the sdpa option sinks (Capabilities.sdpa_options)"


# --- inv.lse.sinks -------------------------------------------------------------------------------
def prop_sinks(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype, q_scale=2.0)
    h = q.shape[1]
    rng = np.random.default_rng(ex["seed"] + 2)
    sinks = gen.round_to(rng.uniform(-2, 3, h), ctx.dtype)
    ulps = inv_ulps(OP, ctx.dtype)
    _, l0 = call(ctx, q, k, v)
    _, ls = call(ctx, q, k, v, sinks=sinks)
    want = np.logaddexp(l0, sinks[None, :, None])
    assert_lse(ls, want, lse_scale(q, k, float(np.abs(sinks).max())), ulps, ctx.dtype,
               f"with sinks {sinks.tolist()} the LSE should be log(exp(lse without sinks) + exp(sink))")
    _, ln = call(ctx, q, k, v, sinks=np.full(h, -np.inf))
    assert_lse(ln, l0, lse_scale(q, k), ulps, ctx.dtype, "sinks of −∞ changed the LSE")


_EDGE = {"B": 1, "Hkv": 1, "G": 1, "L": 1, "S": 2, "E": 1, "Ev": 0, "seed": 0, "cut": 0.5, "shift": 10.0}


def _edges(caps):
    return (_EDGE, dict(_EDGE, B=2, Hkv=2, G=2 if caps.gqa else 1, L=4, S=7, E=4, seed=5, cut=0.3))


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.lse.key_split", OP, _examples, prop_key_split, explicit=_edges),
    Invariant("inv.lse.shift", OP, _examples, prop_shift, requires=_needs_float_mask, explicit=_edges),
    Invariant("inv.lse.sinks", OP, _examples, prop_sinks, requires=_needs_sinks, explicit=_edges),
)
