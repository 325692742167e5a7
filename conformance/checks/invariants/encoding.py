"""Invariants of sinusoidal encodings (inv.enc.*) and their determinism probe. Named by the
registry entry attnconf/operations/encoding.py (`invariants=`); run by checks.invariants.

Tolerance (the encodings' own rule, not a TABLE row): an element at position p may err by
ENC_FLOOR_ULPS ulps of 1 plus the angle error ENC_ANGLE_FACTOR * p * ω * eps_angle (eps_angle =
float32's for tables below float64: the spec lets them compute p·ω in float32); 4 and 8 cover
the rounding of ω, of p·ω and of sin/cos (measured)."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, DeterminismProbe, Invariant, Violation, _assert_within, _needs
from attnconf.dtypes import EPS


ENC_FLOOR_ULPS = 4.0


ENC_ANGLE_FACTOR = 8.0


def angle_eps(dtype: str) -> float:
    return EPS["float64"] if dtype == "float64" else EPS["float32"]


def enc_delta(positions, omegas, dtype: str) -> np.ndarray:
    """Per-element allowance |PE_computed - PE_exact| at (position, frequency), see docstring."""
    p = np.abs(np.asarray(positions, np.float64))[:, None]
    return ENC_FLOOR_ULPS * EPS[dtype] + ENC_ANGLE_FACTOR * p * np.asarray(omegas)[None, :] * angle_eps(dtype)


def call_encoding(ctx: Context, n, dim, **options) -> np.ndarray:
    ad = ctx.adapter
    out = np.asarray(ad.to_numpy(ad.sinusoidal_encoding(n, dim, dtype=ctx.dtype, **options)))
    if out.shape != (n, dim):
        raise Violation(f"encoding table should have shape {(n, dim)}, but got {out.shape}")
    return out.astype(np.float64)


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


def _enc_strategy(caps, dtype):
    return gen.encoding_examples(caps.encoding_layouts, caps.encoding_frequencies,
                                 offset=caps.encoding_offset, base=caps.encoding_base)


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


def _enc_offset_strategy(caps, dtype):
    from hypothesis import strategies as st
    return gen.encoding_examples(caps.encoding_layouts, caps.encoding_frequencies, offset=True,
                                 base=caps.encoding_base).filter(lambda ex: ex["offset"] > 0) \
        if caps.encoding_offset else st.nothing()


def _enc_metrics(inv: Invariant, dtype: str) -> dict:
    """The encodings' own rule: a floor plus the angle's rounding (not a TABLE row)."""
    return {"tolerance_ulps": ENC_FLOOR_ULPS,
            "rule": f"per element {ENC_FLOOR_ULPS:g} ulp + {ENC_ANGLE_FACTOR:g}·p·ω·eps_angle "
                    "(eps_angle: float32's below float64), for each of the two compared tables"}


def _determinism_encoding(ctx: Context, seed: int):
    return lambda: call_encoding(ctx, 64, 16, offset=0 if not ctx.caps.encoding_offset else 1000)


INVARIANTS: tuple[Invariant, ...] = (
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
)

DETERMINISM = DeterminismProbe("sinusoidal_encoding", _determinism_encoding, _enc_metrics)
