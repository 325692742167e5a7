"""One message formatter: an exception an implementation raises reads the same in its error
record whether the case ran in-process or in a worker process (attnconf.errors.one_line)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from attnconf import reference
from attnconf.adapters.registry import AdapterSpec
from attnconf.conformance.judging import engine
from attnconf.conformance.execution.isolation import WorkerExecutor
from attnconf.conformance.execution.runner import InProcessExecutor
from attnconf.errors import one_line
from attnconf.reference.cases import catalogue

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASE = next(c for c in catalogue() if c.operation == "sdpa")
CASE.expected = reference.compute(CASE.operation, CASE.inputs, CASE.options, exact=True)
CASE.scale = reference.natural_scales(CASE.operation, CASE.inputs, CASE.options)


def _record(executor, target: str) -> dict:
    spec = AdapterSpec("function", target, "numpy", "sdpa")
    out = executor.run(spec, CASE, "float64", 30.0)
    return engine.judge(CASE, "float64", None, adapter_name=target, status=out.status,
                        error=out.message or out.status, duration_s=out.duration_s)


@pytest.mark.parametrize("target", ["zoo.sdpa:raises", "zoo.messages:long_multiline",
                                    "zoo.messages:empty_message"])
def test_the_same_exception_gives_the_same_record_message_in_both_executors(target):
    in_process = _record(InProcessExecutor(), target)
    with WorkerExecutor() as worker:
        isolated = _record(worker, target)
    assert in_process["status"] == isolated["status"] == "error"
    assert in_process["message"] == isolated["message"]
    assert "\n" not in in_process["message"]


def test_one_line_keeps_the_first_line_and_caps_the_length():
    assert one_line(ValueError("shapes differ\nsecond line")) == "ValueError: shapes differ"
    assert one_line(KeyError()) == "KeyError"
    long = one_line(RuntimeError("x" * 1000))
    assert len(long) == 400 and long.endswith("…")
