"""The results JSON (spec/results.schema.json): written as the run goes, read back validated.

`ResultsWriter` keeps the document in memory and rewrites the file atomically (temporary file +
os.replace) whenever `flush()` is called and at most every `interval_s` on `add()`, so a run
killed halfway leaves a valid file with every record flushed so far (`complete: false`,
`finished_at: null`). Its path is made absolute when it is created: a plug-in that changes the
working directory in-process cannot move the results. `flush_open()` writes every writer not yet
finished: the CLI calls it on every way out (Ctrl-C, SIGTERM, an error), so every judged record is
on disk however the run ends. A write that fails (disk full) is a ResultsWriteError naming the
file (exit 4); the file keeps its last complete version. `read_results(path)` validates a file and rejects newer schema versions
with a one-line UsageError.

Must not import any framework (versions come from package metadata) or judge anything.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import threading
import time
import weakref
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from attnconf.conformance.results.metadata import operations_metadata
from attnconf.conformance.results.schema_check import check_schema, record_schema, schema  # noqa: F401 (re-exported)
from attnconf.errors import UsageError

SCHEMA_VERSION = "1.0"
FRAMEWORK_PACKAGES = {"torch": "torch", "jax": "jax", "jaxlib": "jaxlib", "tensorflow": "tensorflow",
                      "tensorflow-cpu": "tensorflow-cpu", "keras": "keras", "keras-hub": "keras-hub",
                      "ml_dtypes": "ml_dtypes"}


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
        "operations": operations_metadata(),  # what the report renders from, instead of the registry
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
    """Write `doc` to `path` through a temporary file and os.replace: readers see the old file or the
    new one, never half of one. OSError (disk full …) -> ResultsWriteError naming `path`."""
    from attnconf.errors import ResultsWriteError

    path = Path(path)
    try:
        _write_json_atomic(path, doc)
    except OSError as exc:
        kept = "it keeps its last complete version" if path.exists() else "it was not created"
        raise ResultsWriteError(f"results file {path} could not be written ({exc.strerror or exc}); "
                                f"{kept}") from None


def _write_json_atomic(path: Path, doc: dict) -> None:
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
    return path.absolute()


_OPEN: "weakref.WeakSet[ResultsWriter]" = weakref.WeakSet()


def flush_open() -> list[Path]:
    """Write every results writer that is not finished (an interrupted or failed run): each file
    then holds every record added so far, `complete: false`. Returns their paths; a writer that
    cannot be written (disk full) is skipped here, its file keeping its last version."""
    from attnconf.errors import ResultsWriteError

    paths = []
    for writer in list(_OPEN):
        try:
            writer.flush()
        except ResultsWriteError:
            continue
        if writer.path is not None:
            paths.append(writer.path)
    return paths


class ResultsWriter:
    """Accumulates records and keeps `path` a valid, current results file as the run goes."""

    def __init__(self, path, *, command=None, device: str = "cpu", level: str = "default",
                 interval_s: float = 1.0, doc: dict | None = None):
        # absolute now: a plug-in that chdirs in-process must not move the results
        self.path = Path(path).absolute() if path is not None else None
        self.doc = doc if doc is not None else new_document(command=command, device=device, level=level)
        self.interval_s = interval_s
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._lock = threading.RLock()   # adapters run in threads; a flush must not see a half-added record
        self.flush()
        _OPEN.add(self)

    @property
    def records(self) -> list[dict]:
        return self.doc["results"]

    def add_adapter(self, description: dict) -> None:
        with self._lock:
            if not any(a.get("name") == description.get("name") for a in self.doc["adapters"]):
                self.doc["adapters"].append(description)
            # Provenance: every library an implementation under test runs on (transformers, onnx,
            # onnxruntime, keras-hub … besides the frameworks), from the adapter's package metadata.
            frameworks = self.doc.setdefault("environment", {}).setdefault("frameworks", {})
            for dist, version in sorted((description.get("libraries") or {}).items()):
                frameworks.setdefault(dist, version)

    def add(self, record) -> None:
        """Append a Record (its JSON form, Record.to_json; a dict is taken as that form already)."""
        with self._lock:
            self.doc["results"].append(record.to_json() if hasattr(record, "to_json") else record)
            if time.perf_counter() - self._last >= self.interval_s:
                self.flush()

    def extend(self, records) -> None:
        for r in records:
            self.add(r)

    def set_profile(self, adapter: str, profile: dict) -> None:
        with self._lock:
            self.doc["profiles"][adapter] = profile

    def flush(self) -> None:
        with self._lock:
            self.doc["elapsed_s"] = round(time.perf_counter() - self._t0, 3)
            if self.path is not None:
                write_json_atomic(self.path, self.doc)
            self._last = time.perf_counter()

    def finish(self) -> dict:
        with self._lock:
            self.doc["finished_at"] = now()
            self.doc["complete"] = True
            self.flush()
            _OPEN.discard(self)
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
    except RecursionError:
        raise UsageError(f"results file {path} should be a results document, but it nests deeper than "
                         "Python's JSON reader goes") from None
    try:
        return validate(doc, source=f"results file {path}")
    except RecursionError:
        raise UsageError(f"results file {path} should be a results document, but it nests too deeply "
                         "to check against the schema") from None
