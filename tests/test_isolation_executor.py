"""WorkerExecutor with real function adapters and the engine's judge: a crashing, hanging or
garbage-returning plug-in becomes crash / timeout / fail records beside the passing control."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from attnconf import reference
from attnconf.adapters.registry import AdapterSpec
from attnconf.conformance.judging import engine
from attnconf.conformance.execution.isolation import WorkerExecutor
from attnconf.reference.cases import catalogue

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _cases():
    # Two small plain cases whose output axes differ in length, so that a transposed output shows.
    cases = [c for c in catalogue() if c.operation == "sdpa" and not c.options.get("is_causal")
             and "attn_mask" not in c.inputs and len(set(c.inputs["query"].shape[1:3])) == 2][:2]
    assert len(cases) == 2
    for c in cases:
        c.expected = reference.compute(c.operation, c.inputs, c.options, exact=True)
        c.scale = reference.natural_scales(c.operation, c.inputs, c.options)
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def executor():
    ex = WorkerExecutor()
    yield ex
    ex.close()


def records(executor, func, dtype="float32", timeout=10.0):
    spec = AdapterSpec("function", f"zoo.sdpa:{func}", "numpy", "sdpa")
    out = []
    for case in CASES:
        o = executor.run(spec, case, dtype, timeout)
        status = None if o.status == "ok" else o.status
        out.append(engine.judge(case, dtype, o.outputs, adapter_name=func, status=status,
                                error=o.message or None, duration_s=o.duration_s))
    return out


@pytest.mark.parametrize("func, status, words", [
    ("good", "pass", ""),
    ("segfault", "crash", "SIGSEGV"),
    ("abort", "crash", "SIGABRT"),
    ("exits", "crash", "exited with code 3"),
    ("native_out_of_memory", "crash", "memory exhausted"),
    ("raises", "error", "ValueError: kernel does not like these shapes"),
    ("unsupported", "skip", "only E = 64"),
    ("returns_none", "fail", "returned None"),
    ("returns_string", "fail", "should"),   # the numpy adapter makes it a 0-d str array: shape
    ("returns_object", "fail", "should be an array"),
    ("object_array", "fail", "should be an array"),
    ("transposed", "fail", "should have shape"),
    ("wrong_dtype", "fail", "should have dtype float32"),
    ("integer_output", "fail", "dtype"),
    ("nan_output", "fail", "NaN"),
    ("inf_output", "fail", "inf"),
])
def test_each_misbehaviour_gets_its_status(executor, func, status, words):
    for rec in records(executor, func):
        assert rec["status"] == status, rec["message"]
        assert words in rec["message"]
        assert "\n" not in rec["message"]


def test_hang_is_timeout_and_the_next_adapter_still_runs(executor):
    assert [r["status"] for r in records(executor, "hang", timeout=1.0)] == ["timeout", "timeout"]
    assert [r["status"] for r in records(executor, "good")] == ["pass", "pass"]


def test_workers_are_per_adapter_and_reused(executor):
    records(executor, "good")
    worker = executor._workers[next(k for k in executor._workers if "zoo.sdpa:good" in k)]
    starts = worker.starts
    records(executor, "good")
    assert worker.starts == starts


def test_a_list_instead_of_an_array_fails(executor):
    for rec in records(executor, "returns_list", dtype="float64"):
        assert rec["status"] == "fail" and "should be an array" in rec["message"]
