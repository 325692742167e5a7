"""Semantic profile: which named alternative of each spec choice an implementation follows.

`detect(adapter)` runs small probes whose outcomes under the spec's named alternatives differ
by O(1), and matches the implementation's output against the reference evaluated under each
alternative (attnconf.reference.compute with the alternative's options, or with inputs
transformed the way the alternative reads them). It is a description, not a verdict:
{aspect: {"value": <alternative name>, "evidence": <what was seen>}}.

`profile_records(adapter, profile)` turns each aspect with a canonical choice into a results
record (check="profile"): pass when the value is canonical, skip when the adapter declared the
feature unsupported, fail otherwise (expectations may turn that fail into xfail).

The core (this module) names no operation: each operation's aspects (`Aspect`) live in modules its
registry entry names (`Operation.profile`: checks/profile/sdpa.py, encoding.py, rope.py, mha.py),
with an optional OUTPUT_DTYPE probe; output_dtype and determinism are common to every adapter.

Matching tolerance: alternatives differ by at least ~0.1 x the natural scale on these probes, a
correct kernel by at most ~1e-2 of it even in bfloat16, so a candidate matches when the output
is within MATCH_RTOL = 1e-2 of the natural scale bound max|v| (plus NaN matching NaN).
Must not import any framework.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from attnconf.errors import Unsupported, declined_message, declined_reason

MATCH_RTOL = 1e-2


def _named(aspect_name: str, name: str) -> str:
    """`name`, a named alternative of the aspect's clause as spec/index.json writes it: a probe
    reports a divergence the spec names under the index's name (the index is normative), so a
    rename there fails every probe here instead of drifting. Other values (e.g. "ignored",
    "other") describe what was seen and are not the spec's names."""
    return _alternative(aspect(aspect_name).clause, name, aspect_name)


def _alternative(clause: str, name: str, aspect: str | None = None) -> str:
    """`name`, checked to be a named alternative of `clause` in spec/index.json (as _named)."""
    from attnconf import spec

    known = spec.clause(clause)["alternatives"]
    if name not in known:
        raise ValueError(f"profile value {name!r} of aspect {aspect or clause} should be an alternative spec/index.json "
                         f"names for {clause} ({', '.join(known) or 'none'}), but it is not")
    return name


def probe_dtype(adapter) -> str:
    dtypes = adapter.capabilities.dtypes
    return "float64" if "float64" in dtypes else "float32" if "float32" in dtypes else dtypes[0]


# ---------------------------------------------------------------------------------------------
# Running and matching
# ---------------------------------------------------------------------------------------------
class _Declined(Exception):
    """The implementation raised NotImplementedError on a probe: the aspect is declined."""


def _declinable(probe):
    """A probe whose call the plug-in declines reports {"value": "declined", "evidence": reason}
    (profile_records: skip "declined: reason"), not what a refusal of the option would mean."""
    import functools

    @functools.wraps(probe)
    def run(*args, **kwargs):
        try:
            return probe(*args, **kwargs)
        except _Declined as exc:
            return {"value": "declined", "evidence": str(exc)}
    return run


def _probe(adapter, call):
    """(output float64 | None, outcome) of one probe call: "ok", "unsupported: …" or
    "raised …"; _Declined when the implementation raises NotImplementedError."""
    try:
        return np.asarray(adapter.to_numpy(call())).astype(np.float64), "ok"
    except Unsupported as exc:
        return None, f"unsupported: {exc.reason}"
    except NotImplementedError as exc:
        raise _Declined(declined_reason(exc)) from None
    except Exception as exc:  # the implementation's own error for this input
        return None, f"raised {type(exc).__name__}: {exc}"


def match(out: np.ndarray, candidates: dict, scale: float) -> tuple[str, dict]:
    """The first candidate `out` matches (NaN matches NaN), else "other"; and the distances."""
    dist = {}
    for name, cand in candidates.items():
        cand = np.asarray(cand, np.float64)
        if cand.shape != out.shape:
            dist[name] = "shape differs"
            continue
        with np.errstate(invalid="ignore"):
            d = np.where(np.isnan(cand) & np.isnan(out), 0.0, np.abs(out - cand))
        worst = float(np.max(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0
        dist[name] = worst
    for name, worst in dist.items():
        if isinstance(worst, float) and worst <= MATCH_RTOL * scale:
            return name, dist
    return "other", dist


def _fmt(dist: dict) -> str:
    return ", ".join(f"{n}: {d:.3g}" if isinstance(d, float) else f"{n}: {d}" for n, d in dist.items())


# ---------------------------------------------------------------------------------------------
# Aspects: each belongs to one operation and lives in a module its registry entry names
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Aspect:
    """One probed aspect: a spec choice with named alternatives, or a table of them.

    probe (adapter, dtype) -> {"value", "evidence"}. With `canonical`, the record passes when the
    value is it, skips when the value is one of `declared` (the feature declared unsupported) or
    "declined", fails otherwise. Without it, `judge` (adapter, found) gives the records as
    [(suffix, clause, status, message, value, also)] (suffix "" for the aspect's own id), and
    `ids` (capabilities or None) the suffixes known before running (what --select selects).
    """
    name: str
    operation: str
    probe: Callable
    clause: str = ""
    canonical: str | None = None
    declared: tuple[str, ...] = ()
    judge: Callable | None = None
    ids: Callable | None = None


def _common() -> tuple[Aspect, ...]:
    """The aspects of any adapter, filed under the first registered operation (sdpa)."""
    from attnconf import operations

    first = operations.operations()[0].name
    return (Aspect("output_dtype", first, lambda adapter, dtype: _output_dtypes(adapter), judge=_judge_output_dtypes),
            Aspect("determinism", first, _determinism, "inv.determinism", "deterministic", (), judge=_judge_determinism))


def aspects() -> tuple[Aspect, ...]:
    """Every registered operation's ASPECTS (Operation.profile modules, registry order), then the common ones."""
    from attnconf import operations

    own = tuple(a for op in operations.operations() for m in op.modules("profile") for a in getattr(m, "ASPECTS", ()))
    return own + _common()


def aspect(name: str) -> Aspect | None:
    return next((a for a in aspects() if a.name == name), None)


def canonical() -> dict:
    """{aspect: (clause, canonical value, values meaning "declared unsupported")} of every
    aspect with a canonical choice (registry order)."""
    return {a.name: (a.clause, a.canonical, a.declared) for a in aspects() if a.canonical is not None}


def _output_dtypes(adapter):
    caps, seen = adapter.capabilities, {}
    op = _dtype_probe_operation(adapter)
    probe = None if op is None else next(m.OUTPUT_DTYPE for m in op.modules("profile") if hasattr(m, "OUTPUT_DTYPE"))
    for dt in caps.dtypes if probe is not None else ():
        try:
            out = probe(adapter, dt)
            seen[dt] = str(np.asarray(adapter.to_numpy(out)).dtype)
        except Unsupported as exc:
            seen[dt] = f"unsupported: {exc.reason}"
        except NotImplementedError as exc:
            seen[dt] = declined_message(declined_reason(exc))
        except Exception as exc:
            seen[dt] = f"raised {type(exc).__name__}"
    same = all(seen[d] == d for d in seen)
    return {"value": seen, "evidence": "output dtype equals input dtype for every supported dtype" if same
            else "output dtype differs from the input dtype: " + ", ".join(f"{d} -> {o}" for d, o in seen.items() if o != d)}


def _dtype_probe_operation(adapter):
    """The first registered operation the adapter offers whose profile module has an OUTPUT_DTYPE probe."""
    from attnconf import operations

    ops = adapter.capabilities.operations
    return next((op for op in operations.operations() if op.name in ops
                 and any(hasattr(m, "OUTPUT_DTYPE") for m in op.modules("profile"))), None)


def _judge_output_dtypes(adapter, found):
    value, evidence = found["value"], found["evidence"]
    bad = {d: o for d, o in value.items() if o != d and not o.startswith(("unsupported", "declined"))}
    op = _dtype_probe_operation(adapter)
    clause = op.dtype_clause if op is not None and op.dtype_clause else "sdpa.dtype"
    if value and all(o.startswith(("unsupported", "declined")) for o in value.values()):
        # nothing was measured (the probe's call is one the adapter does not offer): no verdict
        return [("", clause, "skip", f"unsupported: {next(iter(value.values()))}", value, ())]
    return [("", clause, "fail" if bad else "pass", evidence if bad else "", value, ())]


def _determinism(adapter, dtype):
    from attnconf.conformance.checks.invariants import check_determinism

    rec = check_determinism(adapter, dtype)
    if rec["status"] == "skip" and rec["message"].startswith(declined_message("")):
        return {"value": "declined", "evidence": rec["message"][len(declined_message("")):]}
    if rec["status"] in ("skip", "error"):
        return {"value": "unknown", "evidence": rec["message"]}
    same = rec["metrics"].get("identical", False)
    return {"value": "deterministic" if same else "nondeterministic",
            "evidence": f"{rec['operation']} twice on identical inputs at {dtype}: "
            + ("bitwise identical" if same else rec["message"])}


def _judge_determinism(adapter, found):
    value, evidence = found["value"], found["evidence"]
    if value == "unknown":
        return [("", "inv.determinism", "skip", f"unsupported: {evidence}", value, ())]
    if value == "nondeterministic" and not adapter.capabilities.deterministic:
        return [("", "inv.determinism", "pass", f"nondeterministic, as declared: {evidence}", value, ())]
    return _judge_canonical(aspect("determinism"), found)


def _judge_canonical(a: Aspect, found):
    value, evidence = found["value"], found["evidence"]
    if value == a.canonical:
        status, msg = "pass", ""
    elif value == "declined":       # the probe raised NotImplementedError
        status, msg = "skip", declined_message(evidence)
    elif value in a.declared:
        status, msg = "skip", f"unsupported: {evidence}"
    else:
        status = "fail"
        msg = f"{a.clause}: the spec says {a.canonical!r}, the implementation does {value!r} ({evidence})"
    return [("", a.clause, status, msg, value, ())]


def judge_table(adapter, found, *, clause, also=lambda key: (), wrong=lambda key, got: f"got {got!r}"):
    """Records of a table-valued aspect ({key: detected}): pass where the detected value is the
    key asked for, skip where rejected or declined, fail otherwise (wrong(key, got) says how)."""
    out = []
    for key, got in found["value"].items():
        declined = got.startswith(declined_message(""))
        status = "pass" if got == key else "skip" if got == "rejects" or declined else "fail"
        msg = "" if status == "pass" else got if declined else (
            f"unsupported: {key}" if status == "skip" else wrong(key, got))
        out.append((key, clause(key), status, msg, got, also(key)))
    return out


# ---------------------------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------------------------
def aspects_for(adapter) -> tuple[str, ...]:
    """The names of the aspects `detect` reports for this adapter (from its operations, without running it)."""
    return tuple(a.name for a in _aspects_for(adapter))


def _aspects_for(adapter) -> tuple[Aspect, ...]:
    """The aspects of the operations the adapter implements (plan.implements), then the common ones."""
    from attnconf.conformance import plan

    ops = adapter.capabilities.operations
    common = {a.name for a in _common()}
    return tuple(a for a in aspects() if a.name not in common and not plan.implements(adapter, a.operation)) + (
        _common() if ops else ())


def detect(adapter) -> dict:
    """{aspect: {"value", "evidence"}} for every aspect the adapter's operations allow."""
    dtype = probe_dtype(adapter)
    return {a.name: a.probe(adapter, dtype) for a in _aspects_for(adapter)}


def _record(adapter, a: Aspect, suffix, clause, status, message, value, *, also=()):
    """A profile aspect's record (a Record's JSON form); also: clauses it cites after `clause`."""
    from attnconf.conformance.results import repro
    from attnconf.conformance.results.record import Record

    name = getattr(adapter, "name", type(adapter).__name__)
    case = f"profile/{a.name}" + (f"/{suffix}" if suffix else "")
    return Record(adapter=name, framework=getattr(adapter, "framework", ""), operation=a.operation,
                  case=case, clauses=[clause, *also], dtype=probe_dtype(adapter),
                  check="profile", status=status, metrics={"value": value}, message=message,
                  repro=repro.command(repro.adapter_args(adapter), case, probe_dtype(adapter), known=record_ids()),
                  duration_s=0.0, options={}, shapes={}).to_json()


def record_ids(adapter=None) -> list[str]:
    """The case ids of the records profile_records makes for `adapter` (None: for any adapter),
    known without running it: what `attnconf run --select` can select."""
    chosen = aspects() if adapter is None else _aspects_for(adapter)
    caps = None if adapter is None else adapter.capabilities
    return [f"profile/{a.name}/{s}" if s else f"profile/{a.name}"
            for a in chosen for s in (a.ids(caps) if a.ids else ("",))]


def profile_records(adapter, profile: dict, *, repro_args: str | None = None) -> list[dict]:
    """One record per profiled aspect that has a canonical choice or a judge (check="profile").

    repro_args: the run's conformance/results/repro.run_args for this adapter (default: its name or spec).
    """
    records = []
    for name, found in profile.items():
        a = aspect(name)
        if a is None or (a.canonical is None and a.judge is None):
            continue
        rows = a.judge(adapter, found) if a.judge is not None else _judge_canonical(a, found)
        records += [_record(adapter, a, suffix, clause, status, msg, value, also=also)
                    for suffix, clause, status, msg, value, also in rows]
    if repro_args is not None:
        from attnconf.conformance.results import repro

        known = record_ids()
        records = [dict(r, repro=repro.command(repro_args, r["case"], r["dtype"], known=known)) for r in records]
    return records
