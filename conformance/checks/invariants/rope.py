"""Invariants of rotary position embeddings (inv.rope.*) and their determinism probe. Named by the
registry entry attnconf/operations/rope.py (`invariants=`); run by checks.invariants.

Tolerance: each compared result may err, per element, by (max(k * INV_BASELINE_ULPS, floor) +
arg_ulps * |θ|) ulps of the pair's norm (times m), k, floor, arg_ulps from TABLE[rotary_embedding,
dtype], θ the channel's unscaled angle; a comparison allows twice the sum over its results."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, DeterminismProbe, INV_BASELINE_ULPS, Invariant, Violation, _TINY, _assert_within, inv_ulps
from attnconf.dtypes import EPS
from attnconf.reference.rope import pairs as rope_pairs   # the spec's pairing (rope.layout.*), indices only


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
    from attnconf.conformance.judging.tolerance import rule_for

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
    from attnconf.conformance.judging.tolerance import rule_for

    rule = rule_for("rotary_embedding", dtype)
    return {"tolerance_ulps": inv_ulps("rotary_embedding", dtype),
            "rule": f"2 x (max(k x {INV_BASELINE_ULPS:g}, floor) + {rule.arg_ulps:g} x |θ|) from "
                    f"TABLE[rotary_embedding, {dtype}] per compared result, in ulps of the pair's norm "
                    "(θ = p·base^(−2i/r), the channel's unscaled angle)"}


def _determinism_rope(ctx: Context, seed: int):
    ex = {"B": 2, "H": 2, "T": 16, "E": 16, "r": 0, "layout": ctx.caps.rope_layouts[0], "base": 10000.0,
          "scaling": "none", "offset": 1000, "shift": 1, "per_batch": False, "seed": seed}
    x, pos, opts = gen.rope_arrays(ex, ctx.dtype)
    return lambda: call_rope(ctx, x, pos, **opts)


INVARIANTS: tuple[Invariant, ...] = (
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

DETERMINISM = DeterminismProbe("rotary_embedding", _determinism_rope, _rope_metrics)
