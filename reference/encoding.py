"""Sinusoidal positional encodings (spec section `enc`): the reference table and its addition.

For what: PE[p, ·] for positions p = offset + t (enc.positions) with every named variant
(enc.frequencies.*, enc.layout.*, enc.odd_dim), accurate to the exact mathematical value
(enc.target) at any position up to 10^6 and beyond:
  * default (float64) and exact=True: the angle p·ω is formed as a double-double (error-free
    TwoProduct of p with ω held as a double-double from mpmath), reduced mod 2π with a
    three-part 2π (Cody–Waite in double-double) — per block of rows, as R(b0) + R(t) — then
    sin(r_hi + r_lo) = sin r_hi + cos r_hi·r_lo.
    Default evaluates sin/cos of r_hi in float64 (<= 2 ulp); exact in long double (<= 1 ulp,
    a single final rounding). A naive float64 p·ω is ~6·10^4 ulp off at p = 10^5.
  * precision="float32": angles p·ω in float32 (as keras-hub and the PyTorch tutorial do);
    "float16"/"bfloat16": that float32 table rounded once (enc.dtype, tol.baseline).
Must not: import any framework; apply any √D scaling (enc.add).

Math: ω_i = base^(−2i/d), i < ⌈d/2⌉ (vaswani) or ω_i = base^(−i/max(n−1, 1)), i < n = ⌊d/2⌋
(t2t, zero column last for odd d); interleaved PE[p,2i] = sin(pω_i), PE[p,2i+1] = cos(pω_i);
concat [sin | cos]; cos_first [cos | sin].
Shapes: table (T, d) with T = num_positions; embeddings (B, T, D) for add_sinusoidal_encoding.
"""
from __future__ import annotations

import functools

import numpy as np

from attnconf.reference import precise
from attnconf.validation import check_array, check_choice, check_int, check_positive, fail

LAYOUTS = ("interleaved", "concat", "cos_first")
FREQUENCIES = ("vaswani", "t2t")
PRECISIONS = (None, "float64", "float32", "float16", "bfloat16")
MAX_POSITION = 2 ** 52  # positions must be exact float64 integers, and k·2π reduction exact


def check_options(num_positions, dim, base, offset, layout, frequencies, exact, precision):
    n = check_int("num_positions", num_positions, minimum=0)
    d = check_int("dim", dim, minimum=1)
    o = check_int("offset", offset, minimum=0)
    if n + o > MAX_POSITION:
        fail("offset + num_positions", f"<= 2^52", n + o)
    check_positive("base", base, expected="a finite number > 0 and != 1", excluded=(1.0,))
    check_choice("layout", layout, LAYOUTS)
    check_choice("frequencies", frequencies, FREQUENCIES)
    check_choice("precision", precision, PRECISIONS)
    if not isinstance(exact, (bool, np.bool_)):
        fail("exact", "a bool", repr(exact), TypeError)
    if exact and precision not in (None, "float64"):
        fail("precision", "None or 'float64' when exact=True", repr(precision))
    return n, d, o, float(base)


@functools.lru_cache(maxsize=128)
def frequencies_dd(dim: int, base: float, frequencies: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(ω_hi, ω_lo, n_cos): the sin frequencies as double-doubles (mpmath, 40 digits).

    enc.frequencies.vaswani: ⌈d/2⌉ sin columns, ⌊d/2⌋ cos columns (cos uses the first ⌊d/2⌋ ω).
    enc.frequencies.t2t: n = ⌊d/2⌋ sin and cos columns; odd d leaves a zero column.
    """
    import mpmath

    with mpmath.workdps(40):
        b = mpmath.mpf(base)
        if frequencies == "vaswani":
            n_sin, n_cos = (dim + 1) // 2, dim // 2
            omegas = [b ** (-mpmath.mpf(2 * i) / dim) for i in range(n_sin)]
        else:
            n = dim // 2
            n_sin = n_cos = n
            omegas = [b ** (-mpmath.mpf(i) / max(n - 1, 1)) for i in range(n)]
        parts = [precise.dd_from_mpf(w) for w in omegas]
    hi = np.array([p[0] for p in parts], dtype=np.float64)
    lo = np.array([p[1] for p in parts], dtype=np.float64)
    hi.setflags(write=False)
    lo.setflags(write=False)
    return hi, lo, n_cos


def reduced_angles(positions: np.ndarray, w_hi: np.ndarray, w_lo: np.ndarray):
    """(r_hi, r_lo): p·ω − k·2π as a double-double, |r| <= π, absolute error ~2^-100·p·ω.

    positions (T,) exact integers in float64; ω (n,). Result (T, n).
    """
    p = positions[:, None]
    ah, al = precise.two_prod(p, w_hi[None, :])  # exact: p·ω_hi
    al = al + p * w_lo[None, :]                  # p·ω_lo: ~2^-53 of a 2^-53-relative term
    ah, al = precise.fast_two_sum(ah, al)
    c0, c1, c2 = precise.two_pi_parts()
    k = np.rint(ah / c0)                         # |k| < 2^50 for p < 2^52 and ω <= 1
    t0, e0 = precise.two_prod(k, c0)             # exact: k·c0
    t1, e1 = precise.two_prod(k, c1)             # exact: k·c1
    rh, rl = precise.dd_add(ah, al, -t0, -e0)
    rh, rl = precise.dd_add(rh, rl, -t1, -e1)
    rh, rl = precise.dd_add(rh, rl, -(k * c2), np.zeros_like(rh))  # k·c2 ~ 2^-106·k: rounding negligible
    return rh, rl


def _sin_cos(rh, rl, exact: bool):
    """sin and cos of rh + rl: first-order correction, the rl²/2 term is below 2^-105."""
    if exact:
        h = rh.astype(np.longdouble)
        l = rl.astype(np.longdouble)
        sh, ch = np.sin(h), np.cos(h)
        return sh + ch * l, ch - sh * l  # long double: one final rounding to float64 later
    sh, ch = np.sin(rh), np.cos(rh)
    return sh + ch * rl, ch - sh * rl


def assemble(sin_cols: np.ndarray, cos_cols: np.ndarray, dim: int, layout: str, dtype) -> np.ndarray:
    """Place the sin and cos columns by layout (enc.layout.*, enc.odd_dim): (T, dim)."""
    t = sin_cols.shape[0]
    out = np.zeros((t, dim), dtype=dtype)
    ns, nc = sin_cols.shape[1], cos_cols.shape[1]
    if layout == "interleaved":
        out[:, 0:2 * ns:2] = sin_cols
        out[:, 1:2 * nc:2] = cos_cols
    elif layout == "concat":
        out[:, :ns] = sin_cols
        out[:, ns:ns + nc] = cos_cols
    else:  # cos_first
        out[:, :nc] = cos_cols
        out[:, nc:nc + ns] = sin_cols
    return out  # t2t with odd d: the last column stays zero


# Rows per chunk: temporaries stay near CHUNK_ELEMENTS (T, n) elements whatever the table size.
CHUNK_ELEMENTS = 1 << 20
# Rows per block of the fast reduction (see block_angles).
BLOCK_ROWS = 1024


def block_angles(offset: int, num_positions: int, w_hi, w_lo):
    """Yield (t0, t1, r_hi, r_lo): the reduced angles of rows t0 … t1−1, block by block.

    (offset + b0 + t)·ω ≡ R(b0) + R(t) (mod 2π), with R(x) = x·ω − k·2π the reduced angle of
    reduced_angles: R(t) for t < BLOCK_ROWS is computed once, R(b0) once per block and column,
    and their double-double sum (|·| <= 2π, no further reduction needed: sin and cos are
    periodic) costs a TwoSum per element instead of a full reduction. Error ~2^-100 as before.
    """
    rows = min(num_positions, BLOCK_ROWS)
    if rows == 0:
        return
    th, tl = reduced_angles(np.arange(rows, dtype=np.float64), w_hi, w_lo)
    for b0 in range(0, num_positions, rows):
        m = min(rows, num_positions - b0)
        bh, bl = reduced_angles(np.array([float(offset + b0)]), w_hi, w_lo)  # (1, n)
        s, e = precise.two_sum(bh, th[:m])
        e = e + (bl + tl[:m])
        rh, rl = precise.fast_two_sum(s, e)
        yield b0, b0 + m, rh, rl


def table_ld_or_f64(num_positions, dim, base, offset, layout, frequencies, exact):
    """The accurate table: long double when exact (before rounding), else float64."""
    w_hi, w_lo, n_cos = frequencies_dd(dim, base, frequencies)
    out = np.zeros((num_positions, dim), dtype=np.longdouble if exact else np.float64)
    for t0, t1, rh, rl in block_angles(offset, num_positions, w_hi, w_lo):  # enc.positions
        s, c = _sin_cos(rh, rl, exact)
        out[t0:t1] = assemble(s, c[:, :n_cos], dim, layout, s.dtype)
    return out


def table_float32(num_positions, dim, base, offset, layout, frequencies) -> np.ndarray:
    """The float32 baseline: ω rounded to float32, angle p·ω and sin/cos all in float32."""
    w_hi, w_lo, n_cos = frequencies_dd(dim, base, frequencies)
    w = w_hi.astype(np.float32)
    out = np.zeros((num_positions, dim), dtype=np.float32)
    rows = max(1, CHUNK_ELEMENTS // max(len(w), 1))
    for t0 in range(0, num_positions, rows):
        t1 = min(num_positions, t0 + rows)
        p = np.arange(offset + t0, offset + t1, dtype=np.float64).astype(np.float32)
        angle = p[:, None] * w[None, :]
        out[t0:t1] = assemble(np.sin(angle), np.cos(angle[:, :n_cos]), dim, layout, np.float32)
    return out


def sinusoidal_encoding(num_positions, dim, *, base=10000.0, offset=0, layout="interleaved",
                        frequencies="vaswani", exact=False, precision=None) -> np.ndarray:
    """The sinusoidal table PE (num_positions, dim) for positions offset … offset+num_positions−1.

    PE[t, 2i] = sin((offset+t)·ω_i), PE[t, 2i+1] = cos((offset+t)·ω_i) (interleaved layout),
    ω_i = base^(−2i/dim) (vaswani). float64 unless precision names a lower dtype.
    """
    n, d, o, b = check_options(num_positions, dim, base, offset, layout, frequencies, exact, precision)
    if precision in (None, "float64"):
        return table_ld_or_f64(n, d, b, o, layout, frequencies, exact).astype(np.float64)
    from attnconf.reference.rounding import to_dtype

    # enc.dtype: float32 angles; float16/bfloat16 round the float32 table once (the project's rule).
    return to_dtype(table_float32(n, d, b, o, layout, frequencies), precision)


def add_sinusoidal_encoding(embeddings, *, base=10000.0, offset=0, layout="interleaved",
                            frequencies="vaswani", exact=False, precision=None) -> np.ndarray:
    """enc.add: embeddings (B, T, D) + PE[offset … offset+T−1], no √D scaling.

    Default and exact return float64 (exact rounds x + PE once); a named precision adds the
    baseline table to the embeddings in that dtype.
    """
    x = check_array("embeddings", embeddings, ndim=3, legend="(B, T, D)")
    _, t, d = x.shape
    check_options(t, d, base, offset, layout, frequencies, exact, precision)
    if precision in (None, "float64"):
        pe = table_ld_or_f64(t, d, float(base), offset, layout, frequencies, exact)
        return (x.astype(pe.dtype) + pe[None]).astype(np.float64)
    from attnconf.reference.rounding import to_dtype

    # Rounded by the project's rule (once, nearest-even; reference/rounding.py), never a cast
    # whose float64 -> bfloat16 path depends on the ml_dtypes version.
    pe = to_dtype(table_float32(t, d, float(base), offset, layout, frequencies), precision)
    return to_dtype(to_dtype(x, precision).astype(np.float32) + pe.astype(np.float32)[None], precision)
