"""The results JSON (spec/results.schema.json): written as the run goes, read back validated.

`ResultsWriter` keeps the document in memory and rewrites the file atomically (temporary file +
os.replace) whenever `flush()` is called and at most every `interval_s` on `add()`, so a run
killed halfway leaves a valid file with every record flushed so far (`complete: false`,
`finished_at: null`). `read_results(path)` validates a file and rejects newer schema versions
with a one-line UsageError.

Must not import any framework (versions come from package metadata) or judge anything.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from attnconf.errors import UsageError

SCHEMA_VERSION = "1.0"
FRAMEWORK_PACKAGES = {"torch": "torch", "jax": "jax", "jaxlib": "jaxlib", "tensorflow": "tensorflow",
                      "tensorflow-cpu": "tensorflow-cpu", "keras": "keras", "keras-hub": "keras-hub",
                      "ml_dtypes": "ml_dtypes"}


@functools.lru_cache(maxsize=None)
def schema() -> dict:
    text = resources.files("attnconf.spec").joinpath("results.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return (platform.processor() or platform.machine()) + f" ({os.cpu_count()} cores)"


def environment(device: str = "cpu") -> dict:
    frameworks = {}
    for name, dist in FRAMEWORK_PACKAGES.items():
        try:
            frameworks[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": _cpu(),
            "numpy": np.__version__, "frameworks": frameworks, "device": device}


def _spec_version() -> str:
    from attnconf import spec

    return spec.spec_version()


def new_document(*, command: list[str] | None = None, device: str = "cpu", level: str = "default") -> dict:
    from attnconf import SUITE_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "suite_version": SUITE_VERSION,
        "spec_version": _spec_version(),
        "started_at": now(),
        "finished_at": None,
        "complete": False,
        "elapsed_s": None,
        "level": level,
        "command": list(sys.argv if command is None else command),
        "environment": environment(device),
        "adapters": [],
        "results": [],
        "profiles": {},
    }


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _clean(o):
    """JSON cannot hold inf/NaN: write them as the strings the schema allows."""
    if isinstance(o, float) and not np.isfinite(o):
        return "nan" if o != o else ("inf" if o > 0 else "-inf")
    if hasattr(o, "to_json") and hasattr(o, "failing"):   # a Record: its one JSON form
        o = o.to_json()
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_UMASK_MODE = _umask_mode()


def write_json_atomic(path: Path, doc: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_clean(doc), f, indent=1, default=_default, allow_nan=False)
        os.chmod(tmp, _UMASK_MODE)  # mkstemp makes 0600; a results file is for sharing
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_writable(path, *, option: str = "--json") -> Path:
    """UsageError (one line) unless `path` can be written: checked before any case runs.

    option: the command-line option that named the path, for the message.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UsageError(f"{option} path should be writable, but {path} is not ({exc.strerror or exc})") from None
    if path.is_dir():
        raise UsageError(f"{option} path should be a file, but {path} is a directory")
    return path


class ResultsWriter:
    """Accumulates records and keeps `path` a valid, current results file as the run goes."""

    def __init__(self, path, *, command=None, device: str = "cpu", level: str = "default",
                 interval_s: float = 1.0, doc: dict | None = None):
        self.path = Path(path) if path is not None else None
        self.doc = doc if doc is not None else new_document(command=command, device=device, level=level)
        self.interval_s = interval_s
        self._t0 = time.perf_counter()
        self._last = 0.0
        self.flush()

    @property
    def records(self) -> list[dict]:
        return self.doc["results"]

    def add_adapter(self, description: dict) -> None:
        if not any(a.get("name") == description.get("name") for a in self.doc["adapters"]):
            self.doc["adapters"].append(description)

    def add(self, record) -> None:
        """Append a Record (its JSON form, Record.to_json; a dict is taken as that form already)."""
        self.doc["results"].append(record.to_json() if hasattr(record, "to_json") else record)
        if time.perf_counter() - self._last >= self.interval_s:
            self.flush()

    def extend(self, records) -> None:
        for r in records:
            self.add(r)

    def set_profile(self, adapter: str, profile: dict) -> None:
        self.doc["profiles"][adapter] = profile

    def flush(self) -> None:
        self.doc["elapsed_s"] = round(time.perf_counter() - self._t0, 3)
        if self.path is not None:
            write_json_atomic(self.path, self.doc)
        self._last = time.perf_counter()

    def finish(self) -> dict:
        self.doc["finished_at"] = now()
        self.doc["complete"] = True
        self.flush()
        return self.doc


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(text).split("."))


def validate(doc: dict, *, source: str = "results") -> dict:
    """The document if it matches the schema; UsageError with one line naming the problem."""
    if not isinstance(doc, dict):
        raise UsageError(f"{source} should be a JSON object, but got {type(doc).__name__}")
    version = doc.get("schema_version")
    try:
        newer = _version_tuple(version) > _version_tuple(SCHEMA_VERSION)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: schema_version should look like '1.0', but got {version!r}") from None
    if newer:
        raise UsageError(f"{source} has schema_version {version}, newer than this attnconf reads "
                         f"({SCHEMA_VERSION}): upgrade attnconf")
    return check_schema(doc, schema(), source=source)


def record_schema() -> dict:
    """The schema of one results record: $defs/record, with the $defs its $refs name."""
    full = schema()
    return {"$schema": full["$schema"], "$defs": full["$defs"], "$ref": "#/$defs/record"}


def check_schema(instance, against: dict, *, source: str):
    """`instance` if it matches `against` (the results schema or a part of it, record_schema());
    else UsageError with one line naming the problem and where it is."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(against).iter_errors(instance))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UsageError(f"{source} does not match the results schema at {where}: {error.message[:200]}")
    return instance


def read_results(path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"results file {path} should be readable, but {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"results file {path} should be JSON, but line {exc.lineno}: {exc.msg}") from None
    return validate(doc, source=f"results file {path}")
