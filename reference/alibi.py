"""ALiBi (spec section `alibi`): the head slopes and the linear bias they scale.

For what: alibi.slopes — m_k = 2^(−b·k/n), k = 1 … n, for n = num_heads a power of two and
b = max_bias; otherwise the p = 2^⌊log₂ n⌋ slopes of p, then the slopes of 2p at odd k, the first
n − p of them (Press et al.; fairseq `get_slopes`; HF BLOOM `build_alibi_tensor`; MPT
`gen_slopes` with alibi_bias_max = b). alibi.bias — with i' = i + (S − L) (alibi.align.bottom_right)
or i' = i (alibi.align.top_left):
    causal        −m_h·(i' − j)      (the paper; no mask applied: j > i' gives positive entries)
    symmetric     −m_h·|i' − j|      (MPT bidirectional; FlashAttention's alibi_slopes)
    row_constant   m_h·j             (fairseq / BLOOM: the causal bias plus the per-row constant m·i')
  * exact=True: each slope, and each product of the real slope with an integer distance, from
    mpmath (40 digits), rounded once to float64.
  * default (float64): numpy exp2 of the exponent, products in float64.
  * precision="float32" | "float16" | "bfloat16": the same-precision baseline (alibi.dtype):
    slopes by exp2 and products in float32 (as HF BLOOM: float32 slopes and positions), rounded
    once to the dtype below float32.
Must not: import any framework; apply a mask (the caller's causal mask hides j > i').

Shapes: slopes (H,); bias (H, L, S), H = num_heads, L queries, S keys.
"""
from __future__ import annotations

import functools

import numpy as np

from attnconf.choices import ALIBI_ALIGNMENTS as ALIGNMENTS, ALIBI_MODES as MODES
from attnconf.reference.rounding import to_dtype
from attnconf.validation import check_choice, check_int, check_positive

PRECISIONS = (None, "float64", "float32", "float16", "bfloat16")


def check_max_bias(value) -> float:
    return check_positive("max_bias", value, not_real="a finite number > 0", not_real_exc=ValueError)


def exponents(num_heads: int, max_bias: float = 8.0) -> list[tuple[int, int]]:
    """(k, q) per head: its slope is 2^(−max_bias·k/q) (alibi.slopes; q = n or p then 2p)."""
    n = check_int("num_heads", num_heads, minimum=1)
    p = 1 << (n.bit_length() - 1)          # the largest power of two <= n
    heads = [(k, p) for k in range(1, p + 1)]
    heads += [(k, 2 * p) for k in range(1, 2 * p + 1, 2)][: n - p]
    return heads


@functools.lru_cache(maxsize=256)
def _exact_slopes(num_heads: int, max_bias: float) -> tuple[float, ...]:
    import mpmath

    with mpmath.workdps(40):
        b = mpmath.mpf(max_bias)
        return tuple(float(mpmath.power(2, -b * k / q)) for k, q in exponents(num_heads, max_bias))


@functools.lru_cache(maxsize=256)
def _exact_products(num_heads: int, max_bias: float, values: tuple[int, ...]) -> tuple:
    import mpmath

    with mpmath.workdps(40):
        b = mpmath.mpf(max_bias)
        return tuple(tuple(float(mpmath.power(2, -b * k / q) * v) for v in values)
                     for k, q in exponents(num_heads, max_bias))


def alibi_slopes(num_heads, *, max_bias=8.0, precision=None, exact=False) -> np.ndarray:
    """The (H,) slopes m_h (alibi.slopes): float64, or `precision`'s dtype for a baseline."""
    b = check_max_bias(max_bias)
    check_choice("precision", precision, PRECISIONS)
    heads = exponents(num_heads, b)
    if exact:
        return np.array(_exact_slopes(int(num_heads), b))
    if precision in (None, "float64"):
        return np.exp2(np.array([-b * k / q for k, q in heads]))
    x = np.array([-b * k / q for k, q in heads], dtype=np.float32)
    return _round(np.exp2(x), precision)


def distances(query_length, key_length, *, mode="causal", alignment="bottom_right") -> np.ndarray:
    """The integer (L, S) factor d of the bias m·d: −(i' − j), −|i' − j| or j (alibi.bias)."""
    L = check_int("query_length", query_length, minimum=1)
    S = check_int("key_length", key_length, minimum=1)
    check_choice("mode", mode, MODES)
    check_choice("alignment", alignment, ALIGNMENTS)
    i = np.arange(L, dtype=np.int64)[:, None] + (S - L if alignment == "bottom_right" else 0)
    j = np.arange(S, dtype=np.int64)[None, :]
    if mode == "causal":
        return j - i
    if mode == "symmetric":
        return -np.abs(i - j)
    return np.broadcast_to(j, (L, S)).copy()


def alibi_bias(num_heads, query_length, key_length, *, max_bias=8.0, mode="causal",
               alignment="bottom_right", precision=None, exact=False) -> np.ndarray:
    """The (H, L, S) bias m_h·d[i, j] (alibi.bias, alibi.align.*)."""
    d = distances(query_length, key_length, mode=mode, alignment=alignment)
    m = alibi_slopes(num_heads, max_bias=max_bias, precision=precision, exact=exact)
    if exact:
        values, where = np.unique(d, return_inverse=True)
        table = _exact_products(int(num_heads), check_max_bias(max_bias), tuple(int(v) for v in values))
        return np.asarray(table)[:, where.reshape(d.shape)]
    if precision in (None, "float64"):
        return m[:, None, None] * d[None].astype(np.float64)
    prod = np.asarray(m, dtype=np.float32)[:, None, None] * d[None].astype(np.float32)
    return _round(prod, precision)


def slope_powers(num_heads, max_bias=8.0) -> np.ndarray:
    """The power k of each head's slope in its geometric sequence (tol.rule's argument term: a
    kernel forming m_k as base^k rounds the base once and carries k times its error)."""
    return np.array([k for k, _ in exponents(num_heads, max_bias)], dtype=np.float64)


def _round(x32: np.ndarray, precision: str) -> np.ndarray:
    if precision == "float32":
        return x32.astype(np.float32)
    return to_dtype(x32.astype(np.float64), precision)
