"""The worker process mechanics of conformance/execution/isolation.py, driven with the zoo's plain functions.

Each test runs a misbehaving function in a Worker and checks the Outcome's status and message, and
that the next call still works (the worker is replaced after a crash or a timeout).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from attnconf.conformance.execution.isolation import Worker
from attnconf.conformance.execution.wire import Foreign

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))       # the worker inherits sys.path, so `zoo` resolves there

from zoo import sdpa as zoo_sdpa  # noqa: E402

RNG = np.random.default_rng(7)
Q, K, V = RNG.standard_normal((1, 2, 3, 4)), RNG.standard_normal((1, 2, 5, 4)), RNG.standard_normal((1, 2, 5, 4))
ARGS = (Q, K, V)


@pytest.fixture
def worker():
    w = Worker(memory_limit=1 << 30)
    yield w
    w.close()


def call(worker, name, timeout=10.0, args=ARGS):
    return worker.call(f"zoo.sdpa:{name}", args, timeout=timeout)


def test_correct_function_round_trips_and_worker_is_reused(worker):
    replies = [call(worker, "good") for _ in range(3)]
    assert [r.status for r in replies] == ["ok"] * 3
    np.testing.assert_array_equal(replies[0].outputs, zoo_sdpa.good(*ARGS))
    assert worker.starts == 1, "one worker serves consecutive calls"


@pytest.mark.parametrize("name, signame", [("segfault", "SIGSEGV"), ("abort", "SIGABRT")])
def test_native_crash_is_crash_naming_the_signal_and_worker_restarts(worker, name, signame):
    reply = call(worker, name)
    assert reply.status == "crash"
    assert signame in reply.message
    assert "Fatal Python error" in reply.message      # faulthandler's line from the worker's stderr
    assert call(worker, "good").status == "ok"
    assert worker.starts == 2


@pytest.mark.parametrize("name", ["hang", "sleep_forever"])
def test_hang_is_timeout_within_budget_and_worker_restarts(worker, name):
    assert call(worker, "good").status == "ok"
    started = time.monotonic()
    reply = call(worker, name, timeout=1.5)
    elapsed = time.monotonic() - started
    assert reply.status == "timeout"
    assert "1.5 s" in reply.message
    assert 1.4 < elapsed < 8, elapsed
    assert call(worker, "good").status == "ok"


def test_module_that_hangs_at_import_is_timeout(worker):
    reply = worker.call("zoo.import_hang:sdpa", ARGS, timeout=1.5)
    assert reply.status == "timeout"


def test_memory_hog_under_limit_is_crash_with_reason():
    with Worker(memory_limit=768 << 20) as w:
        reply = call(w, "memory_hog", timeout=60)
        assert reply.status == "crash"
        assert "memory exhausted" in reply.message and "MemoryError" in reply.message
        assert call(w, "good").status == "ok", "a fresh worker replaces the exhausted one"
        assert w.starts == 2


def test_allocator_failure_reported_as_exception_is_memory_crash(worker):
    reply = call(worker, "native_out_of_memory")
    assert reply.status == "crash"
    assert "memory exhausted" in reply.message and "can't allocate memory" in reply.message


@pytest.mark.parametrize("name, words", [("exits", "exited with code 3"), ("hard_exit", "exited with code 0"),
                                         ("keyboard_interrupt", "SIGINT")])
def test_worker_leaving_without_answer_is_crash(worker, name, words):
    reply = call(worker, name)
    assert reply.status == "crash"
    assert words in reply.message


def test_exception_is_error_with_one_line(worker):
    reply = call(worker, "raises")
    assert reply.status == "error"
    assert reply.message == "ValueError: kernel does not like these shapes"
    assert worker.starts == 1 and call(worker, "good").status == "ok", "an exception does not cost the worker"


def test_unsupported_is_reported_as_unsupported(worker):
    reply = call(worker, "unsupported")
    assert reply.status == "unsupported"
    assert reply.message == "this kernel handles only E = 64"


def test_import_error_in_plugin_module_is_error(worker):
    reply = worker.call("zoo.import_error:sdpa", ARGS, timeout=10)
    assert reply.status == "error"
    assert reply.message.startswith("ImportError: libattention_kernel.so")


def test_printing_implementation_does_not_corrupt_the_protocol(worker):
    reply = call(worker, "prints")
    assert reply.status == "ok"
    np.testing.assert_array_equal(reply.outputs, zoo_sdpa.good(*ARGS))


@pytest.mark.parametrize("name, check", [
    ("returns_none", lambda v: v is None),
    ("returns_scalar", lambda v: v == 0.0),
    ("returns_string", lambda v: v == "<script>alert(1)</script>"),
    ("returns_list", lambda v: isinstance(v, list) and np.allclose(v, zoo_sdpa.good(*ARGS))),
    ("returns_tuple", lambda v: isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], np.ndarray)),
    ("returns_dict", lambda v: isinstance(v, dict) and isinstance(v["output"], np.ndarray)),
    ("returns_object", lambda v: isinstance(v, Foreign) and type(v).__name__ == "Opaque" and repr(v) == "Opaque()"),
    ("object_array", lambda v: isinstance(v, Foreign) and type(v).__name__ == "ndarray"),
    ("integer_output", lambda v: isinstance(v, np.ndarray) and v.dtype == np.int32),
    ("nan_output", lambda v: np.isnan(v).sum() == 1),
])
def test_garbage_values_cross_the_border_as_what_they_are(worker, name, check):
    reply = call(worker, name)
    assert reply.status == "ok"
    assert check(reply.outputs), repr(reply.outputs)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.bool_])
def test_arrays_of_every_dtype_cross_bit_exactly(worker, dtype):
    x = RNG.standard_normal((2, 3, 4)).astype(dtype)
    reply = worker.call("numpy:copy", (x,), timeout=10)
    assert reply.status == "ok"
    assert reply.outputs.dtype == x.dtype and reply.outputs.shape == x.shape
    assert reply.outputs.tobytes() == x.tobytes()


def _state(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_worker_dies_with_a_killed_parent():
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(TESTS)!r})
        from attnconf.conformance.execution.isolation import Worker
        w = Worker(); w._start(); print(w._proc.pid, flush=True)
        w.call("zoo.sdpa:hang", (None, None, None), timeout=120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(parent.stdout.readline())
        time.sleep(0.5)                       # the worker is now spinning in the endless loop
        assert _state(worker_pid) not in ("gone", "Z")
        os.kill(parent.pid, signal.SIGKILL)   # the run is killed from outside
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _state(worker_pid) not in ("gone", "Z"):
            time.sleep(0.1)
        assert _state(worker_pid) in ("gone", "Z"), "the hung worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
