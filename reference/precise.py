"""Extended-precision building blocks for the reference's exact (golden-grade) paths.

For what: double-double ("dd") arithmetic on NumPy float64 arrays — a value is the unevaluated
sum hi + lo with |lo| <= ulp(hi)/2, about 106 significant bits — error-free transformations
(TwoSum, Dekker's FMA-free TwoProduct), an error-free matrix product (Ozaki splitting, run on the
ordinary float64 BLAS), constants held as dd (computed once with mpmath), and access to the
80-bit x87 `np.longdouble` (64-bit significand) used for the exponentials and the sums of the
exact attention path.
Must not: import any framework; trade accuracy for speed (the default paths live elsewhere).

Error-free means: two_sum(a, b) returns (s, e) with s + e == a + b exactly; two_prod likewise
for a · b; dd_matmul(A, B) returns (hi, lo) with |hi + lo − A·B| <= 2^-100 · (|A|·|B|) entrywise.
Assumes no overflow or underflow (|x| < 2^995 for the Dekker split, products above 2^-960).
"""
from __future__ import annotations

import functools
import math

import numpy as np

# Dekker/Veltkamp split constant 2^27 + 1: hi gets 26 significant bits, lo the other 27.
_SPLITTER = 134217729.0

LONGDOUBLE_BITS = np.finfo(np.longdouble).nmant + 1  # 64 on x86-64 Linux, 53 where it is double
HAVE_LONGDOUBLE = np.finfo(np.longdouble).nmant >= 63


def two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth, no ordering needed)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def fast_two_sum(a, b):
    """(s, e) with s + e = a + b exactly, valid when |a| >= |b| (or a == 0)."""
    s = a + b
    e = b - (s - a)
    return s, e


def split(a):
    """Veltkamp split: a = hi + lo exactly, hi and lo with at most 26 and 27 significant bits."""
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a, b):
    """(p, e) with p = fl(a · b) and p + e = a · b exactly (Dekker; no FMA needed)."""
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def dd_add(ah, al, bh, bl):
    """(ah + al) + (bh + bl) in double-double (the accurate 'IEEE' variant)."""
    s, e = two_sum(ah, bh)
    t, f = two_sum(al, bl)
    e = e + t
    s, e = fast_two_sum(s, e)
    e = e + f
    return fast_two_sum(s, e)


def dd_mul(ah, al, bh, bl):
    """(ah + al) · (bh + bl) in double-double (relative error about 2^-104)."""
    p, e = two_prod(ah, bh)
    e = e + (ah * bl + al * bh)
    return fast_two_sum(p, e)


def dd_from_mpf(x) -> tuple[float, float]:
    """An mpmath number as the nearest double-double (hi, lo)."""
    import mpmath

    hi = float(x)
    lo = float(x - mpmath.mpf(hi))
    return hi, lo


@functools.lru_cache(maxsize=256)
def inv_sqrt_dd(n: int) -> tuple[float, float]:
    """1/√n as a double-double: the exact default scale of sdpa.scale.default."""
    import mpmath

    with mpmath.workdps(40):
        return dd_from_mpf(1 / mpmath.sqrt(n))


@functools.lru_cache(maxsize=1)
def two_pi_parts() -> tuple[float, float, float]:
    """2π as c0 + c1 + c2 (three doubles, ~159 bits): the Cody–Waite constants for reduction."""
    import mpmath

    with mpmath.workdps(60):
        x = 2 * mpmath.pi
        c0 = float(x)
        c1 = float(x - c0)
        c2 = float(x - c0 - c1)
    return c0, c1, c2


def to_ld(hi, lo=None) -> np.ndarray:
    """hi (+ lo) as np.longdouble (rounds to 64 bits when lo is given)."""
    out = np.asarray(hi, dtype=np.longdouble)
    if lo is not None:
        out = out + np.asarray(lo, dtype=np.longdouble)
    return out


# ---------------------------------------------------------------------------------------------
# Error-free matrix product (Ozaki, Ogita, Oishi, Rump 2012), on float64 BLAS.
#
# A row of A is cut into slices A = A_1 + A_2 + …: slice t holds the bits of the row's residual
# that lie on the grid 2^(τ+β−52), where 2^τ bounds the residual row. Each slice entry then has
# at most 53 − β significant bits, every product of an A-slice entry and a B-slice entry lies on
# the grid 2^(τa+τb+2β−104) below 2^(τa+τb+2), and a K-term sum of them is below
# K·2^(106−2β) <= 2^53 grid units when β >= (53 + log2 K)/2: every partial sum is representable,
# so fl(A_s @ B_t) is exact whatever order or FMA the BLAS uses. The exact partial products are
# then added in double-double.
# ---------------------------------------------------------------------------------------------

def _beta(k: int) -> int:
    return (53 + max(0, math.ceil(math.log2(max(k, 1)))) + 1) // 2 + 1  # one bit of margin


def _slices(a: np.ndarray, axis: int, beta: int, count: int) -> list[np.ndarray]:
    """Cut `a` into up to `count` slices along the contracted `axis`; the last is the residual."""
    out = []
    r = np.array(a, dtype=np.float64, copy=True)
    for _ in range(count - 1):
        mx = np.max(np.abs(r), axis=axis, keepdims=True) if r.size else np.zeros(())
        if not np.any(mx):
            break
        _, tau = np.frexp(mx)  # mx < 2^tau
        sigma = np.ldexp(1.5, tau + beta)  # keeps r + sigma inside one binade: exact extraction
        s = (r + sigma) - sigma
        out.append(s)
        r = r - s  # exact: r minus its rounding to a coarser grid
    if np.any(r):
        out.append(r)  # residual below 2^-(count-1)(52-β) of the row: its product is rounded once
    return out


def dd_matmul_sum(pairs, max_slices: int = 6):
    """Σ A_p @ B_p over the (A_p, B_p) pairs, as a double-double (hi, lo).

    A_p (..., M, K), B_p (..., K, N), broadcastable batch dimensions. Error <= about
    2^-100 · Σ_p |A_p|·|B_p| entrywise (slices whose product lies below that are skipped).
    """
    terms = []
    for a, b in pairs:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        beta = _beta(a.shape[-1])
        bits = 52 - beta  # each slice shrinks the residual by at least 2^bits
        sa = _slices(a, -1, beta, max_slices)
        sb = _slices(b, -2, beta, max_slices)
        for i, x in enumerate(sa):
            for j, y in enumerate(sb):
                if (i + j) * bits > 112:
                    continue  # below 2^-112 relative to the leading product
                terms.append((i + j, np.matmul(x, y)))
    if not terms:
        a, b = pairs[0]
        z = np.zeros(np.broadcast_shapes(np.shape(a)[:-1] + (1,), np.shape(b)[:-2] + (1, np.shape(b)[-1])))
        return z, np.zeros_like(z)
    terms.sort(key=lambda t: t[0])
    hi = np.zeros(np.broadcast_shapes(*(t[1].shape for t in terms)))
    lo = np.zeros_like(hi)
    for _, t in terms:
        hi, e = two_sum(hi, t)
        lo = lo + e
    return fast_two_sum(hi, lo)


def dd_matmul(a, b, max_slices: int = 6):
    """A @ B as a double-double (hi, lo); see dd_matmul_sum."""
    return dd_matmul_sum([(a, b)], max_slices)


def ld_matmul(a: np.ndarray, b: np.ndarray, block: int | None = None) -> np.ndarray:
    """A @ B in long double with the contraction cut into blocks.

    NumPy's long-double matmul accumulates sequentially; with blocks of c = max(64, ⌈√K⌉) terms
    whose partial results are then added, each entry errs by at most (c + K/c) · 2^-64 · Σ|a||b|,
    i.e. <= (2√K + 64) · 2^-64 (2^-54.8 for K = 65 536).
    """
    a = np.asarray(a, dtype=np.longdouble)
    b = np.asarray(b, dtype=np.longdouble)
    k = a.shape[-1]
    c = block or max(64, math.isqrt(max(k - 1, 0)) + 1)
    if k <= c:
        return np.matmul(a, b)
    out = None
    for j in range(0, k, c):
        part = np.matmul(a[..., j:j + c], b[..., j:j + c, :])
        out = part if out is None else out + part
    return out
