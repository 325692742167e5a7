"""Run implementations in worker processes, so that a kernel that crashes, hangs or eats memory
costs that implementation its cases, not the run.

`WorkerExecutor` implements the runner's Executor interface (DECISIONS.md):
`run(adapter_spec, case, dtype, timeout) -> Outcome`. One worker process per framework (bundled
adapters; see _worker_key) or per third-party adapter is started on first use (so the framework
import counts against the first case's time budget), reused for the other cases of every adapter
it serves, and replaced after a crash, a timeout or a memory exhaustion — the next case starts a
fresh one, so only the case in flight is lost:

  worker killed by a signal        -> "crash"   message names the signal (SIGSEGV, SIGABRT …)
  worker exits, or MemoryError     -> "crash"   message gives the reason (memory limit, exit code)
  no answer within `timeout`       -> "timeout" the worker's process group is killed
  exception in the implementation  -> "error"   one line: "TypeError: …"
  attnconf.errors.Unsupported      -> "unsupported"
  NotImplementedError              -> "declined"  the plug-in declines the case (a skip)

Protocol (private to this package: wire.py encodes, worker.py is the child side): the parent sends length-prefixed pickles (the parent is the
trusted side); the worker answers with a JSON header followed by raw array bytes, so nothing the
implementation produced is ever unpickled by the parent. The worker's stdout is redirected to
its stderr (an implementation that prints must not corrupt the protocol), and its stderr goes to
a temporary file whose last line explains a crash.

Must not import any framework, and must not run implementation code in the calling process.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from attnconf.conformance.results.record import Record, Status
from attnconf.conformance.execution.executor import Outcome
from attnconf.conformance.execution.wire import _Dead, _HEADER, _decode_value, _write_all, _read_frame

DEFAULT_TIMEOUT_S = 60.0
_STDERR_TAIL_BYTES = 4096


# ---------------------------------------------------------------------------------------------
# The parent side
# ---------------------------------------------------------------------------------------------


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
        argv = [self.python, "-m", "attnconf.conformance.execution.worker", "--worker"]
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
        return worker.call(f"{_WORKER}:_compute_in_worker", (spec, case, dtype), timeout=timeout)

    def run_checks(self, adapter_spec, adapter, dtype: str, *, seed: int = 0, max_examples: int | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S, select: str | None = None,
                   repro_args: str | None = None) -> list[dict]:
        """invariants.check(adapter, dtype, …) inside the adapter's worker: its records, or one
        crash/timeout/error record for the whole batch (which runs many examples: the budget
        is CHECK_TIMEOUT_FACTOR times the per-case one). select and repro_args: as check's."""
        spec, worker = self._worker_of(adapter_spec)
        reply = worker.call(f"{_WORKER}:_checks_in_worker", (spec, dtype, seed, max_examples, select, repro_args),
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
        reply = worker.call(f"{_WORKER}:_profile_in_worker", (spec,), timeout=timeout * CHECK_TIMEOUT_FACTOR)
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
        reply = worker.call(f"{_WORKER}:_resolve_in_worker", (kwargs,), timeout=timeout)
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


def _worker_key(spec: dict) -> str:
    """Which worker runs a spec. Bundled adapters of one framework share a worker, so torch (or
    TensorFlow) is imported once per run, not once per backend row; a crash or hang replaces the
    worker and costs only the case in flight. The HF transformers rows share one worker of their
    own (on torch): transformers' import is the larger part of their time, and two workers let
    `--jobs 2` split the torch-based rows. Third-party adapters and functions always get a worker
    of their own."""
    if spec.get("kind") == "bundled" and spec.get("framework"):
        family = spec["framework"]
        if "transformers" in _bundled_modules(spec.get("target", "")):
            family += "+transformers"
        return f"bundled:{family}:{spec.get('device', 'cpu')}"
    return json.dumps(spec, sort_keys=True)


def _bundled_modules(name: str) -> tuple:
    from attnconf.adapters import registry

    if name not in registry.BUNDLED:
        return ()
    return tuple(getattr(registry._bundled_class(name), "modules", ()) or ())


def _spec_to_dict(spec) -> dict:
    if isinstance(spec, dict):
        return dict(spec)
    if dataclasses.is_dataclass(spec):
        return dataclasses.asdict(spec)
    if hasattr(spec, "to_json"):
        return spec.to_json()
    raise TypeError(f"adapter_spec should be an AdapterSpec or a dict, but got {type(spec).__name__}")


CHECK_TIMEOUT_FACTOR = 10
_WORKER = "attnconf.conformance.execution.worker"   # the module whose functions a worker runs


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


