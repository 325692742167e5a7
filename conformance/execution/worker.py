"""The worker process (child side of execution/isolation.py): `python -m attnconf.conformance.execution.worker
--worker` reads pickled tasks ("module:function", args) from the parent on stdin and answers each on
its real stdout (wire.py framing); the implementation's own prints go to stderr. A task's exception
becomes a status (unsupported, declined, crash for memory exhaustion, error), never a dead protocol.
Runs implementation code: only ever in a worker, never in the calling process."""
from __future__ import annotations

import importlib
import json
import os
import pickle
import re
import signal
import sys
import time
from typing import Any, Callable

from attnconf.conformance.execution.wire import _HEADER, _encode_value
from attnconf.errors import Unsupported, declined_reason, one_line

_ADAPTERS: dict[str, Any] = {}


# Allocator failures that frameworks report as ordinary exceptions (torch's DefaultCPUAllocator,
# XLA's RESOURCE_EXHAUSTED, a C++ std::bad_alloc translated by pybind11).
_MEMORY_WORDS = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|"
                           r"bad_alloc|RESOURCE_EXHAUSTED", re.IGNORECASE)


def _resolve_in_worker(kwargs: dict) -> list:
    from attnconf.adapters import registry

    return [spec.to_json() for spec in registry.resolve(**kwargs)]


def _compute_in_worker(spec: dict, case, dtype: str):
    """Runs inside the worker: instantiate the adapter once, then compute one case."""
    from attnconf.conformance.judging import engine

    return engine.compute_outputs(_adapter_in_worker(spec), case, dtype)


def _adapter_in_worker(spec: dict):
    from attnconf.adapters import registry

    key = json.dumps(spec, sort_keys=True)
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        adapter = registry.instantiate(registry.AdapterSpec.from_json(spec))
        # The parent judged availability from package metadata alone; here the framework is
        # really imported, and an adapter that cannot run is every case's one-line error.
        available, reason = adapter.is_available()
        if not available:
            from attnconf.errors import SetupError

            raise SetupError(f"adapter {adapter.name} should be available, but in its worker it is not: {reason}")
        _ADAPTERS[key] = adapter
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
    sys.stderr.write("attnconf.conformance.execution.worker: internal worker entry point, run by attnconf itself\n")
    raise SystemExit(2)
