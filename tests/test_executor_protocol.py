"""One executor protocol: runner.Executor declares everything the runner calls (run, run_checks,
detect_profile, close), and both executors implement all of it with the protocol's signatures,
so the runner calls it without probing for methods."""
from __future__ import annotations

import inspect

import pytest

from attnconf.conformance.execution import runner
from attnconf.conformance.execution.isolation import WorkerExecutor
from attnconf.conformance.execution.runner import Executor, InProcessExecutor

METHODS = ("run", "run_checks", "detect_profile", "close")


def test_protocol_declares_what_the_runner_calls():
    declared = [m for m in METHODS if callable(getattr(Executor, m, None))]
    assert declared == list(METHODS), f"Executor should declare {METHODS}, but got {declared}"
    assert "hasattr(executor" not in inspect.getsource(runner), (
        "the runner should call the Executor protocol, but got a hasattr probe on the executor")


@pytest.mark.parametrize("cls", [InProcessExecutor, WorkerExecutor], ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", METHODS)
def test_executors_implement_the_protocol_with_its_signature(cls, method):
    want = inspect.signature(getattr(Executor, method))
    got = inspect.signature(getattr(cls, method))
    names = lambda sig: [(p.name, p.kind) for p in sig.parameters.values()]   # noqa: E731
    assert names(got) == names(want), f"{cls.__name__}.{method} should take {want}, but got {got}"


def test_in_process_checks_and_profile_are_the_modules_own(monkeypatch):
    """InProcessExecutor.run_checks is invariants.check here ([] on Unsupported, as before),
    detect_profile is profile.detect of the spec's adapter."""
    from attnconf.conformance import known_bad
    from attnconf.conformance.checks import invariants
    from attnconf.conformance.checks import profile
    from attnconf.errors import Unsupported

    adapter, ex = known_bad.control()(), InProcessExecutor()
    seen = []
    monkeypatch.setattr(invariants, "check", lambda a, d, **kw: seen.append((a, d, kw)) or [{"status": "pass"}])
    assert ex.run_checks(adapter, adapter, "float32", seed=3, select="x", repro_args="r") == [{"status": "pass"}]
    assert seen == [(adapter, "float32", {"seed": 3, "max_examples": None, "select": "x", "repro_args": "r"})]

    def unsupported(*a, **kw):
        raise Unsupported("dtype float16")

    monkeypatch.setattr(invariants, "check", unsupported)
    assert ex.run_checks(adapter, adapter, "float16") == [], "Unsupported should give no records, but did not"
    monkeypatch.setattr(profile, "detect", lambda a: {"adapter": a})
    assert ex.detect_profile(adapter) == {"adapter": adapter}
