"""Invariants of ALiBi (inv.alibi.*): slopes geometric for powers of two, biases translation-
invariant along diagonals. Named by the registry entry attnconf/operations/alibi_slopes.py
(`invariants=`, for both ALiBi operations); run by checks.invariants.

Tolerance: each compared result may err, per element, by (max(k·4, floor) + arg_ulps·k_h) ulps of
its own magnitude (|m_h|·max(|d|, 1), alibi.target), k, floor, arg_ulps from TABLE[alibi_slopes |
alibi_bias, dtype], k_h the power of head h's slope; a comparison allows twice the sum."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.invariants import Context, DeterminismProbe, INV_BASELINE_ULPS, Invariant, Violation, _assert_within, inv_ulps
from attnconf.dtypes import EPS
from attnconf.reference.alibi import exponents


def _ulps(op: str, dtype: str, num_heads: int, max_bias: float) -> np.ndarray:
    """Per head: max(k·4, floor) + arg_ulps·(power of its slope), TABLE[op, dtype]'s numbers."""
    from attnconf.conformance.judging.tolerance import rule_for

    rule = rule_for(op, dtype)
    powers = np.array([k for k, _ in exponents(num_heads, max_bias)], np.float64)
    return max(rule.k * INV_BASELINE_ULPS, rule.floor_ulps) + rule.arg_ulps * powers


def call_slopes(ctx: Context, n: int, max_bias: float) -> np.ndarray:
    out = np.asarray(ctx.adapter.to_numpy(ctx.adapter.alibi_slopes(n, max_bias=max_bias, dtype=ctx.dtype)))
    if out.shape != (n,):
        raise Violation(f"alibi_slopes({n}) should have shape ({n},), but got {out.shape}")
    return out.astype(np.float64)


def call_bias(ctx: Context, ex: dict) -> np.ndarray:
    H, L, S = ex["H"], ex["L"], ex["S"]
    out = ctx.adapter.alibi_bias(H, L, S, max_bias=ex["max_bias"], mode=ex["mode"], alignment=ex["alignment"],
                                 dtype=ctx.dtype)
    out = np.asarray(ctx.adapter.to_numpy(out))
    if out.shape != (H, L, S):
        raise Violation(f"alibi_bias should have shape (H, L, S) = {(H, L, S)}, but got {out.shape}")
    return out.astype(np.float64)


def prop_geometric(ctx, ex):
    n, b = ex["H"], ex["max_bias"]
    m = call_slopes(ctx, n, b)
    p = 1 << (n.bit_length() - 1)
    allow = _ulps("alibi_slopes", ctx.dtype, p, b) * EPS[ctx.dtype] * np.abs(m[:p])
    if p > 1:   # m_{k+1} = m_k · m_1 for the p slopes of a power of two
        want = m[:p - 1] * m[0]
        limit = 2 * (allow[1:] + allow[:-1] * abs(m[0]) + abs(m[:p - 1]) * allow[0])
        _assert_within(m[1:p], want, limit, f"alibi_slopes({n}, max_bias={b:g}): the first {p} slopes are "
                       "not geometric with ratio m_1 (alibi.slopes)", "twice the per-slope ALiBi allowance")
    if p != n:  # the first p of n are the slopes of p heads
        mp = call_slopes(ctx, p, b)
        _assert_within(m[:p], mp, 2 * (allow + _ulps("alibi_slopes", ctx.dtype, p, b) * EPS[ctx.dtype] * np.abs(mp)),
                       f"the first {p} slopes of alibi_slopes({n}) differ from alibi_slopes({p}) (the paper's rule "
                       "for a head count that is not a power of two)", "twice the per-slope ALiBi allowance")


def prop_diagonal(ctx, ex):
    bias = call_bias(ctx, ex)
    H, L, S = bias.shape
    scale = np.maximum(np.abs(bias).max(axis=(1, 2)), 1e-300)[:, None, None]
    allow = 2 * _ulps("alibi_bias", ctx.dtype, H, ex["max_bias"])[:, None, None] * EPS[ctx.dtype] * scale
    what = f"alibi_bias(H={H}, L={L}, S={S}, mode={ex['mode']}, alignment={ex['alignment']})"
    _assert_within(bias[:, 1:, 1:], bias[:, :-1, :-1], np.broadcast_to(allow, bias[:, 1:, 1:].shape),
                   f"{what} is not constant along diagonals (bias[h, i + 1, j + 1] != bias[h, i, j])",
                   "twice the ALiBi allowance of the head's largest entry")
    shift = S - L if ex["alignment"] == "bottom_right" else 0
    i = np.arange(L)[:, None] + shift
    j = np.arange(S)[None, :]
    on, before = np.broadcast_to(j == i, (H, L, S)), np.broadcast_to(j < i, (H, L, S))
    if np.any(bias[on] != 0):
        raise Violation(f"{what}: the aligned diagonal j = i' should be 0, but got {bias[on][bias[on] != 0][:3]}")
    if np.any(bias[before] >= 0):
        raise Violation(f"{what}: entries with j < i' should be negative (−m·distance), but got "
                        f"{bias[before][bias[before] >= 0][:3]} (a sign flip?)")


def _examples(modes=("causal", "symmetric")):
    def strategy(caps, dtype):
        from hypothesis import strategies as st

        usable = [m for m in modes if m in caps.alibi_modes]
        if not usable or not caps.alibi_alignments:
            return st.nothing()
        return st.fixed_dictionaries({"H": st.integers(1, 24), "L": st.integers(1, 8), "S": st.integers(1, 12),
                                      "max_bias": st.sampled_from([8.0, 16.0, 4.0]), "mode": st.sampled_from(usable),
                                      "alignment": st.sampled_from(list(caps.alibi_alignments))})
    return strategy


def _slope_examples(caps, dtype):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({"H": st.integers(1, 80), "max_bias": st.sampled_from([8.0, 16.0, 4.0])})


def _edges(caps):
    """12 and 112 heads (not powers of two; BLOOM-176B has 112)."""
    return tuple({"H": n, "max_bias": 8.0} for n in (12, 112))


def _metrics(inv, dtype):
    from attnconf.conformance.judging.tolerance import rule_for

    rule = rule_for(inv.operation, dtype)
    return {"tolerance_ulps": inv_ulps(inv.operation, dtype),
            "rule": f"2 x (max(k x {INV_BASELINE_ULPS:g}, floor) + {rule.arg_ulps:g} x k_h) from "
                    f"TABLE[{inv.operation}, {dtype}] per compared result, in ulps of |m_h|·max(|d|, 1) "
                    "(k_h the power of head h's slope)"}


def _determinism(ctx: Context, seed: int):
    modes = ctx.caps.alibi_modes
    ex = {"H": 12, "L": 8, "S": 64, "max_bias": 8.0, "mode": modes[0] if modes else "causal",
          "alignment": (ctx.caps.alibi_alignments or ("bottom_right",))[0]}
    return lambda: call_bias(ctx, ex)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.alibi.geometric", "alibi_slopes", _slope_examples, prop_geometric, explicit=_edges,
              metrics=_metrics),
    Invariant("inv.alibi.diagonal", "alibi_bias", _examples(), prop_diagonal, metrics=_metrics),
)

DETERMINISM = DeterminismProbe("alibi_bias", _determinism, _metrics)
