"""Invariants of `merge_attention_states` (spec/invariants.md inv.merge.*): the merge of the
states of any partition of the keys (empty parts included) equals attention over all keys,
N identical states give lse + log N, the order of the states does not matter, and merging is
associative. Named by the merge_attention_states registry entry (`invariants=`); run by the
core, attnconf.conformance.checks.invariants.

The partition's states and the attention over all keys are NumPy float64 arithmetic on the
drawn inputs (softmax per part), rounded to the dtype under test (outputs and LSEs alike: LSEs
reach the adapter in the case dtype, agreement's convention); every other property compares the
implementation's merges with each other. Tolerances: inv_ulps(merge_attention_states, dtype) of
the max|output_n| bound for outputs, of 1 + max|lse_n| for LSEs; rounding an LSE of size ≤ 6 to
the dtype moves a weight by ≤ 6 ulp, well inside.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps
from attnconf.conformance.checks.invariants.lse import assert_lse

OP = "merge_attention_states"


def call(ctx: Context, outs, lses):
    """(output, lse) float64 of adapter.merge_attention_states on states rounded to the dtype."""
    ad = ctx.adapter
    result = ad.merge_attention_states(ad.from_numpy(outs, ctx.dtype), ad.from_numpy(lses, ctx.dtype))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Violation(f"merge_attention_states should return (output, lse), but got {type(result).__name__}")
    out, lse = (np.asarray(ad.to_numpy(x)).astype(np.float64) for x in result)
    if (out.shape, lse.shape) != (outs.shape[1:], lses.shape[1:]):
        raise Violation(f"merge_attention_states should return shapes {(outs.shape[1:], lses.shape[1:])}, "
                        f"but got {(out.shape, lse.shape)}")
    return out, lse


def _examples(caps, dtype):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({"N": st.integers(1, 4), "B": st.integers(1, 2), "H": st.integers(1, 2),
                                  "L": st.integers(1, 4), "S": st.integers(1, 8), "E": st.integers(1, 4),
                                  "Ev": st.integers(1, 4), "seed": gen.SEEDS})


def _states(ex, dtype):
    """(outputs, lses, full output, full lse): the states of a random partition of S keys into N
    parts (empty parts included), rounded to `dtype`, and float64 attention over all keys."""
    rng = np.random.default_rng(ex["seed"])
    b, h, l, s, e, ev, n = ex["B"], ex["H"], ex["L"], ex["S"], ex["E"], ex["Ev"], ex["N"]
    q = rng.uniform(-2, 2, (b, h, l, e))
    k = rng.uniform(-2, 2, (b, h, s, e))
    v = rng.uniform(-1, 1, (b, h, s, ev)) + rng.uniform(-2, 2, (1, 1, 1, ev))
    logits = q @ np.swapaxes(k, -1, -2)
    bounds = np.concatenate([[0], np.sort(rng.integers(0, s + 1, n - 1)), [s]])
    outs, lses = [], []
    for a, z in zip(bounds[:-1], bounds[1:]):
        o, ls = _attend(logits[..., a:z], v[:, :, a:z], (b, h, l, ev))
        outs.append(o)
        lses.append(ls)
    full_o, full_l = _attend(logits, v, (b, h, l, ev))
    return gen.round_to(np.stack(outs), dtype), gen.round_to(np.stack(lses), dtype), full_o, full_l


def _attend(logits, v, shape):
    if logits.shape[-1] == 0:
        return np.zeros(shape), np.full(shape[:3], -np.inf)
    m = logits.max(axis=-1, keepdims=True)
    e = np.exp(logits - m)
    z = e.sum(axis=-1, keepdims=True)
    return (e / z) @ v, (m + np.log(z))[..., 0]


def _scales(outs, lses):
    finite = np.where(np.isfinite(lses), np.abs(lses), 0.0)
    return np.abs(outs).max(axis=0), 1.0 + finite.max(axis=0)


# --- inv.merge.partition -------------------------------------------------------------------------
def prop_partition(ctx, ex):
    outs, lses, full_o, full_l = _states(ex, ctx.dtype)
    out, lse = call(ctx, outs, lses)
    so, sl = _scales(outs, lses)
    parts = ", ".join("empty" if np.isneginf(x).all() else "keys" for x in lses)
    ulps = inv_ulps(OP, ctx.dtype)
    assert_close(out, full_o, np.maximum(so, np.abs(full_o)), ulps, ctx.dtype,
                 f"the merge of {ex['N']} parts ({parts}) differs from attention over all {ex['S']} keys")
    assert_lse(lse, full_l, sl, ulps, ctx.dtype, f"the merged LSE of {ex['N']} parts ({parts}) differs from "
               f"the LSE over all {ex['S']} keys")


# --- inv.merge.identical -------------------------------------------------------------------------
def prop_identical(ctx, ex):
    outs, lses, _, _ = _states(dict(ex, N=1), ctx.dtype)
    lses = lses.copy()
    lses[0, 0, 0, 0] = -np.inf                  # one empty row: N copies stay (0, −∞)
    n = ex["N"] + 1
    out, lse = call(ctx, np.repeat(outs, n, axis=0), np.repeat(lses, n, axis=0))
    so, sl = _scales(outs, lses)
    want_o = np.where(np.isneginf(lses[0])[..., None], 0.0, outs[0])
    ulps = inv_ulps(OP, ctx.dtype)
    assert_close(out, want_o, so, ulps, ctx.dtype, f"{n} identical states merged differ from the state")
    assert_lse(lse, lses[0] + np.log(n), sl + np.log(n), ulps, ctx.dtype,
               f"{n} identical states merged should have lse + log {n}")


# --- inv.merge.order -----------------------------------------------------------------------------
def prop_order(ctx, ex):
    outs, lses, _, _ = _states(dict(ex, N=ex["N"] + 1), ctx.dtype)
    perm = np.random.default_rng(ex["seed"] + 1).permutation(outs.shape[0])
    if (perm == np.arange(len(perm))).all():
        perm = perm[::-1]
    a_o, a_l = call(ctx, outs, lses)
    b_o, b_l = call(ctx, outs[perm], lses[perm])
    so, sl = _scales(outs, lses)
    ulps = inv_ulps(OP, ctx.dtype)
    assert_close(b_o, a_o, so, ulps, ctx.dtype, f"states in the order {perm.tolist()} merge differently")
    assert_lse(b_l, a_l, sl, ulps, ctx.dtype, f"states in the order {perm.tolist()} merge to another LSE")


# --- inv.merge.associative -----------------------------------------------------------------------
def prop_associative(ctx, ex):
    outs, lses, _, _ = _states(dict(ex, N=3), ctx.dtype)
    r = lambda x: gen.round_to(x, ctx.dtype)   # a merged state handed on, in the case dtype
    ab_o, ab_l = call(ctx, outs[:2], lses[:2])
    left = call(ctx, np.stack([r(ab_o), outs[2]]), np.stack([r(ab_l), lses[2]]))
    bc_o, bc_l = call(ctx, outs[1:], lses[1:])
    right = call(ctx, np.stack([outs[0], r(bc_o)]), np.stack([lses[0], r(bc_l)]))
    whole = call(ctx, outs, lses)
    so, sl = _scales(outs, lses)
    ulps = inv_ulps(OP, ctx.dtype)
    for name, (o, ls) in (("(A·B)·C", left), ("A·(B·C)", right)):
        assert_close(o, whole[0], so, ulps, ctx.dtype, f"{name} differs from merging A, B, C at once")
        assert_lse(ls, whole[1], sl, ulps, ctx.dtype, f"{name} has another LSE than merging A, B, C at once")


_EDGE = {"N": 2, "B": 1, "H": 1, "L": 1, "S": 1, "E": 1, "Ev": 1, "seed": 0}


def _edges(caps):
    """One key, two parts: one part is empty; and more parts than keys."""
    return (_EDGE, dict(_EDGE, N=4, S=2, L=3, Ev=3, seed=3))


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.merge.partition", OP, _examples, prop_partition, explicit=_edges),
    Invariant("inv.merge.identical", OP, _examples, prop_identical, explicit=_edges),
    Invariant("inv.merge.order", OP, _examples, prop_order, explicit=_edges),
    Invariant("inv.merge.associative", OP, _examples, prop_associative, explicit=_edges),
)
