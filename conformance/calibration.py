"""Calibration of the tolerance rule: false-failure rate on correct code, detection on known-bad code.

Size (~400 lines): families, claims, documented scopes, the tally and the report of (a); the
zoo's detection, (b), is conformance/detection.py.

(a) False failures: random cases of every case family of every registered operation (its
    entry's `families=`: sdpa-mask, sdpa-window, rope-long, relpos-bucket, …), expected values from reference.compute(exact=True), run on correct implementations
    — the reference in every precision (numpy-reference), the zoo's control and every available
    bundled adapter on the clauses it claims — and judged by the engine's tolerance rule
    (engine.judge, the same code `attnconf run` uses). Every non-pass that is not a declared
    `skip` or a documented divergence counts as a false failure, marginal or gross alike.
    Documented: a shipped expectation entry covers the record's adapter, dtype, operation
    (the prefix of its case pattern), one of its clauses and its status (`documented_scopes`);
    random case ids match no golden case id, so the case pattern itself is not used. Such
    records are counted and printed as "excluded: documented divergence", never dropped.
(b) Detection: every known-bad implementation of the zoo (the bundled attnconf.conformance.known_bad,
    or a zoo package directory of one's own) runs the golden
    cases, a few random cases per family, the invariants and the profile; it is caught when any of
    them gives fail/error/crash/timeout. The report names the checks that caught it.

Shapes come from a small pool per family (values change with every seed): correctness of
rounding depends on the values, and a pool lets per-shape-compiling frameworks (JAX) reuse their
compiled kernels, which keeps the default 200 seeds within minutes.
Must not import any framework itself (adapters do), must not change tolerances (tolerance.py).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from attnconf.dtypes import DTYPE_NAMES


# ---------------------------------------------------------------------------------------------
# Random case families: each registry entry's `families` ({family: (rng, i, case_id) -> Case})
# ---------------------------------------------------------------------------------------------
def families() -> dict:
    """{family: (operation entry, builder)} over every registered operation, in registry order."""
    from attnconf import operations

    out: dict = {}
    for op in operations.operations():
        for family, build in (op.resolve("families") or {}).items():
            out.setdefault(family, (op, build))
    return out


def family_names() -> list[str]:
    return list(families())


def random_case(family: str, seed: int):
    """A case of `family` for `seed` with exact expected values and natural scales filled in."""
    from attnconf import reference
    from attnconf.validation import check_choice

    known = families()
    check_choice("family", family, known)
    op, build = known[family]
    rng = np.random.default_rng([seed, len(family)])
    # Ids under the golden prefixes ("sdpa/…", "mha/…", the entry's case_prefix) so that
    # expectation entries written for golden cases (case globs like "sdpa/*") cover them too.
    case = build(rng, seed, f"{op.case_prefix or op.name}/calibration-{family}-{seed}")
    case.family, case.seed = family, seed
    case.expected = reference.compute(case.operation, case.inputs, case.options, exact=True)
    case.scale = reference.natural_scales(case.operation, case.inputs, case.options)
    return case


# ---------------------------------------------------------------------------------------------
# Claims: a case is judged on an adapter only for what the adapter claims to follow
# ---------------------------------------------------------------------------------------------
def claims(adapter, case, fully_masked: str | None = None) -> bool:
    """False when the case exercises something the adapter does not claim: an operation it lacks,
    or a fully-masked row while it declares (capabilities.fully_masked) a named alternative.
    `fully_masked` (a detected policy) narrows the claim the same way when given; calibration
    itself does not pass it: a detected divergence from a declared "zero" is judged, and counts
    as a false failure unless an expectation entry documents it."""
    from attnconf.conformance import plan

    caps = adapter.capabilities
    if plan.implements(adapter, case.operation) or plan.case_claim(adapter, case):
        return False
    policy = fully_masked or caps.fully_masked
    if "sdpa.fully_masked" in case.clauses and (caps.fully_masked != "zero" or policy != "zero"):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Documented divergences: shipped expectation entries at the level adapter + dtype + clause
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Scope:
    """One documented divergence as calibration applies it (from an expectation entry)."""
    adapter: str
    dtype: str
    operation: str          # case-id prefix ("sdpa", "sdpa_vjp", "mha", "enc") or "*"
    clause: str
    status: tuple
    reason: str
    source: str

    def covers(self, rec: dict) -> bool:
        # expectations.Scope is the one matcher; this level leaves out case and check
        from attnconf.conformance.judging.expectations import Scope as Match

        return Match(adapter=self.adapter, dtype=self.dtype, operation=self.operation, clause=self.clause,
                     status=self.status).covers(rec)

    def label(self) -> str:
        return f"{self.dtype} {self.operation} {self.clause} {'|'.join(self.status)}"


def documented_scopes(expectations) -> list[Scope]:
    """Scopes of the agreement entries that name a clause (deduplicated). Entries without a clause
    (clause "*") document single golden cases only and exclude nothing here."""
    out: dict = {}
    for e in getattr(expectations, "entries", ()) or ():
        if e.clause == "*" or e.check not in ("*", "agreement"):
            continue
        head = e.case.split("/", 1)[0]
        operation = head if "/" in e.case and not any(ch in head for ch in "*?[") else "*"
        scope = Scope(e.adapter, e.dtype, operation, e.clause, tuple(e.status), e.reason, e.source)
        out.setdefault((scope.adapter, scope.dtype, scope.operation, scope.clause, scope.status, scope.reason), scope)
    return list(out.values())


def _scopes_for(scopes, adapter_name: str) -> list[Scope]:
    import fnmatch

    return [s for s in scopes if fnmatch.fnmatchcase(adapter_name, s.adapter)]


# ---------------------------------------------------------------------------------------------
# Running one case on one adapter
# ---------------------------------------------------------------------------------------------
def case_dtypes(case, dtypes) -> tuple[str, ...]:
    """The dtypes `case` is judged at: the planner's (plan.dtypes, its operation's dtype policy)."""
    from attnconf.conformance import plan

    return plan.dtypes(case.operation, dtypes)


def judge_one(adapter, case, dtype: str, expectations=None) -> dict:
    """The agreement record of `adapter` (an instance) on `case` at `dtype`: runner.check_case in
    this process at the default level, the loop `attnconf run` and pytest call."""
    from attnconf.conformance.execution import runner

    return runner.check_case(runner.InProcessExecutor(), adapter, adapter, case, dtype, expectations=expectations)


# A failure whose error is within this factor of its tolerance is "marginal": a table change could
# admit it, so it is a candidate false failure of the rule. Farther out ("gross": a wrong value,
# NaN, an exception, a float32 result at float64) it is a non-conformance of the implementation.
MARGINAL_FACTOR = 32.0


def margin(rec: dict) -> float:
    """error / tolerance of a failing record (inf when not a numeric comparison)."""
    m = rec.get("metrics") or {}
    try:
        err, tol = float(m["max_ulp_error"]), float(m["tolerance_ulps"])
    except (KeyError, TypeError, ValueError):
        return float("inf")
    return err / tol if tol > 0 else float("inf")


@dataclasses.dataclass
class Tally:
    judged: int = 0          # pass + false failures (documented and not-claimed records excluded)
    failed: int = 0          # false failures: undocumented non-pass records, marginal or gross
    marginal: int = 0        # of `failed`, error <= MARGINAL_FACTOR x tolerance
    skipped: int = 0
    expected: int = 0        # records an expectation entry's own case pattern turned into xfail
    not_claimed: int = 0     # case-dtypes of cases the adapter declares it does not follow
    worst_margin: float = 0.0
    marginal_by_dtype: dict = dataclasses.field(default_factory=dict)
    excluded: dict = dataclasses.field(default_factory=dict)     # Scope -> count
    examples: list = dataclasses.field(default_factory=list)

    def add(self, rec: dict, scopes=()) -> None:
        st = rec["status"]
        if st == "skip":
            self.skipped += 1
            return
        if st == "xfail":
            self.expected += 1
            return
        if st != "pass":
            scope = next((s for s in scopes if s.covers(rec)), None)
            if scope is not None:
                self.excluded[scope] = self.excluded.get(scope, 0) + 1
                return
        self.judged += 1
        if st != "pass":
            self.failed += 1
            ratio = margin(rec)
            if ratio <= MARGINAL_FACTOR:
                self.marginal += 1
                self.worst_margin = max(self.worst_margin, ratio)
                self.marginal_by_dtype[rec["dtype"]] = self.marginal_by_dtype.get(rec["dtype"], 0) + 1
            if len(self.examples) < 3:
                self.examples.append(f"{rec['case']} @ {rec['dtype']}: [{st}] {rec['message'][:300]}")


def false_failures(adapters, *, seeds: int, families=None, dtypes=DTYPE_NAMES, progress=None,
                   expectations=None) -> dict:
    """{(adapter, family): Tally} over `seeds` random cases per family at every dtype.

    expectations: the Expectations whose clause-level scopes (documented_scopes) exclude a
    failure from the false failures; the excluded records are counted in Tally.excluded."""
    from attnconf.conformance import plan

    results: dict = {}
    scopes = documented_scopes(expectations)
    per_adapter = {a.name: _scopes_for(scopes, a.name) for a in adapters}
    names = list(families or family_names())
    status = getattr(progress, "status", None)     # a rewritten status line, when the caller has one
    for number, family in enumerate(names, 1):
        for seed in range(seeds):
            if status:
                status(f"false failures: family {family} ({number}/{len(names)}), seed {seed + 1}/{seeds}")
            case = random_case(family, seed)
            dtypes_of_case = case_dtypes(case, dtypes)
            for adapter in adapters:
                if plan.implements(adapter, case.operation):
                    continue
                tally = results.setdefault((adapter.name, family), Tally())
                if not claims(adapter, case):
                    tally.not_claimed += len(dtypes_of_case)
                    continue
                for dtype in dtypes_of_case:
                    tally.add(judge_one(adapter, case, dtype), per_adapter[adapter.name])
        if progress:
            progress(f"false failures: family {family} done")
    return results


# ---------------------------------------------------------------------------------------------
# The known-bad zoo
# ---------------------------------------------------------------------------------------------
# The zoo that ships with the package, so that `attnconf calibrate` runs from any directory.
BUNDLED_ZOO = "attnconf.conformance.known_bad"


# ---------------------------------------------------------------------------------------------
# Correct implementations and the whole calibration
# ---------------------------------------------------------------------------------------------
def bundled_adapters() -> tuple[list, list[tuple[str, str]]]:
    """([every available bundled adapter but numpy-reference], [(name, why not) for the others]):
    the figure says what it covers, so an adapter left out is named with its reason."""
    from attnconf.adapters import registry

    out, unavailable = [], []
    for name in registry.BUNDLED:
        if name == "numpy-reference":
            continue
        if name in registry.OPT_IN:     # as in attnconf run: judged when named (attnconf run --adapter NAME)
            unavailable.append((name, registry.OPT_IN_REASONS.get(name, "opt-in") + "; run it by name"))
            continue
        try:
            adapter = registry.instantiate(registry.AdapterSpec("bundled", name))
            available, reason = adapter.is_available()
        except Exception as exc:  # cannot even load: still named, with the exception as the reason
            available, reason = False, f"{type(exc).__name__}: {exc}"
        if available:
            out.append(adapter)
        else:
            unavailable.append((name, reason or "not available"))
    return out, unavailable


def correct_adapters(zoo_path=None, *, bundled=True) -> list:
    """numpy-reference, the zoo control, and every available bundled adapter."""
    from attnconf.adapters import registry

    out = [registry.instantiate(registry.AdapterSpec("bundled", "numpy-reference"))]
    if zoo_path is not None:
        from attnconf.conformance.detection import load_zoo

        out.append(load_zoo(zoo_path)[0]())
    if bundled:
        out.extend(bundled_adapters()[0])
    return out


def run(*, seeds: int = 200, zoo: str | Path | None = BUNDLED_ZOO, bundled: bool = True,
        families=None, progress=None, first_only: bool = False) -> dict:
    """Both measurements as a JSON-ready dict, with `ok` = zero false failures and all caught.
    zoo: BUNDLED_ZOO, a zoo package directory, or None (no detection)."""
    from attnconf.conformance.execution.runner import RunConfig, _expectations

    t0 = time.perf_counter()
    expectations = _expectations(RunConfig(specs=[]))
    adapters = correct_adapters(zoo, bundled=False)
    if progress and bundled:
        progress("loading the bundled adapters (each framework is imported once) …")
    extra, unavailable = bundled_adapters() if bundled else ([], [])
    adapters += extra
    if progress:
        progress(f"false failures: {len(adapters)} correct implementations, {len(families or family_names())} "
                 f"families x {seeds} seeds; then the known-bad zoo")
    ff = false_failures(adapters, seeds=seeds, families=families, progress=progress, expectations=expectations)
    t1 = time.perf_counter()
    from attnconf.conformance.detection import detection

    rows, control_hits = (detection(zoo, progress=progress, first_only=first_only)
                          if zoo is not None else ([], []))
    t2 = time.perf_counter()
    grade = {a.name: getattr(a, "framework", "") == "numpy" for a in adapters}   # reference-grade
    ref_fail = sum(t.failed for (a, _), t in ff.items() if grade.get(a))
    bundled_marginal = sum(t.marginal for (a, _), t in ff.items() if not grade.get(a))
    bundled_gross = sum(t.failed - t.marginal for (a, _), t in ff.items() if not grade.get(a))
    excluded: dict = {}
    for (a, f), t in ff.items():
        for scope, n in t.excluded.items():
            row = excluded.setdefault((a, scope), {"adapter": a, "dtype": scope.dtype, "operation": scope.operation,
                                                   "clause": scope.clause, "status": list(scope.status),
                                                   "reason": scope.reason, "source": scope.source,
                                                   "count": 0, "by_family": {}})
            row["count"] += n
            row["by_family"][f] = row["by_family"].get(f, 0) + n
    missed = [name for name, _, hits in rows if not hits]
    total = ref_fail + bundled_marginal + bundled_gross
    return {
        "seeds": seeds,
        "families": list(families or family_names()),
        "adapters_judged": [a.name for a in adapters],
        "bundled_judged": [a.name for a in extra],
        "bundled_not_judged": [{"adapter": n, "reason": r} for n, r in unavailable],
        "false_failures": [{"adapter": a, "family": f, "judged": t.judged, "failed": t.failed,
                            "marginal": t.marginal, "worst_margin": round(t.worst_margin, 2),
                            "marginal_by_dtype": t.marginal_by_dtype,
                            "skipped": t.skipped, "expected": t.expected,
                            "excluded_documented": sum(t.excluded.values()), "not_claimed": t.not_claimed,
                            "examples": t.examples}
                           for (a, f), t in ff.items()],
        "reference_false_failures": ref_fail,
        "bundled_marginal_failures": bundled_marginal,
        "bundled_gross_failures": bundled_gross,
        "false_failure_total": total,
        "judged_total": sum(t.judged for t in ff.values()),
        "excluded_documented_total": sum(r["count"] for r in excluded.values()),
        "excluded_documented": list(excluded.values()),
        "not_claimed_total": sum(t.not_claimed for t in ff.values()),
        "zoo": [{"name": n, "bug_class": b, "caught": bool(h), "caught_by": h} for n, b, h in rows],
        "zoo_control_failures": control_hits,
        "missed": missed,
        "seconds": {"false_failures": round(t1 - t0, 1), "detection": round(t2 - t1, 1)},
        "ok": total == 0 and not missed and not control_hits and (zoo is None or bool(rows)),
    }


def format_report(doc: dict) -> str:
    lines = [f"(a) false failures on correct implementations: {doc['false_failure_total']} of "
             f"{doc['judged_total']} judged case-dtypes ({doc['seeds']} seeds per family, 4 dtypes): "
             f"{doc['reference_false_failures']} on reference-grade NumPy implementations, "
             f"{doc['bundled_marginal_failures']} marginal (error <= {MARGINAL_FACTOR:g}x tolerance) and "
             f"{doc['bundled_gross_failures']} gross on bundled adapters; "
             f"excluded: documented divergence {doc.get('excluded_documented_total', 0)}, "
             f"not claimed {doc.get('not_claimed_total', 0)} (not in the denominator)"]
    if "adapters_judged" in doc:
        lines.append(f"  correct implementations judged: {', '.join(doc['adapters_judged'])} "
                     f"({len(doc['bundled_judged'])} bundled adapters)")
        for row in doc["bundled_not_judged"]:
            lines.append(f"  bundled adapter not judged: {row['adapter']}: {row['reason']}")
    by_adapter: dict = {}
    for row in doc["false_failures"]:
        by_adapter.setdefault(row["adapter"], []).append(row)
    for adapter, rows in by_adapter.items():
        cells = ", ".join(f"{r['family']} {r['failed']}/{r['judged']}"
                          + (f" ({r['marginal']} marginal {r['marginal_by_dtype']}, worst {r['worst_margin']:g}x tol)"
                             if r["marginal"] else "")
                          for r in rows)
        lines.append(f"  {adapter}: {cells}")
        documented = sum(r.get("excluded_documented", 0) for r in rows)
        unclaimed = sum(r.get("not_claimed", 0) for r in rows)
        extra = sum(r["expected"] for r in rows)
        if documented or unclaimed or extra:
            lines.append(f"    excluded: documented divergence {documented}"
                         + (f", not claimed {unclaimed}" if unclaimed else "")
                         + (f", xfail {extra}" if extra else ""))
        for r in rows:
            lines.extend(f"      {e}" for e in r["examples"])
    if doc.get("excluded_documented"):
        lines.append("excluded: documented divergence (shipped expectations, matched on adapter + dtype + "
                     "operation + clause + status):")
        for row in doc["excluded_documented"]:
            fams = ", ".join(f"{f} {n}" for f, n in row["by_family"].items())
            lines.append(f"  {row['adapter']} {row['dtype']} {row['operation']} {row['clause']} "
                         f"{'|'.join(row['status'])}: {row['count']} ({fams}) [{row['source']}] "
                         f"{row['reason'][:140]}")
    if doc["zoo"] or doc["zoo_control_failures"]:
        caught = sum(z["caught"] for z in doc["zoo"])
        lines.append(f"(b) known-bad implementations caught: {caught} of {len(doc['zoo'])}")
        for z in doc["zoo"]:
            how = "; ".join(z["caught_by"][:4]) if z["caught"] else "NOT CAUGHT"
            lines.append(f"  {'caught' if z['caught'] else 'MISSED'} {z['name']} [{z['bug_class']}]: {how}")
        if doc["zoo_control_failures"]:
            lines.append("  the zoo's correct control FAILED: " + "; ".join(doc["zoo_control_failures"][:4]))
    lines.append(f"time: {doc['seconds']['false_failures']} s false failures, {doc['seconds']['detection']} s detection")
    lines.append("targets met: zero false failures, every known-bad caught" if doc["ok"] else "targets NOT met")
    return "\n".join(lines)
