"""Expectation files: parsing, matching a record to xfail, findings for stale entries, update.

Records here are the dicts of spec/results.schema.json reduced to the keys matching reads;
the end-to-end run with real adapters is in test_expectations_run.py.
"""
from __future__ import annotations

import json

import pytest

from attnconf.conformance.judging import expectations as ex
from attnconf.errors import UsageError


def rec(adapter="jax-xla", case="sdpa/fully_masked_rows", dtype="float32", status="fail",
        clauses=("sdpa.fully_masked",), check="agreement", message="output: error 1e9 ulp"):
    return {"adapter": adapter, "operation": case.split("/", 1)[0], "case": case, "dtype": dtype, "status": status,
            "clauses": list(clauses), "check": check, "message": message, "metrics": {}, "repro": ""}


def doc(*entries, version=1):
    return {"format": ex.FORMAT, "version": version, "expectations": list(entries)}


JAX = {"adapter": "jax-*", "clause": "sdpa.fully_masked", "reason": "mean of V on fully-masked rows"}


def load(*entries):
    return ex.Expectations(ex.parse_document(doc(*entries), "test.json"))


def test_matching_failure_becomes_xfail_keeping_original_status_and_reason():
    out = load(JAX).apply(rec())
    assert out["status"] == "xfail"
    assert out["expected"] == {"status": "fail", "reason": JAX["reason"], "source": "test.json#0"}
    assert out["message"].startswith("expected fail (mean of V on fully-masked rows): output:")


@pytest.mark.parametrize("change", [
    {"adapter": "torch-math"}, {"clauses": ("sdpa.softmax",)}, {"status": "crash"}, {"status": "pass"},
    {"status": "skip"},
])
def test_records_outside_scope_or_status_are_left_alone(change):
    record = rec(**change)
    assert load(JAX).apply(record) == record


@pytest.mark.parametrize("entry, record", [
    ({"dtype": "float16"}, rec(dtype="float16")),
    ({"case": "sdpa/fully_*"}, rec()),
    ({"status": ["fail", "error"]}, rec(status="error")),
    ({"check": "invariant"}, rec(check="invariant")),
    ({"clause": "sdpa.*"}, rec(clauses=("sdpa.gqa", "sdpa.fully_masked"))),
])
def test_scope_keys_match_as_globs(entry, record):
    assert load({**JAX, **entry}).apply(record)["status"] == "xfail"


def test_entry_that_matches_nothing_is_reported_and_strict():
    e = load(JAX, {"adapter": "jax-xla", "case": "sdpa/gone_case", "reason": "old"})
    e.apply(rec())
    findings = e.findings(adapters=["jax-xla"], dtypes=["float32"])
    assert [f.kind for f in findings] == ["unmatched"]
    assert findings[0].strict_failure and "sdpa/gone_case" in findings[0].line()


def test_unmatched_entry_in_a_selected_run_is_only_not_exercised():
    e = load({"adapter": "jax-xla", "case": "sdpa/gone_case", "reason": "old"})
    (f,) = e.findings(adapters=["jax-xla"], partial=True)
    assert f.kind == "not_exercised" and not f.strict_failure


def test_entries_of_adapters_or_dtypes_not_run_are_not_reported():
    e = load(JAX, {**JAX, "dtype": "bfloat16"})
    assert e.findings(adapters=["torch-math"]) == []
    e.apply(rec())
    assert e.findings(adapters=["jax-xla"], dtypes=["float32"]) == []


def test_entry_that_now_passes_is_reported():
    e = load(JAX)
    e.apply(rec(status="fail"))
    e.apply(rec(status="pass", dtype="float64"))
    (f,) = e.findings(adapters=["jax-xla"])
    assert f.kind == "passes" and "float64" in f.detail and f.strict_failure


def test_entry_whose_records_end_differently_is_reported():
    e = load(JAX)
    assert e.apply(rec(status="crash"))["status"] == "crash"
    (f,) = e.findings(adapters=["jax-xla"])
    assert f.kind == "status_differs" and "crash" in f.detail


def test_entry_matching_only_skipped_records_matches_nothing():
    e = load(JAX)
    e.apply(rec(status="skip"))
    (f,) = e.findings(adapters=["jax-xla"])
    assert f.kind == "unmatched" and "1 skipped" in f.detail


@pytest.mark.parametrize("document, words", [
    ({"expectations": []}, "should be an expectations file"),
    (doc(version=2), "version 2"),
    ({"format": ex.FORMAT, "version": 1, "expectations": {}}, "should be a list"),
    (doc({"adapter": "x"}), "non-empty string 'reason'"),
    (doc({"adapter": "x", "reason": " "}), "non-empty string 'reason'"),
    (doc({"adapter": "x", "reason": "r", "stauts": "fail"}), "unknown key 'stauts'"),
    (doc({"adapter": "x", "reason": "r", "status": "pass"}), "status should be one of fail, error"),
    (doc({"adapter": "x", "reason": "r", "dtype": 32}), "'dtype' should be a non-empty string"),
    (doc("jax"), "test.json#0 should be a JSON object"),
])
def test_malformed_documents_are_usage_errors_naming_the_entry(document, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        ex.parse_document(document, "test.json")


def test_read_file_names_the_file_for_bad_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(UsageError, match="bad.json is not valid JSON"):
        ex.read_file(p)
    with pytest.raises(UsageError, match="does not exist"):
        ex.read_file(tmp_path / "missing.json")


def test_update_keeps_still_valid_globs_and_adds_one_entry_per_new_failure(tmp_path):
    existing = ex.parse_document(doc(JAX, {"adapter": "jax-xla", "case": "sdpa/fixed", "reason": "gone"}), "old.json")
    records = [ex.Expectations(existing).apply(rec(dtype=d)) for d in ("float64", "float32")]
    records += [rec(case="sdpa/fixed", status="pass", clauses=("sdpa.softmax",)),
                rec(case="sdpa/new_bug", clauses=("sdpa.gqa",), dtype="float64", status="error"),
                rec(case="sdpa/new_bug", clauses=("sdpa.gqa",), dtype="float32", status="error"),
                rec(case="sdpa/f16_only", clauses=("sdpa.dtype",), dtype="float16"),
                rec(case="sdpa/f16_only", clauses=("sdpa.dtype",), dtype="float32", status="pass")]
    out = ex.update_document(records, existing)
    entries = out["expectations"]
    assert {**JAX, "status": "fail"} in entries, "the glob entry with its reason survives"
    assert not any(e.get("case") == "sdpa/fixed" for e in entries), "the entry that now passes is dropped"
    new = {e["case"]: e for e in entries if "case" in e}
    assert new["sdpa/new_bug"]["status"] == "error" and "dtype" not in new["sdpa/new_bug"]
    assert new["sdpa/f16_only"]["dtype"] == "float16"
    assert new["sdpa/f16_only"]["reason"].startswith("TODO")
    # the written document reads back and expects exactly those failures
    path = ex.write_document(out, tmp_path / "new.json")
    again = ex.Expectations.load([path])
    assert [again.apply(r)["status"] for r in records] == ["xfail", "xfail", "pass", "xfail", "xfail", "xfail", "pass"]


def test_shipped_files_parse_and_every_entry_has_a_reason():
    for path in ex.shipped_paths():
        for entry in ex.read_file(path):
            assert len(entry.reason) > 20 and not entry.reason.startswith("TODO"), entry.source
        json.loads(path.read_text())


@pytest.mark.parametrize("scope, record, covered", [
    (ex.Scope(operation="sdpa"), rec(case="sdpa/calibration-mask-3"), True),
    (ex.Scope(operation="mha"), rec(case="sdpa/calibration-mask-3"), False),
    (ex.Scope(status=("fail",)), rec(status="error"), False),
    (ex.Scope(status=()), rec(status="pass"), True),
    (ex.Scope(clause="*"), rec(clauses=()), True),
    (ex.Scope(clause="sdpa.*"), rec(clauses=()), False),
    (ex.Scope(case="sdpa/fully_*", check="invariant"), rec(), False),
])
def test_one_scope_matcher(scope, record, covered):
    assert scope.covers(record) is covered, (f"{scope} should {'' if covered else 'not '}cover {record}, "
                                             f"but got {not covered}")


def test_expectations_and_calibration_match_through_the_one_matcher(monkeypatch):
    """Both callers' covers go through expectations.Scope (each at its own level): a matcher
    that covers nothing makes both cover nothing."""
    from attnconf.conformance import calibration

    entry = ex.Expectation(adapter="jax-*", clause="sdpa.fully_masked", reason="mean of V")
    (scope,) = calibration.documented_scopes(ex.Expectations([entry]))
    random_id = rec(case="sdpa/calibration-sdpa-fully-masked-7")
    assert entry.covers(random_id) and scope.covers(random_id), "both should cover the record before"
    assert not scope.covers(rec(status="error")), "calibration's scope should match the status, but did not"
    monkeypatch.setattr(ex.Scope, "covers", lambda self, record: False)
    assert not entry.covers(random_id) and not scope.covers(random_id), (
        "Expectation.covers and calibration.Scope.covers should both use expectations.Scope, but got one "
        "that does not")
