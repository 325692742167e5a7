"""Agreement checks: run one golden case on an implementation, then judge what came back.

`compute_outputs(adapter, case, dtype)` runs only the implementation (it may run inside a worker
process): inputs are cast exactly to `dtype` at the adapter's border, outputs come back as NumPy
arrays when they can be converted, raw otherwise. `judge(case, dtype, outputs, ...)` builds the
results record (spec/results.schema.json): shape and dtype are checked before values, garbage is a
`fail` with a precise message, never an attnconf error, and values are judged by the tolerance
rule against the same-precision baseline (reference.compute(precision=dtype), cached).

Must not import any framework; must not decide tolerances (tolerance.py does).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import time
from typing import Any

import numpy as np

from attnconf.conformance.judging import compare as cmp
from attnconf.conformance.plan import operation_of
from attnconf.conformance.results.record import Record, Status
from attnconf.dtypes import numpy_dtype
from attnconf.errors import Unsupported, declined_message, declined_reason, is_declined


# ---------------------------------------------------------------------------------------------
# Running the implementation
# ---------------------------------------------------------------------------------------------
def _call(adapter, case, dtype: str):
    """The entry's call on native inputs: its mask inputs through adapter.mask_from_numpy, its
    integer inputs (RoPE positions) through adapter.index_from_numpy, never cast to `dtype`."""
    op = operation_of(case)

    def native(name, arr):
        if name in op.index_inputs:
            return adapter.index_from_numpy(arr)
        if name in op.mask_inputs:
            return adapter.mask_from_numpy(arr, dtype)
        return adapter.from_numpy(arr, dtype)

    x = {name: native(name, arr) for name, arr in case.inputs.items()}
    return op.call(adapter, x, dict(case.options), dtype)


def _to_numpy(adapter, value):
    """NumPy array when the adapter can convert `value`; the raw value otherwise (judge says why)."""
    if value is None:
        return None
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return value  # a list or scalar is not an array of any framework: judge fails it by name
    try:
        out = adapter.to_numpy(value)
    except Exception:  # garbage from the implementation: judged, not raised
        return value
    return out if isinstance(out, np.ndarray) else value


def compute_outputs(adapter, case, dtype: str) -> dict[str, Any]:
    """Run `case` on `adapter` at `dtype`; {output name: array (or the raw non-array value)}.

    Raises whatever the implementation raises (Unsupported for unsupported options): the caller
    (an Executor) turns exceptions into outcomes.
    """
    result = _call(adapter, case, dtype)
    names = output_names(case)
    if isinstance(result, (tuple, list)) and not getattr(case, "expected", None) and len(result) < len(names):
        names = names[:max(len(result), 1)]  # expected values unknown here: the outputs returned, in order
    if len(names) > 1:
        if not isinstance(result, (tuple, list)) or len(result) != len(names):
            return {"__result__": result}
        return {n: _to_numpy(adapter, v) for n, v in zip(names, result)}
    return {names[0]: _to_numpy(adapter, result)}


# ---------------------------------------------------------------------------------------------
# The same-precision baseline (cached: the same case is judged for many adapters)
# ---------------------------------------------------------------------------------------------
_BASELINES: "collections.OrderedDict[tuple, dict]" = collections.OrderedDict()
_BASELINE_CACHE_SIZE = 4096


def _case_digest(case) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(case.operation.encode())
    h.update(json.dumps(case.options, sort_keys=True, default=str).encode())
    for name in sorted(case.inputs):
        arr = np.ascontiguousarray(case.inputs[name])
        h.update(name.encode() + str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def baseline(case, dtype: str) -> dict[str, np.ndarray]:
    """reference.compute(..., precision=dtype) for the case (float64: the default float64 path)."""
    from attnconf import reference

    key = (case.id, dtype, _case_digest(case))
    hit = _BASELINES.get(key)
    if hit is not None:
        _BASELINES.move_to_end(key)
        return hit
    # float64 and an integer-valued operation's fixed dtype: the default path (integers are exact)
    precision = operation_of(case).reference_precision(dtype)
    out = reference.compute(case.operation, case.inputs, case.options, precision=precision)
    _BASELINES[key] = out
    while len(_BASELINES) > _BASELINE_CACHE_SIZE:
        _BASELINES.popitem(last=False)
    return out


def _scales(case) -> dict[str, np.ndarray]:
    if case.scale:
        return case.scale
    from attnconf import reference

    return reference.natural_scales(case.operation, case.inputs, case.options)


# ---------------------------------------------------------------------------------------------
# Judging
# ---------------------------------------------------------------------------------------------
def repro_command(adapter_args: str, case_id: str, dtype: str) -> str:
    """The command that reruns one record (spelled by conformance/results/repro.py, for every kind)."""
    from attnconf.conformance.results import repro

    return repro.command(adapter_args, case_id, dtype)


def base_record(case, dtype: str, *, adapter_name: str, framework: str = "",
                repro_args: str | None = None, check: str = "agreement", duration_s: float = 0.0) -> Record:
    """A passing record of `case` with nothing measured yet (judge fills in the verdict)."""
    from attnconf.conformance.results import repro

    args = repro_args if repro_args is not None else repro.adapter_args(adapter_name)
    return Record(adapter=adapter_name, framework=framework, operation=case.operation, case=case.id,
                  clauses=list(case.clauses), dtype=dtype, check=check, status=Status.PASS, metrics={},
                  message="", repro=repro_command(args, case.id, dtype), duration_s=duration_s,
                  options=_jsonable(case.options),
                  shapes={n: list(np.shape(a)) for n, a in case.inputs.items()})


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _describe_value(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}" + ("…" if len(text) > 80 else "")


def _check_array(name: str, value, expected: np.ndarray, dtype: str, dtype_clause: str = "",
                 exact: bool = False) -> str:
    """'' when `value` is an array of the right dtype and shape, else why not (shape/dtype first).
    exact: an integer-valued output (Operation.exact): any integer dtype is right."""
    if value is None:
        return f"{name} should be an array, but the implementation returned None"
    if not isinstance(value, np.ndarray) or value.dtype == object:
        return f"{name} should be an array, but got {_describe_value(value)}"
    if value.dtype.kind not in "fiub" and str(value.dtype) != "bfloat16":
        return (f"{name} should be an array of {dtype} numbers, but got an array of dtype {value.dtype}: "
                f"{_describe_value(value.tolist() if value.ndim == 0 else value)}")
    if value.shape != expected.shape:
        return f"{name} should have shape {tuple(expected.shape)}, but got {tuple(value.shape)}"
    if exact:   # an integer-valued output: any integer dtype, judged bit-exactly
        clause = f" ({dtype_clause})" if dtype_clause else ""
        return "" if value.dtype.kind in "iu" else \
            f"{name} should be an integer array{clause}, but got dtype {value.dtype}"
    if value.dtype != numpy_dtype(dtype):
        clause = f", {dtype_clause}" if dtype_clause else ""
        return f"{name} should have dtype {dtype} (the precision under test{clause}), but got {value.dtype}"
    return ""


def judge(case, dtype: str, outputs: dict | None, *, adapter_name: str, error=None,
          status: str | None = None, framework: str = "", duration_s: float = 0.0,
          level: str = "default", repro_args: str | None = None) -> Record:
    """The results record (a Record) of one agreement check: what the runner, the pytest plugin,
    calibration and verify-outputs pass on.

    error: an exception the implementation raised (Unsupported -> skip "unsupported: …";
    NotImplementedError -> skip "declined: …"; others -> error), or a message string with
    `status` ("crash", "timeout", "error", "unsupported", "declined") from an Executor.
    level: "strict" makes a record that passes the default level but not the strict one a fail.
    """
    operation_of(case)   # an unregistered operation is a UsageError, never a record
    rec = base_record(case, dtype, adapter_name=adapter_name, framework=framework, repro_args=repro_args,
                      duration_s=round(float(duration_s), 6))
    if status == "unsupported" or isinstance(error, Unsupported):
        reason = getattr(error, "reason", None) or str(error or "unsupported")
        return dataclasses.replace(rec, status=Status.SKIP, message=f"unsupported: {reason}")
    if status == "declined" or is_declined(error):   # NotImplementedError: coverage, not a failure
        reason = error if isinstance(error, str) else declined_reason(error)
        return dataclasses.replace(rec, status=Status.SKIP, message=declined_message(reason or "declined"))
    if status in ("crash", "timeout", "error") or error is not None:
        text = error if isinstance(error, str) else (f"{type(error).__name__}: {error}" if error else "")
        st = status if status in ("crash", "timeout", "error") else "error"
        prefix = {"error": "the implementation raised ", "crash": "crashed: ", "timeout": "timed out: "}[st]
        return dataclasses.replace(rec, status=Status(st), message=prefix + (text or st))
    started = time.perf_counter()
    verdict = _judge_values(case, dtype, outputs, level)
    verdict["metrics"]["judge_s"] = round(time.perf_counter() - started, 6)
    return dataclasses.replace(rec, **verdict)


def positions(case) -> np.ndarray | None:
    """The position of each output row (the per-position baseline, tol.rule): the entry's
    `positions` (encodings: offset + t), None for an operation without one."""
    op = operation_of(case)
    return None if op.positions is None else op.positions(case)


def argument_scale(case, pos=None):
    """Magnitude of the arguments a correct implementation rounds (tol.rule's argument term):
    the entry's `argument_scale` (attention: max |scale * q.k|; encodings: the angle p of each
    row), None for an operation without one."""
    op = operation_of(case)
    return None if op.argument_scale is None else op.argument_scale(case, pos)


def output_names(case) -> tuple[str, ...]:
    """The outputs `case` has: its operation's, less those its expected values lack (an output
    that exists only with an option, as sdpa_vjp's dsinks with sinks); all when none are known."""
    names = tuple(operation_of(case).outputs)
    expected = getattr(case, "expected", None) or {}
    present = tuple(n for n in names if n in expected)
    return present or names


def _judge_values(case, dtype: str, outputs, level: str) -> dict:
    op = operation_of(case)
    names = output_names(case)
    if not isinstance(outputs, dict):
        return {"status": "fail", "message": f"outputs should be a dict of arrays, but got {_describe_value(outputs)}",
                "metrics": {}}
    if "__result__" in outputs:
        return {"status": "fail", "metrics": {}, "message": f"{case.operation} should return "
                f"{len(names)} arrays {names}, but got {_describe_value(outputs['__result__'])}"}
    missing = tuple(n for n in names if n in op.optional_outputs and outputs.get(n) is None)
    names = tuple(n for n in names if n not in missing)   # an optional output not returned: not judged
    problems = [p for n in names
                if (p := _check_array(n, outputs.get(n), case.expected[n], op.output_dtype(n, dtype),
                                      op.dtype_clause, op.exact(n, dtype)))]
    if problems:
        return {"status": "fail", "message": "; ".join(problems), "metrics": {}}
    base = baseline(case, dtype)
    scales = _scales(case)
    pos = positions(case)
    arg = argument_scale(case, pos)
    # an integer-valued output is judged at its operation's exact row (Operation.judging_dtype)
    results = {n: cmp.compare(outputs[n], case.expected[n], scales[n], op.judging_dtype(n, dtype),
                              operation=case.operation, baseline=base.get(n), name=n, positions=pos,
                              arg_scale=arg) for n in names}
    # The record's headline metrics are those of the output closest to (or furthest past) its tolerance.
    worst = max(results, key=lambda n: results[n].max_ulp_error / max(results[n].tolerance_ulps, 1e-300))
    metrics = results[worst].metrics()
    metrics["output"] = worst
    metrics["level"] = level
    if missing:
        metrics["not_returned"] = list(missing)
    if len(names) > 1:
        metrics["outputs"] = {n: c.metrics() for n, c in results.items()}
    failed = [c.message for c in results.values() if not c.passed]
    if failed:
        return {"status": "fail", "message": "; ".join(failed), "metrics": metrics}
    if level == "strict" and not all(c.strict_pass for c in results.values()):
        c = results[worst]
        return {"status": "fail", "metrics": metrics, "message": (
            f"{worst}: passes the default level but not the strict one: error {c.max_ulp_error:.4g} ulp "
            f"> strict {cmp.tol.rule_for(case.operation, op.judging_dtype(worst, dtype)).strict_ulps:g} ulp "
            "of the exact value")}
    return {"status": "pass", "message": "", "metrics": metrics}
