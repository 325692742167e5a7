"""Vectorised comparison of an output against the exact value under the tolerance rule.

`compare(...)` measures (max abs error, max ulp error, worst index, baseline error, tolerance,
rule text, strict grade) and `assert_conforms(...)` turns a failed comparison into a pytest
assertion that explains itself. Must not compute reference outputs or import any framework:
the caller passes the exact value, the natural scale and the baseline output.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from attnconf.conformance.judging import tolerance as tol


@dataclasses.dataclass
class Comparison:
    passed: bool
    strict_pass: bool
    max_abs_error: float
    max_ulp_error: float
    baseline_ulp_error: float
    tolerance_ulps: float          # the tolerance at the worst element (err / tol largest)
    rule: str
    worst_index: list[int]
    worst_actual: float
    worst_expected: float
    mismatches: int                # elements over their tolerance
    total: int
    nonfinite: int                 # non-finite actual where the exact value is finite
    message: str

    def metrics(self) -> dict:
        """JSON-ready metrics for a results record (inf/NaN become None or strings)."""
        d = dataclasses.asdict(self)
        d.pop("passed")
        d.pop("message")
        return {k: _json_number(v) for k, v in d.items()}


def _json_number(v):
    if isinstance(v, float) and not np.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    return v


def compare(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str, *,
            operation: str, baseline: np.ndarray | None, name: str = "output",
            positions: np.ndarray | None = None, arg_scale=None) -> Comparison:
    """Judge `actual` (any float dtype, same shape as `expected`) at precision `dtype`.

    baseline: the same-precision reference output (None: the baseline error counts as 0, so the
    floor alone applies). positions: the encoding's position of each row (offset + t), for the
    per-position baseline. arg_scale: the magnitude of each element's argument (max |logit|, or
    the angle p of its row), broadcastable to the output, for the rule's argument term. Shapes
    must already match; the engine checks them first.
    """
    rule = tol.rule_for(operation, dtype)
    x = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual)
    err = tol.ulp_errors(a, x, scale, dtype)
    base_err = (tol.ulp_errors(baseline, x, scale, dtype) if baseline is not None
                else np.zeros_like(x))
    envelope = tol.baseline_envelope(rule, base_err, operation, positions)
    arg_floor = tol.argument_floor(rule, arg_scale)
    limit = np.broadcast_to(np.maximum(tol.tolerance_ulps(rule, envelope), arg_floor), err.shape)
    over = ~(err <= limit)   # NaN-safe: a NaN error counts as over
    af = a.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(af - x)
    nonfinite = int(np.count_nonzero(np.isfinite(x) & ~np.isfinite(af)))
    if err.size == 0:
        return Comparison(True, True, 0.0, 0.0, 0.0, float(rule.floor_ulps), "empty output", [],
                          0.0, 0.0, 0, 0, 0, "")
    with np.errstate(invalid="ignore", divide="ignore"):
        # a bit-exact row (limit 0): an exact element has ratio 0, a wrong one inf (0/0 would be
        # NaN, which argmax takes for the worst and names an element that is right)
        safe = np.where(limit > 0, limit, 1.0)
        ratio = np.where(np.isfinite(err), np.where(limit > 0, err / safe, np.where(err > 0, np.inf, 0.0)), np.inf)
    flat = int(np.argmax(ratio))
    worst = np.unravel_index(flat, err.shape)
    base_max = float(np.max(np.where(np.isfinite(base_err), base_err, 0.0)))
    max_ulp = float(np.max(err))
    finite_abs = abs_err[np.isfinite(abs_err)]
    cmp = Comparison(
        passed=not bool(over.any()),
        strict_pass=bool(max_ulp <= rule.strict_ulps),
        max_abs_error=float(finite_abs.max()) if nonfinite == 0 and finite_abs.size else float("inf"),
        max_ulp_error=max_ulp,
        baseline_ulp_error=base_max,
        tolerance_ulps=float(limit[worst]),
        rule=tol.describe(rule, operation, dtype, float(np.broadcast_to(envelope, err.shape)[worst]),
                          float(limit[worst]),
                          None if arg_scale is None else float(np.broadcast_to(arg_scale, err.shape)[worst])),
        worst_index=[int(i) for i in worst],
        worst_actual=float(af[worst]),
        worst_expected=float(x[worst]),
        mismatches=int(np.count_nonzero(over)),
        total=int(err.size),
        nonfinite=nonfinite,
        message="",
    )
    cmp.message = "" if cmp.passed else explain(cmp, name=name, dtype=dtype)
    return cmp


def explain(c: Comparison, *, name: str, dtype: str) -> str:
    """A failure message: count, worst element, actual vs expected, tolerance and rule."""
    idx = tuple(c.worst_index)
    head = (f"{name}: {c.nonfinite} of {c.total} elements are NaN/inf where the exact value is "
            f"finite; first worst at {idx}: got {c.worst_actual!r}, expected {c.worst_expected!r}"
            if c.nonfinite else
            f"{name}: {c.mismatches} of {c.total} elements exceed the tolerance; worst at {idx}: "
            f"got {c.worst_actual:.17g}, expected {c.worst_expected:.17g}")
    return (f"{head} (error {c.max_ulp_error:.4g} ulp of natural scale at {dtype}, "
            f"abs {c.max_abs_error:.3g}; tolerance {c.tolerance_ulps:.4g} ulp from {c.rule})")


def assert_conforms(actual, expected, scale, dtype: str, *, operation: str, baseline=None,
                    name: str = "output", repro: str = "", positions=None, arg_scale=None) -> Comparison:
    """pytest helper: fail with an explanation and the repro command unless `actual` conforms."""
    __tracebackhide__ = True
    a = np.asarray(actual)
    if a.shape != np.shape(expected):
        raise AssertionError(f"{name} should have shape {tuple(np.shape(expected))}, "
                             f"but got {a.shape}" + (f"\nrerun: {repro}" if repro else ""))
    c = compare(a, expected, scale, dtype, operation=operation, baseline=baseline, name=name,
                positions=positions, arg_scale=arg_scale)
    if not c.passed:
        raise AssertionError(c.message + (f"\nrerun: {repro}" if repro else ""))
    return c
