"""Conformance tests for the semantic profile: each canonical choice per adapter.

The profile (conformance/checks/profile/) says which named alternative an implementation follows
(fully-masked rows, causal alignment, mask polarity, GQA order, default scale, dtypes, encoding
variant…); a test here fails when it is not the canonical one, unless an expectation says the
divergence is known. Parametrised over adapter x aspect by the attnconf plugin's adapters, ids
like `[jax-xla-fully_masked]`. Must not loop over adapters inside a test.
"""
from __future__ import annotations

import pytest

ARG = "attnconf_aspect"
_PROFILES: dict = {}


def pytest_generate_tests(metafunc):
    if ARG not in metafunc.fixturenames:
        return
    from attnconf.conformance.plugin import _session
    from attnconf.conformance.checks.profile import aspects_for
    from attnconf.errors import AttnconfError

    try:
        items = [(spec, adapter.name, aspect) for spec, adapter, _ in _session(metafunc.config).specs()
                 for aspect in aspects_for(adapter)]
    except AttnconfError as exc:
        raise pytest.UsageError(f"attnconf: {exc}") from None
    metafunc.parametrize(ARG, items, ids=[f"{a}-{x}" for _, a, x in items])


def test_profile_aspect(attnconf_aspect, attnconf_session):
    """The implementation follows the spec's canonical choice for this aspect."""
    __tracebackhide__ = True
    from attnconf.conformance.checks import profile

    spec, name, aspect = attnconf_aspect
    adapter = attnconf_session.adapter(spec)
    if name not in _PROFILES:                       # one detection per adapter and process
        _PROFILES[name] = profile.detect(adapter)
    records = [r for r in profile.profile_records(adapter, {aspect: _PROFILES[name][aspect]})]
    expect = attnconf_session.expectations()
    if expect is not None:
        records = [expect.apply(r) for r in records]
    attnconf_session.records.extend(records)
    bad = [r for r in records if r["status"] not in ("pass", "skip", "xfail")]
    if bad:
        raise AssertionError("\n".join(f"[{r['status']}] {r['case']}: {r['message']}\nrerun: {r['repro']}"
                                       for r in bad))
    if records and all(r["status"] == "skip" for r in records):
        pytest.skip(records[0]["message"])
    if records and all(r["status"] == "xfail" for r in records):
        pytest.xfail(records[0]["message"])
