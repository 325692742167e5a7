"""A plug-in declines a case by raising NotImplementedError: that record is `skip` with
"declined: <message>" (coverage missing, never a pass or a failure), through `attnconf run` with
both executors and through the pytest plugin; any other exception stays `error`. And a bare
encoding function without dtype= is called once per case, not once per dtype.

The plug-ins are in tests/zoo/declining.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from attnconf.adapters.base import Adapter
from attnconf.adapters.function import make_function_adapter
from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance.judging import engine
from attnconf.conformance.checks import invariants
from attnconf.conformance.results.files import read_results
from attnconf.reference.golden import load_cases

TESTS = Path(__file__).resolve().parent
CASE = "sdpa/size_l1_s1_e1"          # one tiny golden case keeps each run short
EXECUTORS = ("in-process", "worker")


def attnconf_run(tmp_path, *args, checks=False):
    env = dict(os.environ, PYTHONPATH=str(TESTS), ATTNCONF_TEST_CALL_LOG=str(tmp_path / "calls.log"))
    cmd = [sys.executable, "-m", "attnconf", "run", "--no-expectations", "--json", str(tmp_path / "r.json"),
           *([] if checks else ["--no-checks"]), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    doc = read_results(tmp_path / "r.json") if (tmp_path / "r.json").exists() else None
    return proc, doc


def calls(tmp_path) -> Counter:
    log = tmp_path / "calls.log"
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


def by_key(doc) -> dict:
    return {(r["adapter"], r["case"], r["dtype"]): r for r in doc["results"]}


DECLINERS = (("zoo.declining:sdpa_no_float64", "no float64 kernel"),
             ("zoo-no-float64", "no float64 kernel in this adapter"))


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_function_and_class_declining_float64_are_skips_with_the_reason(tmp_path, executor):
    proc, doc = attnconf_run(tmp_path, "--sdpa", "zoo.declining:sdpa_no_float64", "--framework", "numpy",
                             "--adapter", "zoo.declining:NoFloat64Adapter", "--select", CASE,
                             "--dtype", "float64,float32", "--executor", executor)
    assert proc.returncode == 0, f"exit should be 0 (a decline is no failure), but got {proc.returncode}:\n" \
                                 f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    recs = by_key(doc)
    for name, reason in DECLINERS:
        got = recs[(name, CASE, "float64")]
        assert (got["status"], got["message"]) == ("skip", f"declined: {reason}"), \
            f"{name} float64 should be skip 'declined: {reason}', but got {got['status']} {got['message']!r}"
        assert recs[(name, CASE, "float32")]["status"] == "pass"


def _checks(executor, spec, adapter, dtype):
    """(invariant records, profile) the way `attnconf run` gets them from this executor."""
    from attnconf.conformance.checks import profile
    from attnconf.conformance.execution.isolation import WorkerExecutor

    if executor == "in-process":
        return invariants.check(adapter, dtype), profile.detect(adapter)
    with WorkerExecutor() as ex:
        return ex.run_checks(spec, adapter, dtype), ex.detect_profile(spec)


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_invariants_determinism_and_profile_probes_decline_too(monkeypatch, executor):
    from attnconf.adapters import registry

    monkeypatch.syspath_prepend(str(TESTS))
    specs = registry.resolve([], sdpa="zoo.declining:sdpa_no_float64", framework="numpy",
                             adapter_classes=["zoo.declining:NoFloat64Adapter"])
    reasons = dict(DECLINERS)
    assert len(specs) == 2
    for spec in specs:
        adapter = registry.instantiate(spec)
        name, reason = adapter.name, reasons[adapter.name]
        inv64, profile = _checks(executor, spec, adapter, "float64")
        assert inv64 and {r["status"] for r in inv64} == {"skip"}, \
            f"{name}'s float64 invariants should all be skip, but got {Counter(r['status'] for r in inv64)}"
        declined = {r["case"] for r in inv64 if r["message"] == f"declined: {reason}"}
        assert {"invariant/inv.determinism", "invariant/inv.convex_hull"} <= declined, declined
        inv32, _ = _checks(executor, spec, adapter, "float32")
        assert "pass" in {r["status"] for r in inv32} and not any("declined" in r["message"] for r in inv32)
        # the profile probes run at float64: declined, not 'rejects' or 'other'
        assert profile["fully_masked"] == {"value": "declined", "evidence": reason}, profile["fully_masked"]
        assert profile["default_scale"]["value"] == "declined"
        assert profile["determinism"]["value"] == "declined"


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_another_exception_for_the_same_option_stays_an_error(tmp_path, executor):
    proc, doc = attnconf_run(tmp_path, "--sdpa", "zoo.declining:sdpa_value_error_float64", "--framework", "numpy",
                             "--select", CASE, "--dtype", "float64,float32", "--executor", executor)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = by_key(doc)[("zoo.declining:sdpa_value_error_float64", CASE, "float64")]
    assert got["status"] == "error" and "ValueError: no float64 kernel" in got["message"], got


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_dtypeless_encoding_is_called_once_per_case_and_declines_other_bases(tmp_path, executor):
    name = "zoo.declining:encoding_base_10000_only"
    proc, doc = attnconf_run(tmp_path, "--encoding", name, "--framework", "numpy",
                             "--select", "enc/[bo][af]*", "--executor", executor)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    recs = by_key(doc)
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        got = recs[(name, "enc/base_500", dtype)]
        assert (got["status"], got["message"]) == ("skip", "declined: only base 10000, not 500"), got
        got = recs[(name, "enc/offset_1000000", dtype)]
        want = "pass" if dtype == "float32" else "skip"
        assert got["status"] == want, f"offset_1000000 {dtype} should be {want}, but got {got['status']}: {got['message']}"
    # one call per case for its four dtypes, whether it passed, was unsupported or declined
    counted = calls(tmp_path)
    assert counted["encoding_base_10000_only 16 32 10000.0 1000000"] == 1, counted
    assert counted["encoding_base_10000_only 32 16 500.0 0"] == 1, counted
    assert set(counted.values()) == {1}, counted


def test_the_kept_call_serves_each_other_dtype_once_and_only_the_last_call_is_kept(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("ATTNCONF_TEST_CALL_LOG", str(tmp_path / "calls.log"))
    adapter = make_function_adapter("zoo.declining:encoding_counted", "numpy", "sinusoidal_encoding")
    a, b = load_cases("enc/offset_1000")[0], load_cases("enc/d128_t64")[0]
    statuses = []
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        try:
            engine.compute_outputs(adapter, a, dtype)
            statuses.append("ok")
        except Exception as exc:
            statuses.append(type(exc).__name__)
    assert statuses == ["Unsupported", "ok", "Unsupported", "Unsupported"]
    assert sum(calls(tmp_path).values()) == 1, calls(tmp_path)
    engine.compute_outputs(adapter, a, "float32")        # asked again (determinism): a real call
    assert sum(calls(tmp_path).values()) == 2
    engine.compute_outputs(adapter, b, "float32")
    engine.compute_outputs(adapter, a, "float32")        # b replaced a: a is called again
    assert sum(calls(tmp_path).values()) == 4, calls(tmp_path)


def test_judge_and_calibration_path_map_not_implemented_to_declined():
    case = load_cases(CASE)[0]
    rec = engine.judge(case, "float64", None, adapter_name="x", error=NotImplementedError("only even E"))
    assert (rec["status"], rec["message"]) == ("skip", "declined: only even E")
    rec = engine.judge(case, "float64", None, adapter_name="x", error=NotImplementedError())
    assert rec["status"] == "skip" and rec["message"] == "declined: NotImplementedError raised without a message"
    rec = engine.judge(case, "float64", None, adapter_name="x", error=RuntimeError("only even E"))
    assert rec["status"] == "error"


class _DeclinesOddKeys(NumpyReferenceAdapter):
    name = "declines-odd-keys"
    odd_only = False

    def sdpa(self, query, key, value, **kwargs):
        if key.shape[2] % 2 or self.odd_only:
            raise NotImplementedError(f"S={key.shape[2]} is not supported")
        return super().sdpa(query, key, value, **kwargs)


def test_an_invariant_declines_only_the_examples_the_plugin_declines():
    adapter = _DeclinesOddKeys()
    rec, = invariants.check(adapter, "float32", select="inv.convex_hull", budget_s=None)
    assert rec["status"] == "pass", rec
    assert rec["message"].startswith("declined: ") and "is not supported" in rec["message"], rec["message"]
    assert rec["metrics"]["examples"] >= 1          # the even-S examples still ran
    adapter.odd_only = True                          # now every example is declined
    rec, = invariants.check(adapter, "float32", select="inv.convex_hull", budget_s=None)
    assert rec["status"] == "skip" and rec["message"].startswith("declined: S="), rec
    assert rec["metrics"]["examples"] == 0


@pytest.mark.slow
def test_the_pytest_plugin_skips_declined_cases_with_the_reason(tmp_path):
    path = tmp_path / "p.json"
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "-p", "no:cacheprovider", "-q",
           "-rs", "-k", "agreement or determinism", "--attnconf-sdpa", "zoo.declining:sdpa_no_float64",
           "--attnconf-framework", "numpy", "--attnconf-adapter", "zoo.declining:NoFloat64Adapter",
           "--attnconf-select", CASE, "--attnconf-dtype", "float64,float32", "--attnconf-json", str(path)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "declined: no float64 kernel in this adapter" in proc.stdout, proc.stdout[-3000:]
    recs = read_results(path)["results"]
    got = {(r["adapter"], r["case"], r["dtype"]): (r["status"], r["message"]) for r in recs}
    assert got[("zoo.declining:sdpa_no_float64", CASE, "float64")] == ("skip", "declined: no float64 kernel")
    assert got[("zoo-no-float64", CASE, "float64")] == ("skip", "declined: no float64 kernel in this adapter")
    assert got[("zoo-no-float64", "invariant/inv.determinism", "float64")] == \
        ("skip", "declined: no float64 kernel in this adapter")
    assert got[("zoo.declining:sdpa_no_float64", CASE, "float32")][0] == "pass"


class _NoConversion(NumpyReferenceAdapter):
    """Forgot from_numpy: a broken adapter, not one that declines (Adapter's stub raises TypeError)."""

    name = "no-conversion"

    def from_numpy(self, array, dtype):
        return Adapter.from_numpy(self, array, dtype)     # the protocol's stub, as if never written


def test_a_conversion_the_adapter_never_wrote_is_an_error_not_a_decline():
    from attnconf.conformance.execution.runner import InProcessExecutor

    out = InProcessExecutor().run(_NoConversion(), load_cases(CASE)[0], "float32")
    assert out.status == "error" and "should define from_numpy" in out.message, \
        f"a missing from_numpy should be an error, but got {out.status}: {out.message}"
