"""Reading results JSON files into normalised runs and records, defensively.

A results file comes from `attnconf run` (schema in spec/results.schema.json), possibly from an
older or newer suite, a killed run, or a plug-in that put anything into its strings. This module
turns each file into a `Run` whose records always have the same keys and plain types, so the
renderer never has to guess. Unknown fields are ignored; missing optional fields get neutral
defaults. A file that cannot be read becomes one line in `problems`, never an exception.

A file is checked against the same schema as `attnconf.conformance.results.files.validate`
(spec/results.schema.json): a document that does not match is a problem and is skipped; a record
that does not match is a problem (with the schema's reason) and is never shown, while the file's
valid records still are. Documents passed in memory (`render([doc])`, the suite's own from
`attnconf run --html`) are normalised only.

Must not render anything, and must not import any framework.
"""
from __future__ import annotations

import functools
import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from attnconf.conformance.results.record import FAILING, Status

SCHEMA_MAJOR = 1  # the results schema major version this reader understands

STATUSES = tuple(s.value for s in Status)
# Statuses that mean "does not conform". An unknown status counts here too (is_bad): a reader
# that cannot interpret a status must not let it pass silently.
BAD_STATUSES = FAILING
# Display order, worst first (used for sorting and for the worst status of a group).
SEVERITY = ("crash", "timeout", "error", "fail", "other", "xfail", "skip", "pass")


@dataclass
class Run:
    """One results document: its label in the report, where it came from, the raw data."""

    label: str
    source: str
    data: dict
    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def environment(self) -> dict:
        env = self.data.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def profiles(self) -> dict:
        prof = self.data.get("profiles")
        return prof if isinstance(prof, dict) else {}

    @property
    def benchmarks(self) -> dict | None:
        bench = self.data.get("benchmarks")
        return bench if isinstance(bench, dict) else None


def text(value: Any, default: str = "") -> str:
    """Any JSON value as display text (None -> default); never raises."""
    if value is None:
        return default
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def number(value: Any) -> float | None:
    """A finite-or-infinite float, or None when the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                return float(value)  # "inf"/"nan" written by some JSON encoders as strings
            except ValueError:
                return None
        return None
    return float(value)


def status_class(status: str) -> str:
    return status if status in STATUSES else "other"


def is_bad(status: str) -> bool:
    return status in BAD_STATUSES or status_class(status) == "other"


def normalise_record(raw: Any, run_label: str, frameworks: dict[str, str]) -> dict | None:
    """One results record with guaranteed keys and plain types; None if it is not an object."""
    if not isinstance(raw, dict):
        return None
    adapter = text(raw.get("adapter"), "?")
    clauses = raw.get("clauses")
    clauses = [text(c) for c in clauses] if isinstance(clauses, list) else []
    metrics = raw.get("metrics") if isinstance(raw.get("metrics"), dict) else {}
    options = raw.get("options") if isinstance(raw.get("options"), dict) else {}
    shapes = raw.get("shapes") if isinstance(raw.get("shapes"), dict) else {}
    return {
        "run": run_label,
        "adapter": adapter,
        "framework": text(raw.get("framework")) or frameworks.get(adapter, "") or "unknown",
        "operation": text(raw.get("operation"), ""),
        "case": text(raw.get("case"), "?"),
        "clauses": clauses,
        "dtype": text(raw.get("dtype"), ""),
        "check": text(raw.get("check"), "agreement"),
        "status": text(raw.get("status"), "other").strip().lower(),
        "metrics": metrics,
        "message": text(raw.get("message")),
        "repro": text(raw.get("repro")),
        "duration_s": number(raw.get("duration_s")),
        "options": options,
        "shapes": shapes,
    }


def record_key(rec: dict) -> tuple:
    """Merge key: (run, adapter, case, dtype, check), plus the clauses so that two checks of one
    case under different clauses (e.g. two invariants) stay distinct records."""
    return (rec["run"], rec["adapter"], rec["case"], rec["dtype"], rec["check"], tuple(rec["clauses"]))


_MAX_RECORD_PROBLEMS = 20   # per file: a file of broken records must not bury the page in lines


@functools.lru_cache(maxsize=1)
def _validators():
    """(document validator, record validator) for the results schema `results.validate` uses."""
    import jsonschema

    from attnconf.conformance.results.files import schema

    full = schema()
    record = {"$schema": full.get("$schema"), "$defs": full["$defs"], "$ref": "#/$defs/record"}
    return jsonschema.Draft202012Validator(full), jsonschema.Draft202012Validator(record)


def _schema_error(validator, value) -> str | None:
    """'at PATH: reason' for the schema's best-matching error, or None when `value` matches."""
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"at {where}: {' '.join(error.message.split())[:200]}"


def document_problem(data: dict, source: str) -> str | None:
    """Why the document (its records aside: those are checked one by one) does not match the
    results schema, as a problem line; None when it does."""
    doc = {**data, "results": []} if isinstance(data.get("results"), list) else data
    why = _schema_error(_validators()[0], doc)
    return None if why is None else f"{source}: does not match the results schema {why}; skipped"


def record_problem(raw: Any) -> str | None:
    """Why one results record does not match the schema's record definition, or None."""
    return _schema_error(_validators()[1], raw)


def _record_label(raw: Any, index: int) -> str:
    if not isinstance(raw, dict):
        return f"record {index}"
    parts = [text(raw.get(k)) for k in ("adapter", "case", "dtype") if isinstance(raw.get(k), str)]
    return f"record {index}" + (f" ({' '.join(parts)})" if parts else "")


def make_run(data: dict, label: str, source: str, *, check_schema: bool = False) -> Run:
    """A Run from an already-parsed results document (dict). check_schema: records that do not
    match the results schema are left out, each named in `problems` with the reason."""
    run = Run(label=label, source=source, data=data)
    frameworks = {}
    for desc in data.get("adapters") or []:
        if isinstance(desc, dict) and desc.get("name") is not None:
            frameworks[text(desc.get("name"))] = text(desc.get("framework"))
    raw_records = data.get("results")
    if raw_records is None:
        raw_records = []
    if not isinstance(raw_records, list):
        run.problems.append(f"{source}: 'results' should be a list, but got {type(raw_records).__name__}; ignored")
        raw_records = []
    by_key: dict[tuple, dict] = {}
    skipped = 0
    invalid = 0
    for index, raw in enumerate(raw_records):
        why = record_problem(raw) if check_schema else None
        if why is not None:
            invalid += 1
            if invalid <= _MAX_RECORD_PROBLEMS:
                run.problems.append(f"{source}: result {_record_label(raw, index)} does not match the results "
                                    f"schema {why}; not shown")
            continue
        rec = normalise_record(raw, label, frameworks)
        if rec is None:
            skipped += 1
            continue
        by_key[record_key(rec)] = rec  # a resumed run may repeat a case: the last record wins
    if skipped:
        run.problems.append(f"{source}: {skipped} result record(s) are not JSON objects; ignored")
    if invalid > _MAX_RECORD_PROBLEMS:
        run.problems.append(f"{source}: {invalid - _MAX_RECORD_PROBLEMS} more result record(s) do not match "
                            "the results schema; not shown")
    run.records = list(by_key.values())
    return run


def _expand(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Folders become their *.json files; glob patterns that name no file are expanded."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            out.extend(sorted(glob.glob(os.path.join(p, "*.json"))))
        elif not os.path.exists(p) and glob.has_magic(p):
            out.extend(sorted(glob.glob(p)) or [p])
        else:
            out.append(p)
    return out


def _unique_label(path: str, taken: set[str]) -> str:
    stem = Path(path).stem or "run"
    label = stem
    if label in taken:
        label = f"{Path(path).parent.name}/{stem}" if Path(path).parent.name else stem
    n = 2
    base = label
    while label in taken:
        label = f"{base}#{n}"
        n += 1
    taken.add(label)
    return label


def _check_document(data: Any, path: str) -> str | None:
    """Why this parsed JSON is not a results document we can read, or None."""
    if not isinstance(data, dict):
        return f"{path}: should be a JSON object (an attnconf results file), but got {type(data).__name__}; skipped"
    if "results" not in data and not isinstance(data.get("benchmarks"), dict):
        return f"{path}: not an attnconf results file (no 'results' list or 'benchmarks' section); skipped"
    version = text(data.get("schema_version"), "1.0")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return f"{path}: schema_version should look like '1.0', but got {version!r}; skipped"
    if major > SCHEMA_MAJOR:
        return (f"{path}: schema_version should be {SCHEMA_MAJOR}.x or older for this attnconf, "
                f"but got {version!r} (written by a newer attnconf); skipped")
    return None


def load_results(paths: Iterable[str | os.PathLike]) -> tuple[list[Run], list[str]]:
    """Read results files (folders mean their *.json) into Runs; problems as one-line strings.

    A missing, unreadable, truncated or foreign file is a problem, not an exception, so that one
    broken tox env does not cost the whole report.
    """
    runs: list[Run] = []
    problems: list[str] = []
    taken: set[str] = set()
    expanded = _expand(paths)
    for path in expanded:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            problems.append(f"{path}: results file not found; skipped")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read ({type(exc).__name__}: {exc}); skipped")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{path}: not valid JSON (truncated or corrupt: {exc}); skipped")
            continue
        except RecursionError:   # hostile input: nesting deeper than Python's JSON reader goes
            problems.append(f"{path}: not a results file (JSON nested too deeply to read); skipped")
            continue
        try:
            why = _check_document(data, path) or document_problem(data, path)
            run = None if why else make_run(data, _unique_label(path, taken), path, check_schema=True)
        except RecursionError:
            why = f"{path}: not a results file (JSON nested too deeply to check); skipped"
        if why:
            problems.append(why)
            continue
        problems.extend(run.problems)
        runs.append(run)
    return runs, problems


def as_runs(items: Iterable[Any], default_prefix: str = "run") -> list[Run]:
    """Accept Runs, parsed result dicts or paths (for `render(runs=…)` called from code)."""
    runs: list[Run] = []
    taken: set[str] = set()
    for i, item in enumerate(items, 1):
        if isinstance(item, Run):
            runs.append(item)
            taken.add(item.label)
        elif isinstance(item, dict):
            label = text(item.get("label") or item.get("_label")) or _label_from_command(item) or f"{default_prefix}{i}"
            while label in taken:
                label += "'"
            taken.add(label)
            runs.append(make_run(item, label, "<in memory>"))
        else:
            loaded, problems = load_results([item])
            if problems:
                raise ValueError("; ".join(problems))
            runs.extend(loaded)
    return runs


def _label_from_command(doc: dict) -> str:
    """A run passed as a dict (e.g. by `attnconf run --html`) is named after its --json file."""
    cmd = doc.get("command")
    if isinstance(cmd, list) and "--json" in cmd:
        i = cmd.index("--json")
        if i + 1 < len(cmd) and isinstance(cmd[i + 1], str):
            return Path(cmd[i + 1]).stem
    return ""
