"""The work of a run: which (implementation, operation, case or check, dtype) items run, and why
the others do not. Every front end iterates this module — `attnconf run` (runner), the pytest
plugin, calibration, detection, verify-outputs — so they judge the same items, and the claims an
implementation makes gate golden cases, invariants, profile and calibration alike.

Three answers, in order:
- `implements(adapter, op)`: whether the implementation offers the operation at all. If not, it
  gets no per-case record for it, only one coverage entry (`coverage`), never a skip per case.
- `dtypes(op, run_dtypes)` / `dtype_claim(adapter, op, dtype)`: the operation's dtype policy
  (attnconf.operations.Operation: fixed dtypes, run's float dtypes), and whether the adapter
  declares the dtype (a fixed dtype is the operation's own, never asked of the adapter).
- `case_claim(adapter, case)`: the claim a case needs that the adapter does not make (its
  operation's `case_claims` over the adapter's Capabilities): a skip with that reason, and the
  implementation is never called with the case.

Nothing here names an operation or a dtype kind: the registry entries declare both.
Must not import any framework, nor the checks or the runner (they import this).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator


@dataclasses.dataclass(frozen=True)
class Item:
    """One agreement item: `case` at `dtype`; `skip` is why it is not run ("" runs it)."""
    case: object
    dtype: str
    skip: str = ""


def operation_of(case):
    """The registry entry of `case`'s operation (attnconf.operations). An operation that is not
    registered is a UsageError naming the registered ones (a plug-in's cases without it)."""
    from attnconf import operations
    from attnconf.errors import UsageError

    try:
        return operations.get(case.operation)
    except UsageError:
        raise UsageError(f"operation of case {case.id} should be a registered one "
                         f"({', '.join(operations.names())}), but got {case.operation!r} "
                         "(is the plug-in that defines it installed?)") from None


def _operation(op_or_name):
    from attnconf import operations

    return operations.get(op_or_name) if isinstance(op_or_name, str) else op_or_name


def _caps(adapter):
    return adapter.capabilities


def implements(adapter, op) -> str:
    """"" when the adapter implements operation `op` (an Operation or its name), else why not.
    An adapter declaring no operations at all is taken to offer every one (a bare Adapter
    subclass); its methods decline what they lack."""
    op = _operation(op)
    caps = _caps(adapter)
    offered = tuple(getattr(caps, "operations", ()) or ())
    if offered and op.name not in offered:
        return f"{getattr(adapter, 'name', 'the adapter')} does not implement {op.name}"
    if op.needs is not None:
        reason = op.needs(caps)
        if reason:
            return f"{getattr(adapter, 'name', 'the adapter')} {reason}"
    return ""


def coverage(adapter, ops=None) -> list[dict]:
    """One coverage entry per registered operation (or per one of `ops`): {"adapter",
    "operation", "implemented", "reason"} (the results file's "coverage" list)."""
    from attnconf import operations

    out = []
    for op in (operations.operations() if ops is None else [_operation(o) for o in ops]):
        reason = implements(adapter, op)
        out.append({"adapter": adapter.name, "operation": op.name, "implemented": not reason, "reason": reason})
    return out


def dtypes(op, run_dtypes) -> tuple[str, ...]:
    """The dtypes `op`'s cases run at in a run asking for `run_dtypes` (Operation.case_dtypes)."""
    return _operation(op).case_dtypes(run_dtypes)


def dtype_claim(adapter, op, dtype: str) -> str:
    """"" when the adapter may be run at `dtype` for `op`, else why not: a dtype its
    capabilities do not declare (an operation's fixed dtype is never asked of it)."""
    op = _operation(op)
    if op.fixed_dtype(dtype):
        return ""
    declared = tuple(getattr(_caps(adapter), "dtypes", ()) or ())
    if declared and dtype not in declared:
        return f"{adapter.name} does not support dtype {dtype} (supports {', '.join(declared)})"
    return ""


def case_claim(adapter, case) -> str:
    """"" when the adapter claims everything `case` exercises, else the claim it lacks
    (its operation's Operation.case_claims over the adapter's capabilities)."""
    op = operation_of(case)
    if op.case_claims is None:
        return ""
    reason = op.case_claims(_caps(adapter), case)
    return f"{adapter.name} {reason}" if reason else ""


def skip_reason(adapter, case, dtype: str) -> str:
    """Why `case` at `dtype` is a skip without a call ("" when it is run)."""
    return dtype_claim(adapter, case.operation, dtype) or case_claim(adapter, case)


def agreement(adapter, cases: Iterable, run_dtypes, *, done=frozenset()) -> Iterator[Item]:
    """The agreement items of `adapter`: each case of an operation it implements, at each dtype
    its operation runs at, with the reason it is skipped; (adapter, case, dtype, "agreement")
    keys in `done` (a resumed run's) are left out."""
    verdicts: dict = {}
    for case in cases:
        if case.operation not in verdicts:
            verdicts[case.operation] = implements(adapter, operation_of(case))
        if verdicts[case.operation]:
            continue
        for dtype in dtypes(case.operation, run_dtypes):
            if (adapter.name, case.id, dtype, "agreement") in done:
                continue
            yield Item(case, dtype, skip_reason(adapter, case, dtype))


def check_dtypes(adapter, run_dtypes) -> tuple[str, ...]:
    """The dtypes the invariant checks of `adapter` run at: each of the run's dtypes that an
    operation it implements runs at and that it may be run at (dtype_claim), in the run's order;
    then the fixed dtypes of the operations it implements (once, as their cases run)."""
    from attnconf import operations as registry

    ops = [op for op in registry.operations() if not implements(adapter, op)]
    out = [d for d in run_dtypes if any(op.runs_at(d) and not op.fixed_dtype(d) and not dtype_claim(adapter, op, d)
                                        for op in ops)]
    return tuple(dict.fromkeys(out + [d for op in ops for d in op.dtypes]))


def runs(adapter, op, dtype: str) -> bool:
    """Whether a check of `op` (an invariant, a determinism probe) runs on `adapter` at `dtype`:
    the adapter implements it and the operation runs at that dtype."""
    op = _operation(op)
    return not implements(adapter, op) and op.runs_at(dtype)
