"""conformance/results/record.py: the one record type, its statuses, and its JSON round trip."""
import json
import subprocess
import sys

import numpy as np
import pytest

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance.judging import engine
from attnconf.conformance.execution import executor, isolation
from attnconf.conformance.results import files as results
from attnconf.conformance.execution import runner
from attnconf.conformance.results.record import FAILING, Record, Status
from attnconf.errors import UsageError


def _record(**changes) -> dict:
    rec = {"adapter": "x", "framework": "numpy", "operation": "sdpa", "case": "sdpa/basic",
           "clauses": ["sdpa.scale"], "dtype": "float64", "check": "agreement", "status": "pass",
           "metrics": {"max_ulp_error": "inf"}, "message": "", "repro": "attnconf run --adapter x",
           "duration_s": 0.5, "options": {}, "shapes": {"query": [1, 2, 3, 4]}}
    rec.update(changes)
    return rec


def test_the_statuses_are_the_schemas():
    enum = results.schema()["$defs"]["record"]["properties"]["status"]["enum"]
    assert [s.value for s in Status] == enum, f"Status should list the schema's statuses {enum}"


def test_failing_is_fail_error_crash_timeout():
    assert FAILING == ("fail", "error", "crash", "timeout")
    assert [s.value for s in Status if s.failing] == list(FAILING)
    for status in ("pass", "skip", "xfail"):
        assert not Record.from_json(_record(status=status)).failing, status
    for status in FAILING:
        assert Record.from_json(_record(status=status)).failing, status


def test_a_real_run_survives_the_round_trip(tmp_path):
    # --select "*": the profile aspects are records too (without it, only the document's "profiles")
    path = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "attnconf", "run", "--adapter", "numpy-reference",
                           "--select", "*", "--json", str(path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    records = json.loads(path.read_text())["results"]
    assert len(records) > 100, f"the run should write its records, but wrote {len(records)}"
    assert {r["check"] for r in records} >= {"agreement", "invariant", "profile"}
    for r in records:
        back = Record.from_json(r).to_json()
        assert back == r, r["case"]
        assert list(back) == list(r), f"{r['case']}: keys should keep the file's order"


def test_each_status_a_builder_writes_survives_the_round_trip():
    case = next(c for c in runner.load_cases("sdpa/") if c.operation == "sdpa")
    common = dict(adapter_name="x", framework="numpy")
    wrong = {n: np.asarray(a) + 1.0 for n, a in case.expected.items()}
    recs = [engine.judge(case, "float64", dict(case.expected), **common),
            engine.judge(case, "float64", wrong, **common),
            engine.judge(case, "float64", None, error=RuntimeError("boom"), **common),
            engine.judge(case, "float64", None, error=NotImplementedError("no"), **common),
            engine.judge(case, "float64", None, status="crash", error="SIGSEGV", **common),
            engine.judge(case, "float64", None, status="timeout", error="60 s", **common)]
    adapter = NumpyReferenceAdapter()
    recs += [isolation._batch_record(adapter, "float64", executor.Outcome(st, message="gone", duration_s=1.0),
                                     "invariant/*", "invariant", seed=0) for st in ("crash", "timeout", "error")]
    statuses = ["pass", "fail", "error", "skip", "crash", "timeout", "crash", "timeout", "error"]
    assert [r["status"] for r in recs] == statuses
    for r in json.loads(json.dumps(results._clean([dict(r) for r in recs]))):
        assert Record.from_json(r).to_json() == r, r["status"]


def test_keys_the_schema_allows_are_kept():
    expected = {"status": "fail", "reason": "known", "source": "x.json#1"}
    rec = _record(status="xfail", expected=expected, note="a newer writer's key")
    back = Record.from_json(rec)
    assert back.expected == expected
    assert back.to_json() == rec


def test_optional_fields_stay_absent():
    minimal = {k: v for k, v in _record().items() if k not in ("framework", "duration_s", "options", "shapes")}
    assert Record.from_json(minimal).to_json() == minimal


@pytest.mark.parametrize("change, where", [
    ({"status": "bogus"}, "at status: 'bogus' is not one of"),
    ({"clauses": "sdpa.scale"}, "at clauses: 'sdpa.scale' is not of type 'array'"),
    ({"metrics": {"max_ulp_error": "big"}}, "at metrics/max_ulp_error"),
    ({"check": "vibes"}, "at check: 'vibes' is not one of"),
])
def test_from_json_names_the_problem(change, where):
    with pytest.raises(UsageError) as info:
        Record.from_json(_record(**change))
    text = str(info.value)
    assert "\n" not in text and text.startswith("record does not match the results schema ") and where in text, text


def test_from_json_names_a_missing_key_and_a_non_object():
    rec = _record()
    del rec["repro"]
    with pytest.raises(UsageError, match="'repro' is a required property"):
        Record.from_json(rec)
    with pytest.raises(UsageError, match="record should be a JSON object, but got list"):
        Record.from_json([rec])


def test_the_constructor_takes_a_status_name_and_refuses_others():
    fields = {k: v for k, v in _record().items() if k != "status"}
    assert Record(**fields, status="fail").status is Status.FAIL
    with pytest.raises(ValueError, match="status should be one of pass, fail, .*, but got 'ok'"):
        Record(**fields, status="ok")


def test_every_failing_set_is_the_records():
    from attnconf.commands import verify_outputs as verify_command
    from attnconf.conformance import detection
    from attnconf.conformance.judging import expectations
    from attnconf.conformance.report import model

    copies = {"runner.FAILING": runner.FAILING, "expectations.FAILING": expectations.FAILING,
              "detection.CAUGHT": detection.CAUGHT, "report.model.BAD_STATUSES": model.BAD_STATUSES,
              "commands.verify_outputs.FAILING": verify_command.FAILING}
    for name, value in copies.items():
        assert value is FAILING, f"{name} should be record.FAILING, but got its own {value!r}"
    assert model.STATUSES == tuple(s.value for s in Status)
