"""Expectation files: known divergences of an implementation, each with a reason (like WPT's).

A file is JSON:

    {"format": "attnconf-expectations", "version": 1,
     "expectations": [
       {"adapter": "jax-xla", "dtype": "*", "case": "sdpa/*", "clause": "sdpa.fully_masked",
        "status": "fail", "reason": "masked logits are -0.7·finfo.max, not -inf: mean of V"}]}

Entry keys: adapter (glob, required), reason (required, non-empty), dtype (glob, default "*"),
case (glob on the case id, default "*"), clause (glob; matches when any of the record's clauses
matches, default "*"), check (default "*"), status (the expected status or a list of them:
fail | error | crash | timeout; default "fail").

`Expectations.apply(record)` turns a record whose status an entry expects into `xfail` (keeping
the original status and the reason under record["expected"]). `findings(...)` then lists the
entries that matched nothing, that now pass, or whose records ended differently: `--strict`
fails the run for them. `update_document(...)` writes a file from a run's results.

Must not import any framework, and must not change a record's status other than to `xfail`.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path
from typing import Any, Iterable

from attnconf.conformance.results.record import FAILING, Record, Status
from attnconf.errors import UsageError

FORMAT = "attnconf-expectations"
VERSION = 1
_KEYS = ("adapter", "dtype", "case", "clause", "check", "status", "reason")
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "expectations"   # data beside the sub-packages (package-data)


@dataclasses.dataclass(frozen=True)
class Scope:
    """The one matcher of a record against globs: an expectation entry's scope, and calibration's
    (which matches at adapter + dtype + operation + clause + status: its random case ids match no
    golden id). "*" matches anything; clause matches when any of the record's clauses matches ("*"
    also a record that cites none); operation globs the case id's prefix before its first "/";
    status: the statuses in scope, () for any."""

    adapter: str = "*"
    dtype: str = "*"
    case: str = "*"
    clause: str = "*"
    check: str = "*"
    operation: str = "*"
    status: tuple[str, ...] = ()

    def covers(self, record: dict) -> bool:
        def glob(key: str, pattern: str) -> bool:
            return fnmatch.fnmatchcase(str(record.get(key, "")), pattern)

        return ((not self.status or record.get("status") in self.status)
                and glob("adapter", self.adapter) and glob("dtype", self.dtype)
                and glob("case", self.case) and glob("check", self.check)
                and fnmatch.fnmatchcase(str(record.get("case", "")).split("/", 1)[0], self.operation)
                and (self.clause == "*" or any(fnmatch.fnmatchcase(str(c), self.clause)
                                               for c in record.get("clauses", ()))))


@dataclasses.dataclass(frozen=True)
class Expectation:
    adapter: str
    reason: str
    dtype: str = "*"
    case: str = "*"
    clause: str = "*"
    check: str = "*"
    status: tuple[str, ...] = ("fail",)
    source: str = ""                       # "file.json#3": where the entry was written

    def covers(self, record: dict) -> bool:
        """Whether the record is in this entry's scope (its status aside)."""
        return Scope(adapter=self.adapter, dtype=self.dtype, case=self.case, clause=self.clause,
                     check=self.check).covers(record)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"adapter": self.adapter}
        for key in ("dtype", "case", "clause", "check"):
            value = getattr(self, key)
            if value != "*":
                out[key] = value
        out["status"] = self.status[0] if len(self.status) == 1 else list(self.status)
        out["reason"] = self.reason
        return out

    def describe(self) -> str:
        scope = " ".join(f"{k}={getattr(self, k)}" for k in ("adapter", "dtype", "case", "clause", "check")
                         if getattr(self, k) != "*" or k == "adapter")
        return f"{self.source}: {scope} expects {'|'.join(self.status)}"


@dataclasses.dataclass
class Finding:
    """Something a run says about an entry: kind "unmatched" | "passes" | "status_differs" |
    "not_exercised" | "unknown_clause" (its clause glob names no clause of the spec) |
    "unknown_adapter" (its adapter glob names no bundled adapter nor one of this run). Every kind
    except "not_exercised" fails a --strict run."""

    kind: str
    entry: Expectation
    detail: str

    @property
    def strict_failure(self) -> bool:
        return self.kind != "not_exercised"

    def line(self) -> str:
        label = {"unmatched": "matches nothing", "passes": "now passes",
                 "status_differs": "status differs", "not_exercised": "not exercised",
                 "unknown_clause": "names an unknown clause",
                 "unknown_adapter": "names an unknown adapter"}[self.kind]
        return f"expectation {label}: {self.entry.describe()} — {self.detail}"


def _parse_entry(raw: Any, source: str) -> Expectation:
    if not isinstance(raw, dict):
        raise UsageError(f"{source} should be a JSON object, but got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise UsageError(f"{source} has unknown key {unknown[0]!r}; keys should be among {', '.join(_KEYS)}")
    for key in ("adapter", "reason"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise UsageError(f"{source} should have a non-empty string {key!r}, but got {raw.get(key)!r}")
    for key in ("dtype", "case", "clause", "check"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            raise UsageError(f"{source}: {key!r} should be a non-empty string (a glob), but got {raw[key]!r}")
    status = raw.get("status", "fail")
    statuses = (status,) if isinstance(status, str) else tuple(status) if isinstance(status, list) else None
    if not statuses or any(s not in FAILING for s in statuses):
        raise UsageError(f"{source}: status should be one of {', '.join(FAILING)} (or a list of them), "
                         f"but got {status!r}")
    return Expectation(adapter=raw["adapter"], reason=raw["reason"].strip(), status=statuses, source=source,
                       **{k: raw[k] for k in ("dtype", "case", "clause", "check") if k in raw})


def parse_document(doc: Any, name: str) -> list[Expectation]:
    """The entries of a parsed expectations document; UsageError naming `name` when malformed."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f"{name} should be an expectations file (a JSON object with \"format\": "
                         f"\"{FORMAT}\"), but it is not")
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UsageError(f"{name} has expectations format version {version!r}; this attnconf reads "
                         f"version {VERSION} and older (upgrade attnconf)")
    entries = doc.get("expectations")
    if not isinstance(entries, list):
        raise UsageError(f"{name}: \"expectations\" should be a list of entries, but got {type(entries).__name__}")
    return [_parse_entry(raw, f"{name}#{i}") for i, raw in enumerate(entries)]


def read_file(path: str | Path) -> list[Expectation]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"expectations file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"expectations file {path} cannot be read: {exc.__class__.__name__}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"expectations file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"expectations file {path} should be an expectations document, but it nests "
                         "deeper than Python's JSON reader goes") from None
    return parse_document(doc, path.name)


def shipped_paths() -> list[Path]:
    """The expectation files shipped for the bundled adapters."""
    return sorted(SHIPPED_DIR.glob("*.json")) if SHIPPED_DIR.is_dir() else []


class Expectations:
    """Entries from one or more files, applied to records as a run produces them."""

    def __init__(self, entries: Iterable[Expectation] = ()):
        self.entries = list(entries)
        self._seen: dict[int, dict[str, list[str]]] = {i: {} for i in range(len(self.entries))}

    @classmethod
    def load(cls, paths: Iterable[str | Path] | None = None) -> "Expectations":
        """Entries of `paths`; None means the shipped files."""
        paths = shipped_paths() if paths is None else [Path(p) for p in paths]
        return cls(e for p in paths for e in read_file(p))

    def match(self, record: dict) -> Expectation | None:
        """The first entry covering `record` that expects its status."""
        for entry in self.entries:
            if record.get("status") in entry.status and entry.covers(record):
                return entry
        return None

    def apply(self, record) -> Record:
        """`record` (a Record, or its JSON form this process wrote), as `xfail` when an entry
        expects its failure; notes what each entry saw."""
        record = Record.from_json(record, validate=False)
        status = record["status"]
        where = f"{record.get('case')}@{record.get('dtype')}"
        for i, entry in enumerate(self.entries):
            if entry.covers(record):
                self._seen[i].setdefault(status, []).append(where)
        entry = self.match(record) if status in FAILING else None
        if entry is None:
            return record
        message = record.message or status
        return record.replace(status=Status.XFAIL, message=f"expected {status} ({entry.reason}): {message}",
                              expected={"status": status, "reason": entry.reason, "source": entry.source})

    def findings(self, *, adapters: Iterable[str], dtypes: Iterable[str] | None = None,
                 partial: bool = False, known_adapters: Iterable[str] | None = None) -> list[Finding]:
        """What the run says about the entries whose adapter ran (and dtype, when given).

        partial: the run was restricted (--select), so an entry that matched nothing may merely
        not have been selected: reported as "not_exercised", which --strict does not count.
        known_adapters: every adapter name an entry may rightly name (the bundled ones; the
        caller knows them: judging imports no adapter); None: adapter names are not checked.
        """
        adapters = list(adapters)
        dtypes = list(dtypes) if dtypes is not None else None
        out = unknown_names(self.entries, None if known_adapters is None else [*known_adapters, *adapters])
        for i, entry in enumerate(self.entries):
            if not any(fnmatch.fnmatchcase(a, entry.adapter) for a in adapters):
                continue
            if dtypes is not None and not any(fnmatch.fnmatchcase(d, entry.dtype) for d in dtypes):
                continue
            seen = self._seen[i]
            expected = sum(len(seen.get(s, ())) for s in entry.status)
            passed = seen.get("pass", [])
            other = {s: w for s, w in seen.items() if s in FAILING and s not in entry.status}
            ran = {s: w for s, w in seen.items() if s != "skip"}
            if not ran:
                skipped = f" ({len(seen['skip'])} skipped)" if seen.get("skip") else ""
                kind = "not_exercised" if partial else "unmatched"
                out.append(Finding(kind, entry, "no record of this run is in its scope" + skipped))
                continue
            if passed:
                out.append(Finding("passes", entry, f"{len(passed)} record(s) in its scope pass, e.g. {passed[0]}"))
            if other:
                s, where = next(iter(other.items()))
                out.append(Finding("status_differs", entry, f"{len(where)} record(s) ended {s}, e.g. {where[0]}"))
            if not expected and not passed and not other:
                out.append(Finding("unmatched", entry, "the records in its scope neither fail nor pass"))
        return out


def unknown_names(entries: Iterable[Expectation], known_adapters: Iterable[str] | None = None) -> list[Finding]:
    """Entries whose clause glob matches no clause id of the spec, or whose adapter glob matches
    none of `known_adapters` (the bundled adapters and this run's; None: not checked): a
    misspelling that would otherwise expect nothing, silently."""
    from attnconf import spec

    clauses = spec.clause_ids()
    known = None if known_adapters is None else set(known_adapters)
    out = []
    for entry in entries:
        if entry.clause != "*" and not any(fnmatch.fnmatchcase(c, entry.clause) for c in clauses):
            out.append(Finding("unknown_clause", entry, f"no clause of spec/index.json matches {entry.clause!r}"))
        if known is not None and not any(fnmatch.fnmatchcase(a, entry.adapter) for a in known):
            out.append(Finding("unknown_adapter", entry,
                               f"no bundled adapter nor one of this run matches {entry.adapter!r}"))
    return out


# ---------------------------------------------------------------------------------------------
# Writing a file from a run (`attnconf expectations update`)
# ---------------------------------------------------------------------------------------------
def _original_status(record: dict) -> str:
    if record.get("status") == "xfail":
        return (record.get("expected") or {}).get("status", "fail")
    return record.get("status", "")


def update_document(records: list[dict], existing: Iterable[Expectation] = (), *,
                    adapters: Iterable[str] | None = None) -> dict:
    """An expectations document that expects exactly the failures in `records`.

    Existing entries (with their globs and reasons) are kept when every record in their scope
    still fails as they expect; the other failures get one entry each (dtype "*" when the case
    fails the same way at every dtype the run measured), with a reason to be written by a person.
    """
    wanted = set(adapters) if adapters is not None else None
    records = [r for r in records if wanted is None or r.get("adapter") in wanted]
    failing = [r for r in records if _original_status(r) in FAILING]
    kept: list[Expectation] = []
    for entry in existing:
        scope = [r for r in records if entry.covers(r) and _original_status(r) != "skip"]
        if scope and all(_original_status(r) in entry.status for r in scope):
            kept.append(entry)
    todo = [r for r in failing if not any(e.covers(r) and _original_status(r) in e.status for e in kept)]

    measured: dict[tuple, set] = {}
    for r in records:
        if _original_status(r) != "skip":
            measured.setdefault((r.get("adapter"), r.get("case"), r.get("check")), set()).add(r.get("dtype"))
    groups: dict[tuple, list[dict]] = {}
    for r in todo:
        groups.setdefault((r.get("adapter"), r.get("case"), r.get("check"), _original_status(r)), []).append(r)
    new = []
    for (adapter, case, check, status), rs in groups.items():
        dtypes = sorted({r.get("dtype") for r in rs})
        if set(dtypes) == measured.get((adapter, case, check), set()) and len(dtypes) > 1:
            dtypes = ["*"]
        for dtype in dtypes:
            sample = next(r for r in rs if dtype in ("*", r.get("dtype")))
            reason = (sample.get("expected") or {}).get("reason") or \
                f"TODO: explain this divergence (seen: {(sample.get('message') or status)[:160]})"
            new.append(Expectation(adapter=adapter, dtype=dtype, case=case, check=check or "*",
                                   status=(status,), reason=reason))
    entries = sorted(kept + new, key=lambda e: (e.adapter, e.case, e.dtype, e.clause))
    return {"format": FORMAT, "version": VERSION,
            "expectations": [e.to_json() for e in entries]}


def write_document(doc: dict, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"expectations output {path} should be a writable file path, but writing failed: "
                         f"{exc.strerror or exc}") from None
    return path
