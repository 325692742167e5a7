"""Rotary position embeddings (spec section `rope`): the reference rotation and its gradient.

For what: y = m·R(p·ω_i)(a, b) on every channel pair of x (rope.rotation), pairs chosen by the
layout (rope.layout.*), channels r … E−1 passed through (rope.partial), ω_i from the base and the
scaling rule (rope.frequencies, rope.scaling.*; m the YaRN attention factor, else 1), accurate to
the exact value (rope.target) at any position up to 10^6 and beyond:
  * default (float64) and exact=True: ω_i and m from mpmath (40 digits) held as double-doubles,
    the angle p·ω_i formed and reduced mod 2π in double-double exactly as the sinusoidal
    reference does (reference/encoding.reduced_angles), sin/cos with a first-order correction.
    Default: float64 sin/cos and rotation (<= 4 ulp of natural scale), streamed block by block
    (positions below 2^21 reduced by a cheaper Cody–Waite step to the same ~2^-56); exact: long
    double throughout, one final rounding (<= 1 ulp). A naive float64 p·ω is ~10^5 ulp off at 10^6.
  * precision="float32" | "float16" | "bfloat16": the same-precision baseline (rope.dtype,
    tol.baseline): ω and θ = p·ω in float32, cos and sin in float32 times m, rounded to the input
    dtype below float32 (as HF transformers does), the rotation in float32, rounded once.
Must not: import any framework; renumber positions (a decode step's offset is part of its input).

Math: ω_i = base^(−2i/r), i < r/2; θ = p·ω_i; (a, b) ↦ m·(a·cos θ − b·sin θ, b·cos θ + a·sin θ);
pairs (2i, 2i+1) (interleaved) or (i, i + r/2) (half). VJP: the cotangent rotated by −θ, times m.
Shapes: x (B, H, T, E); positions (T,) or (B, T), integers; r = rotary_dim (even, <= E).
"""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from attnconf.choices import ROPE_TYPES
from attnconf.reference import precise
from attnconf.reference.encoding import reduced_angles
from attnconf.validation import check_array, check_choice, check_positive, fail

LAYOUTS = ("interleaved", "half")
PRECISIONS = (None, "float64", "float32", "float16", "bfloat16")
MAX_POSITION = 2 ** 52  # exact float64 integers; reduction error stays ~2^-100·p·ω
# Required and optional fields of each scaling rule (HF transformers' names) with their defaults.
_FIELDS = {
    "linear": ((), {}),
    "dynamic": (("original_max_position_embeddings",), {}),
    "yarn": (("original_max_position_embeddings",),
             {"beta_fast": 32.0, "beta_slow": 1.0, "attention_factor": None, "truncate": True}),
    "llama3": (("original_max_position_embeddings",), {"low_freq_factor": 1.0, "high_freq_factor": 4.0}),
}


# --- arguments (rope.inputs) -------------------------------------------------------------------

def _real(what, value, *, positive=True):
    if positive:
        return check_positive(what, value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        fail(what, "a real number", repr(value), TypeError)
    v = float(value)
    if not math.isfinite(v):
        fail(what, "a finite number", repr(value))
    return v


def check_scaling(scaling, rotary_dim: int) -> tuple | None:
    """The scaling dict as a hashable, normalised tuple (rope_type, sorted (field, value) pairs)."""
    if scaling is None:
        return None
    if not isinstance(scaling, dict):
        fail("scaling", "None or a dict with HF transformers' rope_scaling fields", type(scaling).__name__, TypeError)
    kind = check_choice("scaling rope_type", scaling.get("rope_type"), ROPE_TYPES)
    required, optional = _FIELDS[kind]
    allowed = {"rope_type", "factor", *required, *optional}
    extra = sorted(set(scaling) - allowed)
    if extra:
        fail(f"scaling keys of rope_type {kind!r}", "among " + ", ".join(sorted(allowed)), ", ".join(extra))
    for name in ("factor",) + required:
        if name not in scaling:
            fail(f"scaling of rope_type {kind!r}", f"a dict containing {name!r}", f"keys {sorted(scaling)}")
    out = {"factor": _real("scaling factor", scaling["factor"])}
    if required:
        l0 = scaling["original_max_position_embeddings"]
        if isinstance(l0, (bool, np.bool_)) or not isinstance(l0, numbers.Integral) or l0 < 1:
            fail("scaling original_max_position_embeddings", "an integer >= 1", repr(l0))
        out["original_max_position_embeddings"] = int(l0)
    for name, default in optional.items():
        value = scaling.get(name, default)
        if name == "truncate":
            if not isinstance(value, (bool, np.bool_)):
                fail("scaling truncate", "a bool", repr(value), TypeError)
            value = bool(value)
        elif value is not None:
            value = _real(f"scaling {name}", value)
        out[name] = value
    if kind == "dynamic" and rotary_dim <= 2:
        fail("rotary_dim with dynamic scaling", "> 2 (the exponent is r/(r−2))", rotary_dim)
    if kind == "llama3" and not out["high_freq_factor"] > out["low_freq_factor"]:
        fail("scaling high_freq_factor", f"> low_freq_factor {out['low_freq_factor']:g}", out["high_freq_factor"])
    return (kind, tuple(sorted(out.items())))


def check_rotary_dim(rotary_dim, e: int) -> int:
    """r: the rotated channels (rope.partial), even with 2 <= r <= E; None rotates all E. Shared
    by the base-built operation and the one fed cos/sin caches (reference/rope_cache.py)."""
    r = e if rotary_dim is None else rotary_dim
    if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Integral):
        fail("rotary_dim", "None or an integer", repr(rotary_dim), TypeError)
    r = int(r)
    if r < 2 or r > e or r % 2:
        what = "rotary_dim" if rotary_dim is not None else "E (rotary_dim=None rotates every channel)"
        fail(what, f"even with 2 <= r <= E = {e}", r)
    return r


def check_arguments(x, positions, base, rotary_dim, scaling, layout, exact=False, precision=None):
    """(x, positions (P, T) int64 with P in {1, B}, r, normalised scaling); errors that teach."""
    x = check_array("x", x, ndim=4, legend="(B, H, T, E)")
    B, _, T, E = x.shape
    if not hasattr(positions, "shape") or not hasattr(positions, "dtype"):
        fail("positions", "an integer array of shape (T,) or (B, T)", type(positions).__name__, TypeError)
    pos = np.asarray(positions)
    if not np.issubdtype(pos.dtype, np.integer):
        fail("positions dtype", "an integer dtype", str(pos.dtype), TypeError)
    if pos.shape not in ((T,), (B, T)):
        fail("positions", f"of shape (T,) = ({T},) or (B, T) = ({B}, {T})", f"shape {pos.shape}", verb="be")
    if pos.size and (int(pos.min()) < 0 or int(pos.max()) > MAX_POSITION):
        fail("positions", "integers in [0, 2^52]", f"range [{int(pos.min())}, {int(pos.max())}]")
    r = check_rotary_dim(rotary_dim, E)
    base = _real("base", base)
    if base <= 1.0:
        fail("base", "a finite number > 1", repr(base))
    check_choice("layout", layout, LAYOUTS)
    check_choice("precision", precision, PRECISIONS)
    if not isinstance(exact, (bool, np.bool_)):
        fail("exact", "a bool", repr(exact), TypeError)
    if exact and precision not in (None, "float64"):
        fail("precision", "None or 'float64' when exact=True", repr(precision))
    return x, pos.astype(np.int64).reshape(-1, T), r, base, check_scaling(scaling, r)


# --- frequencies (rope.frequencies, rope.scaling.*) ---------------------------------------------

def _rule_length(scaling, pos: np.ndarray):
    """L = max position + 1 for dynamic scaling (rope.scaling.dynamic), None otherwise."""
    if scaling is None or scaling[0] != "dynamic":
        return None
    return int(pos.max()) + 1 if pos.size else 0


@functools.lru_cache(maxsize=256)
def frequencies_dd(r: int, base: float, scaling, length):
    """(ω_hi, ω_lo, m_hi, m_lo): the r/2 frequencies and the attention factor as double-doubles."""
    import mpmath

    with mpmath.workdps(40):
        omegas, m = _frequencies_mp(r, mpmath.mpf(base), scaling, length)
        parts = [precise.dd_from_mpf(w) for w in omegas]
        m_hi, m_lo = precise.dd_from_mpf(m)
    hi = np.array([p[0] for p in parts], dtype=np.float64)
    lo = np.array([p[1] for p in parts], dtype=np.float64)
    hi.setflags(write=False)
    lo.setflags(write=False)
    return hi, lo, m_hi, m_lo


def _frequencies_mp(r, b, scaling, length):
    import mpmath

    n = r // 2
    plain = [b ** (-mpmath.mpf(2 * i) / r) for i in range(n)]
    if scaling is None:                                           # rope.frequencies
        return plain, mpmath.mpf(1)
    kind, fields = scaling[0], dict(scaling[1])
    f = mpmath.mpf(fields["factor"])
    if kind == "linear":                                          # rope.scaling.linear
        return [w / f for w in plain], mpmath.mpf(1)
    l0 = mpmath.mpf(fields["original_max_position_embeddings"])
    if kind == "dynamic":                                         # rope.scaling.dynamic
        if length is None or length <= l0:
            return plain, mpmath.mpf(1)
        b2 = b * ((f * length / l0) - (f - 1)) ** (mpmath.mpf(r) / (r - 2))
        return [b2 ** (-mpmath.mpf(2 * i) / r) for i in range(n)], mpmath.mpf(1)
    if kind == "yarn":                                            # rope.scaling.yarn
        def corr(beta):
            return r * mpmath.log(l0 / (2 * mpmath.pi * mpmath.mpf(beta))) / (2 * mpmath.log(b))
        low, high = corr(fields["beta_fast"]), corr(fields["beta_slow"])
        if fields["truncate"]:
            low, high = mpmath.floor(low), mpmath.ceil(high)
        low, high = max(low, mpmath.mpf(0)), min(high, mpmath.mpf(r - 1))
        if low == high:
            high = low + mpmath.mpf("0.001")
        out = []
        for i, w in enumerate(plain):
            ramp = min(max((i - low) / (high - low), mpmath.mpf(0)), mpmath.mpf(1))
            extrap = 1 - ramp
            out.append((w / f) * (1 - extrap) + w * extrap)
        given = fields["attention_factor"]
        m = mpmath.mpf(given) if given is not None else (
            mpmath.mpf(1) if f <= 1 else mpmath.mpf("0.1") * mpmath.log(f) + 1)
        return out, m
    lo_f, hi_f = mpmath.mpf(fields["low_freq_factor"]), mpmath.mpf(fields["high_freq_factor"])
    out = []                                                      # rope.scaling.llama3
    for w in plain:
        wavelen = 2 * mpmath.pi / w
        if wavelen > l0 / lo_f:
            out.append(w / f)
        elif wavelen < l0 / hi_f:
            out.append(w)
        else:
            s = (l0 / wavelen - lo_f) / (hi_f - lo_f)
            out.append((1 - s) * w / f + s * w)
    return out, mpmath.mpf(1)


def pairs(r: int, layout: str):
    """Channel indices (first, second) of each pair (rope.layout.interleaved / rope.layout.half)."""
    i = np.arange(r // 2)
    return (2 * i, 2 * i + 1) if layout == "interleaved" else (i, i + r // 2)


# --- the rotation ------------------------------------------------------------------------------

def _rotate(x, positions, base, rotary_dim, scaling, layout, exact, precision, sign):
    x, pos, r, base, rule = check_arguments(x, positions, base, rotary_dim, scaling, layout, exact, precision)
    w_hi, w_lo, m_hi, m_lo = frequencies_dd(r, base, rule, _rule_length(rule, pos))
    ia, ib = pairs(r, layout)
    if precision not in (None, "float64"):
        return _rotate_low(x, pos, ia, ib, w_hi, m_hi, precision, sign)
    if not exact:
        return _rotate_default(x, pos, r, layout, _unit_rotations(pos, w_hi, w_lo, sign), m_hi)
    P, T = pos.shape
    n = r // 2
    rh, rl = reduced_angles(pos.reshape(-1).astype(np.float64), w_hi, w_lo)   # θ = p·ω mod 2π
    rh, rl = rh.reshape(P, 1, T, n), rl.reshape(P, 1, T, n)
    # one final rounding: sin/cos, products and m in long double
    xw = np.asarray(x, dtype=np.float64).astype(np.longdouble)
    h, l = rh.astype(np.longdouble), rl.astype(np.longdouble)
    sh, ch = np.sin(h), np.cos(h)
    s, c = sign * (sh + ch * l), ch - sh * l
    m = precise.to_ld(m_hi, m_lo)
    a, b = xw[..., ia], xw[..., ib]
    out = xw.copy()                                              # rope.partial: r … E−1 pass through
    ya, yb = a * c - b * s, b * c + a * s                        # rope.rotation
    if m != 1:
        ya, yb = m * ya, m * yb                                  # rope.scaling.yarn: attention factor
    out[..., ia], out[..., ib] = ya, yb
    return out.astype(np.float64)


# The default path streams x once: blocks of ~1 MiB of x (and of the output) stay in L2 while
# they are rotated, and the angles are formed in blocks of positions that stay in cache, so the
# call moves little more than x in and the output out (perf.bytes; docs/speed.md, target 3).
BLOCK_BYTES = 1 << 20
ANGLE_BLOCK = 16384          # angles per block of reduced_angles (its temporaries ~128 KiB each)


FAST_REDUCTION_BELOW = 2 ** 21   # positions under which _short_reduction is exact to ~2^-56 (1/8 ulp of 1)


def _unit_rotations(pos, w_hi, w_lo, sign):
    """(P, T, n) complex128 cos θ + i·sign·sin θ, θ = p·ω_i reduced mod 2π (below 2^21 by
    _short_reduction, else in double-double by reference/encoding.reduced_angles), sin/cos
    corrected to first order, as the exact path."""
    n = w_hi.shape[0]
    flat = pos.reshape(-1).astype(np.float64)
    z = np.empty((flat.size, n), dtype=np.complex128)
    step = max(1, ANGLE_BLOCK // n)
    short = not flat.size or flat.max() < FAST_REDUCTION_BELOW
    reduce = _short_reduction if short else reduced_angles
    for i in range(0, flat.size, step):
        rh, rl = reduce(flat[i:i + step], w_hi, w_lo)
        sh, ch = np.sin(rh), np.cos(rh)
        z.real[i:i + step] = ch - sh * rl
        z.imag[i:i + step] = sign * (sh + ch * rl)
    return z.reshape(pos.shape + (n,))


@functools.lru_cache(maxsize=1)
def _two_pi_short_parts() -> tuple[float, float, float]:
    """2π = C0 + C1 + C2 (+ < 2^-110): C0, C1 of 30 significant bits each, C2 rounded."""
    import mpmath

    with mpmath.workdps(60):
        rest, parts = 2 * mpmath.pi, []
        for _ in range(2):
            e = int(mpmath.floor(mpmath.log(rest, 2)))
            c = mpmath.floor(rest * mpmath.mpf(2) ** (29 - e)) * mpmath.mpf(2) ** (e - 29)
            parts.append(float(c))     # exact: 30 bits
            rest -= c
        return parts[0], parts[1], float(rest)


def _short_reduction(positions, w_hi, w_lo):
    """(r_hi, r_lo): p·ω − k·2π for integer positions p < 2^21, absolute error < 2^-56.

    Cody–Waite: ω_hi = w1 + w2 with w1 of 26 significant bits, so p·w1 (p: 21 bits) and k·C0,
    k·C1 (k < 2^19, C0, C1: 30 bits) are exact and p·w1 − k·C0 is exact (Sterbenz); what is left,
    p·w2 − k·C1 + p·ω_lo − k·C2, is below 2^-4 and its three roundings stay under 2^-56. Four times cheaper than
    reduced_angles' double-double products, which the default path otherwise spends most time on.
    """
    c0, c1, c2 = _two_pi_short_parts()
    w1 = (w_hi.view(np.uint64) & np.uint64(~((1 << 27) - 1) & (2 ** 64 - 1))).view(np.float64)
    w2 = w_hi - w1
    p = positions[:, None]
    h = p * w1                                   # exact
    k = np.rint(h * (1.0 / c0))
    r0 = h - k * c0                              # exact
    t = (p * w2 - k * c1) + (p * w_lo - k * c2)
    return precise.two_sum(r0, t)


def _rotate_default(x, pos, r, layout, z, m):
    """float64 rotation of x (B, H, T, E) by z (P, T, n), block by block (rope.rotation, rope.partial)."""
    xw = np.ascontiguousarray(x, dtype=np.float64)
    B, H, T, E = xw.shape
    out = np.empty_like(xw)
    if r < E:
        out[..., r:] = xw[..., r:]                               # rope.partial: pass through
    if z.shape[0] == 1:   # one set of positions: batch and heads are one axis of rows
        groups = [(xw.reshape(B * H, T, E), out.reshape(B * H, T, E), z[0])]
    else:
        groups = [(xw[b], out[b], z[b]) for b in range(B)]
    rows = max(1, BLOCK_BYTES // (8 * E))
    tb = min(T, rows)
    hb = max(1, rows // tb)
    for xg, og, zg in groups:
        for h in range(0, xg.shape[0], hb):
            for t in range(0, T, tb):
                _rotate_block(xg[h:h + hb, t:t + tb], og[h:h + hb, t:t + tb], zg[t:t + tb], r, layout, m)
    return out


def _rotate_block(x, out, z, r, layout, m):
    """One block: out[..., :r] = m·R(θ)·x[..., :r] by the layout's pairs (rope.layout.*)."""
    if layout == "interleaved":
        # The pair (a, b) at (2i, 2i+1) is the complex number a + i·b, and R(θ)(a, b) is
        # (a + i·b)·(cos θ + i·sin θ): one pass of NumPy's complex product over the block.
        np.multiply(x[..., :r].view(np.complex128), z, out=out[..., :r].view(np.complex128))
    else:
        n = r // 2
        a, b, c, s = x[..., :n], x[..., n:r], z.real, z.imag
        u, v = a * c, b * s
        np.subtract(u, v, out=out[..., :n])
        np.multiply(b, c, out=u)
        np.multiply(a, s, out=v)
        np.add(u, v, out=out[..., n:r])
    if m != 1:
        out[..., :r] *= m                                        # rope.scaling.yarn: attention factor


def _rotate_low(x, pos, ia, ib, w_hi, m, precision, sign):
    """The same-precision baseline (rope.dtype): float32 angles; cos/sin rounded to the dtype."""
    from attnconf.reference.rounding import to_dtype

    xd = to_dtype(np.asarray(x, dtype=np.float64), precision)
    xf = xd.astype(np.float32)
    theta = pos.astype(np.float32)[:, None, :, None] * w_hi.astype(np.float32)   # (P, 1, T, n)
    c, s = np.cos(theta), sign * np.sin(theta)
    if m != 1:
        c, s = c * np.float32(m), s * np.float32(m)
    if precision != "float32":
        c = to_dtype(c, precision).astype(np.float32)
        s = to_dtype(s, precision).astype(np.float32)
    a, b = xf[..., ia], xf[..., ib]
    out = xf.copy()
    out[..., ia], out[..., ib] = a * c - b * s, b * c + a * s
    result = to_dtype(out, precision)
    # pass-through channels are x itself, whatever the float32 detour did (it is exact anyway)
    return result


def rotary_embedding(x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                     layout="interleaved", exact=False, precision=None) -> np.ndarray:
    """x (B, H, T, E) with every channel pair rotated by its position's angle (spec rope.*).

    y[..., first_i] = m·(a·cos θ − b·sin θ), y[..., second_i] = m·(b·cos θ + a·sin θ), θ = p·ω_i,
    (a, b) = x's pair i (layout), channels rotary_dim … E−1 unchanged. float64 unless
    precision names a lower dtype (then that dtype: the same-precision baseline).
    """
    return _rotate(x, positions, base, rotary_dim, scaling, layout, exact, precision, 1.0)


def rotary_embedding_vjp(grad_output, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved", exact=False, precision=None) -> np.ndarray:
    """The gradient with respect to x of ⟨rotary_embedding(x, …), grad_output⟩: y is linear in x
    with the orthogonal map m·R(θ), so dx = m·R(−θ)·grad_output pairwise; pass-through channels
    get grad_output unchanged. Shapes as rotary_embedding's (x is not needed)."""
    return _rotate(grad_output, positions, base, rotary_dim, scaling, layout, exact, precision, -1.0)


def natural_scale(x, positions, *, base=10000.0, rotary_dim=None, scaling=None, layout="interleaved"):
    """rope.scale: m·√(a² + b²) on both channels of each pair, |x| on pass-through channels."""
    x, pos, r, base, rule = check_arguments(x, positions, base, rotary_dim, scaling, layout)
    _, _, m, _ = frequencies_dd(r, base, rule, _rule_length(rule, pos))
    ia, ib = pairs(r, layout)
    xf = np.asarray(x, dtype=np.float64)
    out = np.abs(xf)
    norm = m * np.hypot(xf[..., ia], xf[..., ib])
    out[..., ia], out[..., ib] = norm, norm
    return out


def angles(x_shape, positions, *, base=10000.0, rotary_dim=None, scaling=None, layout="interleaved"):
    """|θ| = p·ω_i of every output channel (0 on pass-through channels), shape (P, 1, T, E) with
    P = 1 or B: the argument a correct implementation must round (tol.rule's argument term)."""
    x = np.zeros((x_shape[0], 1, x_shape[2], x_shape[3]))
    _, pos, r, base, rule = check_arguments(x, positions, base, rotary_dim, scaling, layout)
    w_hi, _, _, _ = frequencies_dd(r, base, rule, _rule_length(rule, pos))
    ia, ib = pairs(r, layout)
    theta = pos.astype(np.float64)[:, None, :, None] * w_hi
    out = np.zeros((pos.shape[0], 1, pos.shape[1], x_shape[3]))
    out[..., ia], out[..., ib] = theta, theta
    return out
