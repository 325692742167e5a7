"""One results record (spec/results.schema.json, $defs/record): the one type every check builds.

`Record(...)` is the one constructor of a record and this module the one place that knows its
fields, in the order a results file lists them; `Status` is the one set of statuses, and
`Status.failing` / `FAILING` the one set of those that mean "does not conform" (what decides
the exit code, what an expectation may expect, what calibration counts as caught).

A record travels as a `Record` end to end: engine.judge returns one, runner.check_case and
calibration pass it on, expectations.apply takes and returns one, ResultsWriter.add and the pytest
plugin take one. `to_json()` is the one writer of its JSON form and `from_json(d)` the one reader.
A Record also reads like its JSON form (a read-only Mapping: rec["status"], rec.get("metrics"),
dict(rec)), so code that reads results files and code that reads fresh records read alike; the
invariant and profile checks, whose records cross a worker's pipe as JSON, build Records and
hand on `to_json()`.

`Record.from_json(d)` validates `d` against the schema's record definition (results.check_schema,
the validator results.validate uses; validate=False for a dict this process wrote itself) and is
the inverse of `to_json()`: keys the schema allows but does not name (a newer writer's
additions) are kept, so a record read and written again is unchanged.

Must not import any framework, nor judge anything.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import enum
from typing import Any

from attnconf.errors import UsageError


class Status(str, enum.Enum):
    """A record's status (the schema's enum, in its order)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    XFAIL = "xfail"
    ERROR = "error"
    CRASH = "crash"
    TIMEOUT = "timeout"

    @property
    def failing(self) -> bool:
        """Whether the status means the implementation does not conform (an xfail does not:
        its failure was expected)."""
        return self in _FAILING

    def __str__(self) -> str:
        return self.value


_FAILING = frozenset({Status.FAIL, Status.ERROR, Status.CRASH, Status.TIMEOUT})
# The failing statuses' names, in the schema's order: what `status in FAILING` tests on a dict.
FAILING: tuple[str, ...] = tuple(s.value for s in Status if s.failing)

# The fields a results file writes for every record, in its order; then the optional ones
# (None: absent from the JSON form).
_REQUIRED = ("adapter", "operation", "case", "clauses", "dtype", "check", "status", "metrics", "message", "repro")
_ORDER = ("adapter", "framework", "operation", "case", "clauses", "dtype", "check", "status", "metrics",
          "message", "repro", "duration_s", "options", "shapes", "expected")


@dataclasses.dataclass(frozen=True, eq=False)   # equal to what has the same JSON form (Mapping.__eq__)
class Record(collections.abc.Mapping):
    """One check of one case on one implementation at one precision.

    check: "agreement", "invariant", "profile" or "speed". metrics: the check's measurements
    (schema: max_abs_error, max_ulp_error, tolerance_ulps, rule, …). repro: the command that
    reruns just this record. expected: set by an expectations file that turned a failure into
    an xfail ({"status", "reason", "source"}). extra: keys the schema allows but this type does
    not name, kept from from_json so that to_json gives them back.
    """

    adapter: str
    operation: str
    case: str
    clauses: list
    dtype: str
    check: str
    status: Status
    metrics: dict
    message: str
    repro: str
    framework: str | None = None
    duration_s: float | None = None
    options: dict | None = None
    shapes: dict | None = None
    expected: dict | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.status, Status):
            try:
                object.__setattr__(self, "status", Status(self.status))
            except ValueError:
                raise ValueError(f"status should be one of {', '.join(s.value for s in Status)}, "
                                 f"but got {self.status!r}") from None

    @property
    def failing(self) -> bool:
        return self.status.failing

    # --- read-only Mapping over the JSON form (keys in the file's order, optional ones when set)
    def __getitem__(self, key: str):
        if key in _ORDER:
            value = getattr(self, key)
            if value is None and key not in _REQUIRED:
                raise KeyError(key)
            return value.value if key == "status" else value
        return self.extra[key]

    def __iter__(self):
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    __hash__ = None   # a dataclass with mutable fields: compared by value, never hashed

    def replace(self, **changes) -> "Record":
        """A copy with `changes` (fields, or extra keys the schema allows)."""
        known = {k: v for k, v in changes.items() if k in _ORDER}
        extra = {k: v for k, v in changes.items() if k not in _ORDER}
        return dataclasses.replace(self, **known, extra={**self.extra, **extra}) if extra else \
            dataclasses.replace(self, **known)

    def to_json(self) -> dict:
        """The record as the results file holds it (keys in the file's order, optional ones only
        when set). Lists and dicts are copied one level, so editing the dict leaves the Record be."""
        out: dict[str, Any] = {}
        for name in _ORDER:
            value = getattr(self, name)
            if value is None and name not in _REQUIRED:
                continue
            out[name] = value.value if name == "status" else (
                type(value)(value) if isinstance(value, (list, dict)) else value)
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, d, *, source: str = "record", validate: bool = True) -> "Record":
        """The Record of a results record; UsageError (one line) when `d` does not match the
        schema's record definition (validate=False: a record this process built, not checked)."""
        if isinstance(d, Record):
            return d
        if not isinstance(d, dict):
            raise UsageError(f"{source} should be a JSON object, but got {type(d).__name__}")
        if validate:
            from attnconf.conformance.results import schema_check as results

            results.check_schema(d, results.record_schema(), source=source)
        known = {k: v for k, v in d.items() if k in _ORDER}
        return cls(**known, extra={k: v for k, v in d.items() if k not in _ORDER})
