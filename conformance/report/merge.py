"""Merging any number of runs into one view: implementations, per-section counts, clause matrix.

An implementation is one adapter in one run (the same adapter measured by two tox envs or on two
machines stays two columns, named with the run label). Counts always carry their denominator and
every status separately: a skip is "not covered", never a pass, and there is no single score
across implementations (WPT practice).

Must not read files or render HTML.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .model import BAD_STATUSES, SEVERITY, STATUSES, Run, is_bad, status_class

# Used when the caller passes no section order (the spec index unreadable): the index order wins.
SECTION_ORDER = ("sdpa", "mha", "enc", "tol", "inv", "perf")


@dataclass
class Implementation:
    key: tuple[str, str]  # (run label, adapter)
    adapter: str
    run: str
    framework: str
    name: str  # display name: the adapter, plus the run label when the adapter is in several runs
    device: str = ""
    counts: Counter = field(default_factory=Counter)
    by_section: dict = field(default_factory=lambda: defaultdict(Counter))
    strict_pass: int = 0
    strict_total: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def n_bad(self) -> int:
        return sum(n for s, n in self.counts.items() if is_bad(s))

    @property
    def verdict(self) -> str:
        """"conforms", "documented divergences", "does not conform" or "not tested" — for this
        implementation alone. Expected (xfail) failures are still failures of the spec: an
        implementation with any is never shown as plainly conforming."""
        if self.n_bad:
            return "does not conform"
        if self.counts.get("pass", 0) + self.counts.get("xfail", 0) == 0:
            return "not tested"
        return "documented divergences" if self.counts.get("xfail", 0) else "conforms"


def section_of(clause_id: str, clause_sections: dict[str, str]) -> str:
    return clause_sections.get(clause_id) or clause_id.split(".", 1)[0] or "other"


def record_sections(rec: dict, clause_sections: dict[str, str], ops: dict | None = None) -> list[str]:
    """The spec sections a record counts in (once each); records without clauses go by operation."""
    secs = []
    for c in rec["clauses"]:
        s = section_of(c, clause_sections)
        if s not in secs:
            secs.append(s)
    if not secs:   # the section of the operation's own clauses, as the results file names it
        meta = (ops or {}).get(rec["operation"]) or {}
        clauses = meta.get("clauses") if isinstance(meta.get("clauses"), list) else []
        sec = meta.get("section") if isinstance(meta.get("section"), str) else ""
        secs = [sec or (section_of(str(clauses[0]), clause_sections) if clauses else "other")]
    return secs


def worst(statuses) -> str:
    classes = {status_class(s) for s in statuses}
    for s in SEVERITY:
        if s in classes:
            return s
    return "none"


@dataclass
class Merged:
    runs: list[Run]
    implementations: list[Implementation]
    sections: list[str]
    records: list[dict]
    clause_ids: list[str]
    clause_cells: dict  # (clause id, impl key) -> Counter of statuses
    frameworks: list[str]
    dtypes: list[str]
    statuses: list[str]
    conflicts: list[dict] = field(default_factory=list)


def _implementations(runs: list[Run]) -> dict[tuple[str, str], Implementation]:
    """One Implementation per (run, adapter); the run label joins the name only when needed."""
    adapter_runs: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        for rec in run.records:
            adapter_runs[rec["adapter"]].add(run.label)
    impls: dict[tuple[str, str], Implementation] = {}
    for run in runs:
        device = str(run.environment.get("device") or "")
        for rec in run.records:
            key = (run.label, rec["adapter"])
            if key not in impls:
                several = len(adapter_runs[rec["adapter"]]) > 1
                impls[key] = Implementation(
                    key=key, adapter=rec["adapter"], run=run.label, framework=rec["framework"],
                    name=f"{rec['adapter']} [{run.label}]" if several else rec["adapter"], device=device)
    return impls


def _count(impl: Implementation, rec: dict, secs: list[str], clause_cells: dict) -> None:
    status = status_class(rec["status"])
    impl.counts[status] += 1
    for s in secs:
        impl.by_section[s][status] += 1
    for c in rec["clauses"]:
        clause_cells[(c, impl.key)][status] += 1
    strict = rec["metrics"].get("strict_pass")
    if isinstance(strict, bool):
        impl.strict_total += 1
        impl.strict_pass += strict


def conflicts(runs: list[Run]) -> list[dict]:
    """Where the merged files disagree with themselves or each other: one row per (adapter, case,
    dtype, check, clauses) measured with different statuses, within one file (a repeated record)
    or across files (the same adapter in two runs), with every (run, status) seen. Never resolved
    by keeping one of them."""
    seen: dict[tuple, list[tuple[str, str]]] = defaultdict(list)
    runs_of: dict[str, set] = defaultdict(set)
    for run in runs:
        for rec in run.records:
            runs_of[rec["adapter"]].add(run.label)
    for run in runs:
        for key, statuses in run.conflicts.items():
            seen[key[1:]].extend((run.label, s) for s in statuses)
        for rec in run.records:
            if len(runs_of[rec["adapter"]]) > 1:   # only an adapter in several files can disagree across them
                key = (rec["adapter"], rec["case"], rec["dtype"], rec["check"], tuple(rec["clauses"]))
                if key not in seen or seen[key][-1] != (run.label, rec["status"]):
                    seen[key].append((run.label, rec["status"]))
    out = []
    for (adapter, case, dtype, check, _clauses), pairs in seen.items():
        if len({s for _, s in pairs}) > 1:
            out.append({"adapter": adapter, "case": case, "dtype": dtype, "check": check,
                        "statuses": [f"{s} ({label})" for label, s in pairs]})
    out.sort(key=lambda c: (c["adapter"], c["case"], c["dtype"], c["check"]))
    return out


def merge(runs: list[Run], clause_sections: dict[str, str] | None = None,
          clause_order: list[str] | None = None, section_order: list[str] | None = None,
          ops: dict | None = None) -> Merged:
    """All runs' records counted per implementation, spec section and clause; records annotated
    with "impl" (display name) and "sections", sorted worst first. `ops`: the runs' operation
    metadata (model.operations_of), for records without clauses."""
    clause_sections = clause_sections or {}
    impls = _implementations(runs)
    clause_cells: dict[tuple[str, tuple], Counter] = defaultdict(Counter)
    records: list[dict] = []
    seen_sections: set[str] = set()
    seen_clauses: dict[str, None] = {}  # insertion-ordered set
    for run in runs:
        for rec in run.records:
            impl = impls[(run.label, rec["adapter"])]
            rec["sections"] = record_sections(rec, clause_sections, ops)
            rec["impl"] = impl.name
            _count(impl, rec, rec["sections"], clause_cells)
            seen_sections.update(rec["sections"])
            seen_clauses.update(dict.fromkeys(rec["clauses"]))
            records.append(rec)
    order = list(clause_order or [])
    sections = list(section_order or SECTION_ORDER)   # the spec index's order (rope after enc)
    rank = {s: i for i, s in enumerate(SEVERITY)}
    records.sort(key=lambda r: (rank.get(status_class(r["status"]), 0), r["impl"], r["case"], r["dtype"], r["check"]))
    present = {status_class(r["status"]) for r in records}
    return Merged(
        runs=runs,
        # the reference first (it anchors the comparison), then by framework and name
        implementations=sorted(impls.values(), key=lambda i: ("reference" not in i.adapter.lower(), i.framework, i.name)),
        sections=[s for s in sections if s in seen_sections] + sorted(seen_sections - set(sections)),
        records=records,
        clause_ids=order + [c for c in seen_clauses if c not in order],
        clause_cells=clause_cells,
        frameworks=sorted({i.framework for i in impls.values()}),
        dtypes=sorted({r["dtype"] for r in records if r["dtype"]}),
        statuses=[s for s in (*STATUSES, "other") if s in present],
        conflicts=conflicts(runs),
    )


def count_cell(counter: Counter) -> dict:
    """Display data for one summary cell: pass/total and each non-zero status."""
    total = sum(counter.values())
    return {
        "total": total,
        "pass": counter.get("pass", 0),
        "parts": [(s, counter[s]) for s in (*STATUSES, "other") if counter.get(s) and s != "pass"],
        "worst": worst(counter.elements()) if total else "none",
        "bad": sum(counter.get(s, 0) for s in (*BAD_STATUSES, "other")),
    }
