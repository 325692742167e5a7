"""The project's own rounding of float64 values to float16 and bfloat16: one rule, no dependency's.

Rule (spec/tolerance.md, `tol.golden`): IEEE 754 round-to-nearest, ties-to-even, applied once,
straight from the float64 value to the target format:

    float16   11 significant bits, normal exponents -14 … 15, subnormals down to 2^-24
    bfloat16   8 significant bits, normal exponents -126 … 127, subnormals down to 2^-133

Magnitudes that round (with an unbounded exponent) to 2^(emax+1) or beyond become ±inf, as IEEE
overflow does; ±0, ±inf and NaN stay as they are; the sign of a value that underflows to 0 is
kept. The result is float64 (every float16 and bfloat16 value is a float64 value), so callers can
keep working in float64 or cast exactly with `to_dtype`.

Why our own: converting float64 -> bfloat16 with `x.astype(ml_dtypes.bfloat16)` rounds through
float32 in ml_dtypes 0.5 (twice: 1.37890628 -> 1.375) and once in 0.7 (-> 1.3828125), so golden
inputs depended on which version was installed. This module is integer arithmetic on the float64
bit pattern and gives the same bits with every NumPy on every platform.

Must not: import a framework or ml_dtypes at module level (only `to_dtype` needs a bfloat16
dtype to cast into, and then the cast is exact).
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Format:
    """A binary floating-point format: `precision` significant bits (with the implicit one),
    normal exponents `emin` … `emax`."""
    name: str
    precision: int
    emin: int
    emax: int

    @property
    def max_finite(self) -> float:
        return float((2 ** self.precision - 1) * 2.0 ** (self.emax - self.precision + 1))

    @property
    def smallest_subnormal(self) -> float:
        return float(2.0 ** (self.emin - self.precision + 1))


FLOAT16 = Format("float16", 11, -14, 15)
BFLOAT16 = Format("bfloat16", 8, -126, 127)
FORMATS = {f.name: f for f in (FLOAT16, BFLOAT16)}

_FRACTION_BITS = 52  # float64: 52 stored significand bits, exponent bias 1023
_BIAS = 1023
_MAX_SHIFT = 54      # dropping >= 54 bits of a 53-bit significand leaves less than half: 0


def round_to_format(x, fmt: Format) -> np.ndarray:
    """`x` (float64, any shape) rounded to nearest-even in `fmt`, as float64 values."""
    x = np.asarray(x, dtype=np.float64)
    bits = np.ascontiguousarray(x).view(np.uint64)
    biased = ((bits >> np.uint64(_FRACTION_BITS)) & np.uint64(0x7FF)).astype(np.int64)
    fraction = bits & np.uint64((1 << _FRACTION_BITS) - 1)
    # A float64 subnormal (< 2^-1022) is far below half of either format's smallest subnormal,
    # so only normal float64 values need their 53-bit significand m: |x| = m · 2^(e − 52).
    normal = (biased > 0) & (biased < 0x7FF)
    m = np.where(normal, fraction | np.uint64(1 << _FRACTION_BITS), np.uint64(0))
    e = biased - _BIAS
    # Bits to drop: all but `precision` at a normal exponent; more below emin (subnormals).
    shift = (_FRACTION_BITS - fmt.precision + 1) + np.maximum(fmt.emin - e, 0)
    shift = np.minimum(shift, _MAX_SHIFT).astype(np.uint64)
    kept = m >> shift
    rest = m & ((np.uint64(1) << shift) - np.uint64(1))
    half = np.uint64(1) << (shift - np.uint64(1))
    up = (rest > half) | ((rest == half) & ((kept & np.uint64(1)) == np.uint64(1)))
    kept = kept + up.astype(np.uint64)
    # kept < 2^(precision+1), so the float64 value below is exact; ldexp is exact here too.
    magnitude = np.ldexp(kept.astype(np.float64), (e - _FRACTION_BITS + shift.astype(np.int64)).astype(np.int32))
    magnitude = np.where(magnitude > fmt.max_finite, np.inf, magnitude)  # IEEE overflow
    out = np.copysign(magnitude, x)
    return np.where(normal, out, np.where(biased == 0, np.copysign(0.0, x), x))  # 0/subnormal, inf, NaN


def round_to_float16(x) -> np.ndarray:
    """`x` rounded once, to nearest-even, to float16 (float64 values)."""
    return round_to_format(x, FLOAT16)


def round_to_bfloat16(x) -> np.ndarray:
    """`x` rounded once, to nearest-even, to bfloat16 (float64 values)."""
    return round_to_format(x, BFLOAT16)


def to_dtype(x, name: str) -> np.ndarray:
    """`x` as an array of dtype `name` ("float64" | "float32" | "float16" | "bfloat16"), rounded
    once by the rule above for float16/bfloat16.

    An array already of that dtype is returned as is. float32 and float64 use NumPy's cast, which
    is a single IEEE rounding on every platform.
    """
    from attnconf.dtypes import numpy_dtype

    want = numpy_dtype(name)
    a = np.asarray(x)
    if a.dtype == want or name not in FORMATS:
        return a.astype(want)
    # Every float16/bfloat16 value is a float32 and a float64 value: the final cast is exact.
    return round_to_format(a.astype(np.float64), FORMATS[name]).astype(want)
