"""Run implementations in worker processes, so that a kernel that crashes, hangs or eats memory
costs that implementation its cases, not the run.

`WorkerExecutor` implements the runner's Executor interface (DECISIONS.md):
`run(adapter_spec, case, dtype, timeout) -> Outcome`. One worker process per adapter is started on
first use (so the framework import counts against the first case's time budget), reused for the
adapter's other cases, and replaced after a crash, a timeout or a memory exhaustion:

  worker killed by a signal        -> "crash"   message names the signal (SIGSEGV, SIGABRT …)
  worker exits, or MemoryError     -> "crash"   message gives the reason (memory limit, exit code)
  no answer within `timeout`       -> "timeout" the worker's process group is killed
  exception in the implementation  -> "error"   one line: "TypeError: …"
  attnconf.errors.Unsupported      -> "unsupported"
  NotImplementedError              -> "declined"  the plug-in declines the case (a skip)

Protocol (private to this module): the parent sends length-prefixed pickles (the parent is the
trusted side); the worker answers with a JSON header followed by raw array bytes, so nothing the
implementation produced is ever unpickled by the parent. The worker's stdout is redirected to
its stderr (an implementation that prints must not corrupt the protocol), and its stderr goes to
a temporary file whose last line explains a crash.

Must not import any framework, and must not run implementation code in the calling process.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

from attnconf.conformance.results.record import Record, Status
from attnconf.conformance.execution.runner import Outcome
from attnconf.errors import Unsupported, declined_reason, one_line

DEFAULT_TIMEOUT_S = 60.0
# Allocator failures that frameworks report as ordinary exceptions (torch's DefaultCPUAllocator,
# XLA's RESOURCE_EXHAUSTED, a C++ std::bad_alloc translated by pybind11).
_MEMORY_WORDS = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|"
                           r"bad_alloc|RESOURCE_EXHAUSTED", re.IGNORECASE)
_HEADER = struct.Struct(">Q")
_STDERR_TAIL_BYTES = 4096


# ---------------------------------------------------------------------------------------------
# Values that cross the process border
# ---------------------------------------------------------------------------------------------
class Foreign:
    """Stands in, in the parent, for an output the worker could not send as data (an object of
    the implementation's own type, an object array). `Foreign.of("Opaque", "Opaque()")` is an
    instance of a subclass named after the original type, so the judge's "but got Opaque …"
    reads the same as when the implementation ran in-process."""

    __slots__ = ("text",)
    _classes: dict = {}

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    @classmethod
    def of(cls, type_name: str, text: str) -> "Foreign":
        name = type_name if type_name.isidentifier() else "object"
        sub = cls._classes.get(name)
        if sub is None:
            sub = cls._classes[name] = type(name, (cls,), {"__slots__": ()})
        return sub(text)


def _dtype_token(dtype: np.dtype) -> str:
    # ml_dtypes' bfloat16 has no portable dtype.str; send its name instead.
    return dtype.name if dtype.name == "bfloat16" else dtype.str


def _dtype_from_token(token: str) -> np.dtype:
    if token == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(token)


def _encode_value(value: Any, blobs: list[bytes]) -> dict:
    """Describe `value` as JSON, appending array bytes to `blobs`. Never raises."""
    try:
        if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
            return {"kind": "json", "value": value.item()}   # numpy scalars in records
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return {"kind": "foreign", "type": "ndarray", "text": _safe_repr(value)}
            blobs.append(np.ascontiguousarray(value).tobytes())
            return {"kind": "array", "dtype": _dtype_token(value.dtype), "shape": list(value.shape)}
        if value is None:
            return {"kind": "none"}
        if isinstance(value, (bool, int, float, str)):
            return {"kind": "json", "value": value}
        if isinstance(value, (list, tuple)):
            items = [_encode_value(v, blobs) for v in value]
            return {"kind": type(value).__name__, "items": items}
        if isinstance(value, dict):
            return {"kind": "dict", "items": {str(k): _encode_value(v, blobs) for k, v in value.items()}}
    except Exception:  # a hostile __len__/__iter__: fall through to a description
        pass
    return {"kind": "foreign", "type": type(value).__name__, "text": _safe_repr(value)}


def _decode_value(desc: dict, blobs: list[bytes]) -> Any:
    kind = desc["kind"]
    if kind == "array":
        dtype = _dtype_from_token(desc["dtype"])
        return np.frombuffer(blobs.pop(0), dtype=dtype).reshape(desc["shape"]).copy()
    if kind == "none":
        return None
    if kind == "json":
        return desc["value"]
    if kind in ("list", "tuple"):
        items = [_decode_value(d, blobs) for d in desc["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _decode_value(d, blobs) for k, d in desc["items"].items()}
    return Foreign.of(desc.get("type", "object"), desc.get("text", ""))


def _safe_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "<unrepresentable>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The parent side
# ---------------------------------------------------------------------------------------------
class _Dead(Exception):
    """The worker went away (EOF or broken pipe) before answering."""


def signal_name(number: int) -> str:
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"signal {number}"
    desc = signal.strsignal(sig) or ""
    return f"{sig.name} ({desc})" if desc else sig.name


class Worker:
    """One worker process that runs tasks `module:function(*args)` one at a time.

    `call` never raises for anything the task does: it returns an Outcome. After a "crash" or
    "timeout" reply the process is gone; the next call starts a fresh one.
    """

    def __init__(self, *, memory_limit: int | None = None, label: str = "worker",
                 python: str | None = None):
        self.memory_limit = memory_limit
        self.label = label
        self.python = python or sys.executable
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._stderr_mark = 0       # where the current task's stderr starts
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        self.close()
        self._stderr = tempfile.TemporaryFile(prefix="attnconf-worker-")
        argv = [self.python, "-m", "attnconf.conformance.execution.isolation", "--worker"]
        if self.memory_limit:
            argv += ["--memory-limit", str(int(self.memory_limit))]
        # A new session: the worker and anything it spawns form one process group we can kill,
        # and a Ctrl-C at the terminal reaches only the parent, which then closes its workers.
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, start_new_session=True, close_fds=True)
        self.starts += 1
        # The worker imports what the parent could import (tests and plug-ins extend sys.path).
        self._send(("init", {"sys_path": list(sys.path)}), time.monotonic() + 30)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.stdin.close()          # a healthy worker exits on EOF
                    proc.wait(timeout=2)
                except Exception:
                    pass
            self._kill(proc)
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except Exception:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # the group we created with the worker
            except (ProcessLookupError, PermissionError):
                proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- one task ----------------------------------------------------------------------------
    def call(self, target: str, args: tuple = (), *, timeout: float = DEFAULT_TIMEOUT_S) -> Outcome:
        """Run `target` ("pkg.mod:func") with `args` in the worker; at most `timeout` seconds,
        counting the worker's start when it was not running."""
        started = time.monotonic()
        deadline = started + timeout
        try:
            if not self.alive:
                self._start()
            self._stderr_mark = self._stderr.seek(0, os.SEEK_END)
            self._send(("call", target, args), deadline)
            header, blobs = self._receive(deadline)
        except TimeoutError:
            self._kill(self._proc)
            message = self._death_note()
            self.close()
            return Outcome("timeout", message=f"no result within {timeout:g} s; the worker was killed"
                         + (f" (last stderr: {message})" if message else ""),
                         duration_s=time.monotonic() - started)
        except (_Dead, BrokenPipeError, ConnectionResetError, OSError):
            reply = Outcome("crash", message=self._crash_message(), duration_s=time.monotonic() - started)
            self.close()
            return reply
        value = _decode_value(header["value"], blobs) if "value" in header else None
        reply = Outcome(header["status"], value, header.get("message", ""),
                      header.get("duration_s", time.monotonic() - started), header.get("error_type", ""),
                      header.get("error_text", ""))
        if reply.status == "crash":       # MemoryError: the worker's state is suspect
            self.close()
        return reply

    def _crash_message(self) -> str:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                code = proc.returncode
        note = self._death_note()
        if code is not None and code < 0:
            text = f"worker killed by {signal_name(-code)}"
            if -code == signal.SIGKILL:
                text += " (out of memory, or killed from outside)"
        elif code is not None:
            text = f"worker exited with code {code} before answering"
        else:
            text = "worker went away before answering"
        return text + (f"; last stderr: {note}" if note else "")

    def _death_note(self) -> str:
        """The last meaningful line the worker wrote to stderr (the reason it died, usually)."""
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(self._stderr_mark, size - _STDERR_TAIL_BYTES))
            tail = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
        # faulthandler prints "Fatal Python error: Segmentation fault" then a stack; prefer it.
        for ln in lines:
            if ln.startswith("Fatal Python error"):
                return ln[:300]
        return lines[-1][:300] if lines else ""

    # -- framing -----------------------------------------------------------------------------
    def _send(self, message: Any, deadline: float) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(self._proc.stdin.fileno(), _HEADER.pack(len(data)) + data, deadline)

    def _receive(self, deadline: float) -> tuple[dict, list[bytes]]:
        fd = self._proc.stdout.fileno()
        header = json.loads(_read_frame(fd, deadline))
        blobs = [_read_frame(fd, deadline) for _ in range(header.get("blobs", 0))]
        return header, blobs


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        _, writable, _ = select.select([], [fd], [], remaining)
        if writable:
            n = os.write(fd, view[: 1 << 16])
            view = view[n:]


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    chunks, need = [], n
    while need:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, min(need, 1 << 20))
        if not chunk:
            raise _Dead
        chunks.append(chunk)
        need -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float) -> bytes:
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return _read_exact(fd, length, deadline)


# ---------------------------------------------------------------------------------------------
# The Executor
# ---------------------------------------------------------------------------------------------
class WorkerExecutor:
    """The runner's Executor, running each adapter in its own worker process.

    At most `max_workers` workers live at once (least recently used one closed first), so a run
    over torch, jax and tensorflow does not hold three frameworks in memory. Bundled adapters of
    one framework share a worker (see _worker_key).
    """

    name = "worker"

    def __init__(self, *, memory_limit: int | None = None, max_workers: int = 2):
        self.memory_limit = memory_limit
        self.max_workers = max(1, int(max_workers))
        self._workers: dict[str, Worker] = {}

    def _worker_for(self, spec_json: str, label: str) -> Worker:
        worker = self._workers.pop(spec_json, None)
        if worker is None:
            worker = Worker(memory_limit=self.memory_limit, label=label)
        self._workers[spec_json] = worker           # most recently used last
        while len(self._workers) > self.max_workers:
            oldest = next(iter(self._workers))
            self._workers.pop(oldest).close()
        return worker

    def _worker_of(self, adapter_spec) -> tuple[dict, "Worker"]:
        spec = _spec_to_dict(adapter_spec)
        return spec, self._worker_for(_worker_key(spec), spec.get("target", "adapter"))

    def run(self, adapter_spec, case, dtype: str, timeout: float = DEFAULT_TIMEOUT_S) -> Outcome:
        spec, worker = self._worker_of(adapter_spec)
        return worker.call(f"{__name__}:_compute_in_worker", (spec, case, dtype), timeout=timeout)

    def run_checks(self, adapter_spec, adapter, dtype: str, *, seed: int = 0, max_examples: int | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S, select: str | None = None,
                   repro_args: str | None = None) -> list[dict]:
        """invariants.check(adapter, dtype, …) inside the adapter's worker: its records, or one
        crash/timeout/error record for the whole batch (which runs many examples: the budget
        is CHECK_TIMEOUT_FACTOR times the per-case one). select and repro_args: as check's."""
        spec, worker = self._worker_of(adapter_spec)
        reply = worker.call(f"{__name__}:_checks_in_worker", (spec, dtype, seed, max_examples, select, repro_args),
                            timeout=timeout * CHECK_TIMEOUT_FACTOR)
        if reply.status == "ok" and isinstance(reply.outputs, list):
            return reply.outputs
        if reply.status == "unsupported":
            return []
        return [_batch_record(adapter, dtype, reply, "invariant/*", "invariant", seed=seed, select=select,
                              repro_args=repro_args)]

    def detect_profile(self, adapter_spec, *, timeout: float = DEFAULT_TIMEOUT_S):
        """profile.detect(adapter) inside the worker; None when the worker could not answer
        (a profile is a description, not a verdict: the agreement records carry the crash)."""
        spec, worker = self._worker_of(adapter_spec)
        reply = worker.call(f"{__name__}:_profile_in_worker", (spec,), timeout=timeout * CHECK_TIMEOUT_FACTOR)
        return reply.outputs if reply.status == "ok" and isinstance(reply.outputs, dict) else None

    def close(self) -> None:
        while self._workers:
            _, worker = self._workers.popitem()
            worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



def resolve_isolated(*, timeout: float = 300.0, **kwargs) -> list:
    """registry.resolve(**kwargs) run in a throw-away worker first, so that a plug-in that
    crashes or hangs while it is imported ends `attnconf run` with one line (exit 2) instead of
    killing it; then resolved here (the import is known to survive) and returned."""
    from attnconf.adapters import registry
    from attnconf.errors import SetupError, UsageError

    with Worker(label="resolve") as worker:
        reply = worker.call(f"{__name__}:_resolve_in_worker", (kwargs,), timeout=timeout)
    if reply.status in ("crash", "timeout"):
        functions = registry.function_targets(kwargs.get("functions"), **{
            k: v for k, v in kwargs.items() if k not in ("names", "functions", "framework", "adapter_classes", "device")})
        targets = [*functions.values(), *kwargs.get("adapter_classes", ()), *kwargs.get("names", ())]
        what = ", ".join(t for t in targets if t) or "the adapters"
        raise SetupError(f"loading {what} should finish in a worker process, but it "
                         + ("crashed: " if reply.status == "crash" else "timed out: ") + reply.message)
    if reply.status == "error" and reply.error_type in ("UsageError", "SetupError"):
        cls = UsageError if reply.error_type == "UsageError" else SetupError
        raise cls(reply.error_text or reply.message)
    return registry.resolve(**kwargs)


def _resolve_in_worker(kwargs: dict) -> list:
    from attnconf.adapters import registry

    return [spec.to_json() for spec in registry.resolve(**kwargs)]


def _worker_key(spec: dict) -> str:
    """Which worker runs a spec. Bundled adapters of one framework share a worker, so torch (or
    TensorFlow) is imported once per run, not once per backend row; a crash still costs only the
    case in flight. Third-party adapters and functions always get a worker of their own."""
    if spec.get("kind") == "bundled" and spec.get("framework"):
        return f"bundled:{spec['framework']}:{spec.get('device', 'cpu')}"
    return json.dumps(spec, sort_keys=True)


def _spec_to_dict(spec) -> dict:
    if isinstance(spec, dict):
        return dict(spec)
    if dataclasses.is_dataclass(spec):
        return dataclasses.asdict(spec)
    if hasattr(spec, "to_json"):
        return spec.to_json()
    raise TypeError(f"adapter_spec should be an AdapterSpec or a dict, but got {type(spec).__name__}")


CHECK_TIMEOUT_FACTOR = 10


def _batch_record(adapter, dtype: str, reply: Outcome, case: str, check: str, *, seed: int | None = None,
                  select: str | None = None, repro_args: str | None = None) -> dict:
    """A schema-valid record standing for a batch of checks that did not come back; its repro
    reruns the batch (the run's --select, or `case`, a glob of the batch's record ids)."""
    from attnconf.conformance.results import repro

    args = repro_args if repro_args is not None else repro.adapter_args(adapter)
    status = Status(reply.status) if reply.status in (Status.CRASH, Status.TIMEOUT) else Status.ERROR
    return Record(adapter=adapter.name, framework=adapter.framework, operation=_batch_operation(adapter),
                  case=case, clauses=[], dtype=dtype, check=check, status=status,
                  metrics={}, message=f"the {check} checks did not complete: {reply.message}",
                  repro=repro.command(args, select or case, dtype, seed=seed),
                  duration_s=round(float(reply.duration_s), 6), options={}, shapes={}).to_json()


def _batch_operation(adapter) -> str:
    """The operation a batch record names: the registry's first operation when the adapter
    offers it (or declares none), else the adapter's first."""
    from attnconf import operations

    first, offered = operations.names()[0], tuple(adapter.capabilities.operations or ())
    return first if first in offered or not offered else offered[0]


_ADAPTERS: dict[str, Any] = {}


def _compute_in_worker(spec: dict, case, dtype: str):
    """Runs inside the worker: instantiate the adapter once, then compute one case."""
    from attnconf.conformance.judging import engine

    return engine.compute_outputs(_adapter_in_worker(spec), case, dtype)


def _adapter_in_worker(spec: dict):
    from attnconf.adapters import registry

    key = json.dumps(spec, sort_keys=True)
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        adapter = _ADAPTERS[key] = registry.instantiate(registry.AdapterSpec.from_json(spec))
    return adapter


def _checks_in_worker(spec: dict, dtype: str, seed: int, max_examples: int | None, select=None, repro_args=None):
    from attnconf.conformance.checks import invariants

    return invariants.check(_adapter_in_worker(spec), dtype, seed=seed, max_examples=max_examples,
                            select=select, repro_args=repro_args)


def _profile_in_worker(spec: dict):
    from attnconf.conformance.checks import profile

    return profile.detect(_adapter_in_worker(spec))


# ---------------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------------
def _resolve(target: str) -> Callable:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _answer(out, header: dict, blobs: list[bytes]) -> None:
    header = dict(header, blobs=len(blobs))
    frames = [json.dumps(header).encode()] + blobs
    out.write(b"".join(_HEADER.pack(len(f)) + f for f in frames))
    out.flush()


def _run_task(target: str, args: tuple) -> tuple[dict, list[bytes]]:
    blobs: list[bytes] = []
    started = time.perf_counter()
    try:
        value = _resolve(target)(*args)
    except Unsupported as exc:
        return {"status": "unsupported", "message": exc.reason}, blobs
    except NotImplementedError as exc:   # the plug-in declines this case: skip, not error
        return {"status": "declined", "message": declined_reason(exc)}, blobs
    except MemoryError as exc:
        detail = f": {exc}" if str(exc) else ""
        return {"status": "crash", "message": f"memory exhausted (MemoryError{detail})"}, blobs
    except Exception as exc:
        if _MEMORY_WORDS.search(str(exc)):   # torch/XLA allocators raise ordinary exceptions
            return {"status": "crash", "message": f"memory exhausted ({one_line(exc)})"}, blobs
        return {"status": "error", "message": one_line(exc), "error_type": type(exc).__name__,
                "error_text": str(exc)}, blobs
    duration = time.perf_counter() - started
    try:
        desc = _encode_value(value, blobs)
    except MemoryError:
        return {"status": "crash", "message": "memory exhausted while sending the outputs"}, []
    return {"status": "ok", "value": desc, "duration_s": duration}, blobs


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the parent dies (a hung kernel must not
    outlive a killed run)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def worker_main(argv: list[str]) -> int:
    import faulthandler

    if "--memory-limit" in argv:
        import resource

        limit = int(argv[argv.index("--memory-limit") + 1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _die_with_parent()
    # The protocol owns the real stdout; anything the implementation prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    faulthandler.enable(file=sys.__stderr__)
    inp = os.fdopen(0, "rb")
    while True:
        raw = inp.read(_HEADER.size)
        if len(raw) < _HEADER.size:
            return 0                                  # parent closed the pipe: done
        (length,) = _HEADER.unpack(raw)
        message = pickle.loads(inp.read(length))
        if message[0] == "init":
            for entry in reversed(message[1]["sys_path"]):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
            continue
        _, target, args = message
        header, blobs = _run_task(target, args)
        try:
            _answer(out, header, blobs)
        except MemoryError:
            _answer(out, {"status": "crash", "message": "memory exhausted while sending the outputs"}, [])


if __name__ == "__main__":
    if "--worker" in sys.argv:
        raise SystemExit(worker_main(sys.argv[1:]))
    sys.stderr.write("attnconf.conformance.execution.isolation: internal worker entry point, run by attnconf itself\n")
    raise SystemExit(2)
