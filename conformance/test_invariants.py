"""Conformance tests for spec section inv (invariants): property-based checks per adapter.

Run as `pytest --pyargs attnconf.conformance [--attnconf-adapter NAME] [--attnconf-dtype LIST]`;
the attnconf plugin (conformance/plugin.py) resolves adapters and dtypes, this module
parametrises over adapter x dtype x invariant with ids `[torch-math-float32-inv.causal_prefix]`,
so each property passes or fails on its own. A failure prints the shrunk counterexample and a
repro command. Must not loop over adapters, dtypes or invariants inside a test.
"""
from __future__ import annotations

import pytest

ARG = "attnconf_invariant"


def pytest_generate_tests(metafunc):
    if ARG not in metafunc.fixturenames:
        return
    from attnconf.conformance.plugin import _session
    from attnconf.errors import AttnconfError

    from attnconf.conformance import plan
    from attnconf.conformance.checks.invariants import clauses_for

    session = _session(metafunc.config)
    try:   # the planner's items: the dtypes and invariants `attnconf run` checks for each adapter
        items = [(spec, adapter.name, dtype, clause)
                 for spec, adapter, _ in session.specs() for dtype in plan.check_dtypes(adapter, session.dtypes())
                 for clause in clauses_for(adapter, dtype)]
    except AttnconfError as exc:
        raise pytest.UsageError(f"attnconf: {exc}") from None
    metafunc.parametrize(ARG, items, ids=[f"{a}-{d}-{c}" for _, a, d, c in items])


def test_invariant(attnconf_invariant, attnconf_session):
    """The invariant holds on every example drawn (spec/invariants.md)."""
    __tracebackhide__ = True
    from attnconf.conformance.checks import invariants

    spec, _, dtype, clause = attnconf_invariant
    adapter = attnconf_session.adapter(spec)
    rec = next(r for r in invariants.check(adapter, dtype, select=clause) if r["clauses"][0] == clause)
    expect = attnconf_session.expectations()
    if expect is not None:
        rec = expect.apply(rec)
    attnconf_session.records.append(rec)
    if rec["status"] == "skip":
        pytest.skip(rec["message"])
    if rec["status"] == "xfail":
        pytest.xfail(rec["message"])
    if rec["status"] != "pass":
        raise AssertionError(f"[{rec['status']}] {clause} @ {dtype}: {rec['message']}\nrerun: {rec['repro']}")
