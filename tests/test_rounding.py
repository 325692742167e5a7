"""Tests of attnconf.reference.rounding against an independent definition of round-to-nearest-even.

The reference definition is exact rational arithmetic (fractions.Fraction) over the list of every
non-negative value of the format, built from its encoding (sign, exponent field, significand
field): a value goes to the nearest one, a tie to the one whose encoding is even, and the code one
past the largest finite value (the infinity code, whose value by the normal-number formula is
2^(emax+1)) stands for overflow, as IEEE's "round with unbounded exponent" says. Nothing here uses
the module's bit manipulation or a dependency's float64 conversion.

Must not: test the golden files (test_golden_files.py does).
"""
from __future__ import annotations

import bisect
import math
from fractions import Fraction
from functools import lru_cache

import ml_dtypes
import numpy as np
import pytest

from attnconf.reference import rounding
from attnconf.reference.rounding import BFLOAT16, FLOAT16, round_to_format

FORMATS = {"float16": FLOAT16, "bfloat16": BFLOAT16}
# The format's 16-bit encoding: (exponent-field bits, significand-field bits).
FIELDS = {"float16": (5, 10), "bfloat16": (8, 7)}
DECODERS = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


@lru_cache(maxsize=None)
def _codes(name: str) -> tuple[list[Fraction], int]:
    """Values of codes 0 … inf-code (non-negative), from the encoding's definition; the inf code."""
    ebits, mbits = FIELDS[name]
    bias = 2 ** (ebits - 1) - 1
    values = []
    for code in range(((2 ** ebits - 1) << mbits) + 1):
        field, frac = code >> mbits, code & (2 ** mbits - 1)
        if field == 0:
            values.append(Fraction(frac) * Fraction(2) ** (1 - bias - mbits))
        else:
            values.append(Fraction(2 ** mbits + frac) * Fraction(2) ** (field - bias - mbits))
    return values, len(values) - 1


def reference_round(x: float, name: str) -> float:
    """x rounded to nearest-even in format `name`, by exact rationals; float64 result."""
    if math.isnan(x) or math.isinf(x):
        return x
    values, inf_code = _codes(name)
    a = Fraction(abs(x))
    i = bisect.bisect_left(values, a)
    if i > inf_code:
        code = inf_code
    elif values[i] == a:
        code = i
    else:
        lo, hi = i - 1, i
        d_lo, d_hi = a - values[lo], values[hi] - a
        code = lo if d_lo < d_hi else hi if d_hi < d_lo else (lo if lo % 2 == 0 else hi)
    magnitude = math.inf if code == inf_code else float(values[code])
    return math.copysign(magnitude, x)


def _same_bits(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Elementwise: identical float64 bit patterns, any NaN matching any NaN."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return (a.view(np.uint64) == e.view(np.uint64)) | (np.isnan(a) & np.isnan(e))


def assert_rounds_like_reference(values, name: str):
    __tracebackhide__ = True
    x = np.asarray(values, dtype=np.float64)
    got = round_to_format(x, FORMATS[name])
    want = np.array([reference_round(float(v), name) for v in x.ravel()]).reshape(x.shape)
    ok = _same_bits(got, want)
    if not ok.all():
        bad = np.flatnonzero(~ok.ravel())
        i = int(bad[0])
        raise AssertionError(
            f"round_to_format(x, {name}) should equal the exact nearest-even value, but got "
            f"{bad.size} of {ok.size} different; first x = {x.ravel()[i]!r}: got {got.ravel()[i]!r}, "
            f"reference {want.ravel()[i]!r}")


def _edge_values(name: str) -> list[float]:
    """Ties both ways, neighbours of ties, largest finite, overflow threshold, subnormal limits."""
    values, inf_code = _codes(name)
    fmt = FORMATS[name]
    v = lambda code: float(values[code])  # noqa: E731
    mid = lambda lo: float((values[lo] + values[lo + 1]) / 2)  # noqa: E731  exact in float64
    one = values.index(Fraction(1))
    smallest_normal = values.index(Fraction(2) ** fmt.emin)
    out = [0.0, v(1), v(1) / 2, v(1) * 1.5, v(1) / 4, v(inf_code - 1), mid(inf_code - 1),
           v(inf_code), 2.0 ** (fmt.emin - 1), 1e300, 2.0 ** -1074, 2.0 ** -1022]
    for lo in (0, 1, 2, 3, one - 1, one, one + 1, smallest_normal - 1, smallest_normal,
               inf_code - 2, inf_code - 1):
        m = mid(lo)  # lo even: tie goes down; lo odd: tie goes up
        out += [m, np.nextafter(m, -np.inf), np.nextafter(m, np.inf), v(lo)]
    out += [np.nextafter(v(inf_code - 1), np.inf), np.nextafter(v(1) / 2, 0.0)]
    return out + [-x for x in out] + [math.inf, -math.inf, math.nan, -0.0]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_code_table_decodes_like_the_dtype(name):
    # The reference's value list is the format's: decoding each 16-bit pattern agrees.
    values, inf_code = _codes(name)
    decoded = np.arange(inf_code + 1, dtype=np.uint16).view(DECODERS[name]).astype(np.float64)
    want = np.array([float(v) for v in values[:-1]] + [math.inf])
    assert np.array_equal(decoded, want), f"{name} code table should decode like {DECODERS[name]}, but differs"
    assert float(values[inf_code - 1]) == FORMATS[name].max_finite
    assert float(values[1]) == FORMATS[name].smallest_subnormal


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_edge_cases_match_the_exact_definition(name):
    assert_rounds_like_reference(_edge_values(name), name)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_tie_between_consecutive_values_goes_to_even(name):
    # Every midpoint of the format (exact in float64) and its two float64 neighbours.
    values, inf_code = _codes(name)
    mids = np.array([float((values[i] + values[i + 1]) / 2) for i in range(inf_code)])
    stride = 7 if name == "bfloat16" else 5  # a spread of ~5000 ties keeps the test quick
    picked = mids[::stride]
    x = np.concatenate([picked, np.nextafter(picked, -np.inf), np.nextafter(picked, np.inf)])
    assert_rounds_like_reference(np.concatenate([x, -x]), name)


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_float64_values_match_the_exact_definition(name, seed):
    rng = np.random.default_rng(seed)
    fmt = FORMATS[name]
    # Log-uniform magnitudes from below the smallest subnormal to beyond the largest finite.
    exponents = rng.uniform(fmt.emin - fmt.precision - 3, fmt.emax + 2, 1500)
    x = np.exp2(exponents) * rng.choice([-1.0, 1.0], exponents.size)
    raw = rng.integers(0, 2 ** 64, 500, dtype=np.uint64).view(np.float64)  # any bit pattern
    assert_rounds_like_reference(np.concatenate([x, raw]), name)


def test_the_issue_value_rounds_once_not_through_float32():
    # ml_dtypes 0.5 gave bfloat16(float32(x)) for float64 x: two roundings. The rule is one.
    x = 1.37890628
    single = reference_round(x, "bfloat16")
    double = reference_round(float(np.float32(x)), "bfloat16")
    assert single != double, "the example should distinguish single from double rounding"
    assert rounding.round_to_bfloat16(np.array([x]))[0] == single, (
        f"round_to_bfloat16({x}) should be {single}, but got {rounding.round_to_bfloat16(np.array([x]))[0]}")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_float32_inputs_agree_with_single_rounding_casts(name):
    # From float32 the dependencies' casts round once (float16: NumPy; bfloat16: ml_dtypes), so
    # they must agree bit for bit with the rule on every kind of float32: all exponents, NaN, inf.
    rng = np.random.default_rng(7)
    x32 = rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x32.astype(DECODERS[name]).astype(np.float64)
        x64 = x32.astype(np.float64)  # a signalling NaN raises 'invalid' on the way
    got = round_to_format(x64, FORMATS[name])
    ok = _same_bits(got, want)
    assert ok.all(), (f"rule should match {name} single rounding of float32, but got {(~ok).sum()} "
                      f"different, first x = {x32[~ok][0]!r}: rule {got[~ok][0]!r}, cast {want[~ok][0]!r}")


def test_shape_sign_and_nan_are_kept():
    x = np.array([[-0.0, 0.0], [-1e-300, np.nan]])
    got = rounding.round_to_float16(x)
    assert got.shape == x.shape, f"shape should be {x.shape}, but got {got.shape}"
    assert np.array_equal(np.signbit(got), np.signbit(x)), f"signs should be kept, but got {got}"
    assert np.isnan(got[1, 1]), f"NaN should stay NaN, but got {got[1, 1]}"


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_to_dtype_gives_the_dtype_with_the_rule_values(name):
    from attnconf.dtypes import numpy_dtype

    x = np.random.default_rng(3).standard_normal(1000) * 300
    got = rounding.to_dtype(x, name)
    assert got.dtype == numpy_dtype(name), f"dtype should be {name}, but got {got.dtype}"
    want = round_to_format(x, FORMATS[name]) if name in FORMATS else x.astype(name).astype(np.float64)
    assert _same_bits(got.astype(np.float64), want).all(), f"to_dtype(x, {name}) should hold the rule's values"


def test_golden_inputs_use_the_rule_not_the_installed_cast():
    # representable() is what every golden input goes through: its bfloat16 step is the rule.
    from attnconf.reference.cases import representable

    rng = np.random.default_rng(11)
    x = np.concatenate([[1.37890628], rng.standard_normal(2000) * 50])
    want = np.array([reference_round(float(v), "bfloat16") for v in x])
    got = representable(x)
    kept = np.abs(want) >= 2.0 ** -14  # representable() flushes smaller magnitudes to 0
    assert _same_bits(got[kept], want[kept]).all(), (
        f"representable should round like the rule, but got {np.flatnonzero(~_same_bits(got[kept], want[kept])).size} "
        f"different of {kept.sum()}")
