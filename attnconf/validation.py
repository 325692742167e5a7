"""The one validation helper: argument checks whose errors say "X should be …, but got …".

Used by the reference, the adapters and the CLI alike. Must not import any framework.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np


def fail(what: str, expected: str, got: Any, exc: type[Exception] = ValueError, *,
         verb: str = "be") -> None:
    """Raise `exc("<what> should <verb> <expected>, but got <got>")`."""
    raise exc(f"{what} should {verb} {expected}, but got {got}")


def check_choice(what: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        fail(what, "one of " + ", ".join(repr(c) for c in choices), repr(value))
    return value


def check_int(what: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        fail(what, "an int", f"{type(value).__name__} {value!r}", TypeError)
    if minimum is not None and value < minimum:
        fail(what, f">= {minimum}", value)
    return int(value)


def check_positive(what: str, value: Any, *, expected: str = "a finite number > 0",
                   not_real: str = "a real number", not_real_exc: type[Exception] = TypeError,
                   excluded: tuple = ()) -> float:
    """`value` as a float when it is a real number (not a bool), finite, > 0 and not one of
    `excluded`; else "<what> should be <not_real>" (not_real_exc) or "… <expected>" (ValueError)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        fail(what, not_real, repr(value), not_real_exc)
    v = float(value)
    if not (math.isfinite(v) and v > 0) or v in excluded:
        fail(what, expected, repr(value))
    return v


def check_array(what: str, value: Any, *, ndim: int | None = None, legend: str = "",
                floating: bool = True) -> np.ndarray:
    """Check that `value` is an array of `ndim` dimensions (legend e.g. "(B, H, L, E)")."""
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        fail(what, "an array", type(value).__name__, TypeError)
    arr = np.asarray(value)
    if ndim is not None and arr.ndim != ndim:
        dims = f"{ndim} dimensions {legend}".rstrip()
        fail(what, dims, f"shape {tuple(arr.shape)}", verb="have")
    if floating and not _is_floating(arr.dtype):
        fail(f"{what} dtype", "a floating dtype (float64, float32, float16, bfloat16)", str(arr.dtype), TypeError)
    return arr


def _is_floating(dtype: np.dtype) -> bool:
    if np.issubdtype(dtype, np.floating):
        return True
    return str(dtype) == "bfloat16"  # ml_dtypes' bfloat16 is not a NumPy floating subtype


def finite_number(text: str) -> float:
    """argparse `type=` of every numeric command-line option: a finite number ("inf", "nan" and
    1e999 are refused with one line, exit 2, before they reach a deadline or a budget)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"should be a number, but got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"should be a finite number, but got {text!r}")
    return value
