"""Calibration on a reduced seed count (CI time): zero false failures of the reference in every
precision and of the zoo's control over every case family, every known-bad caught, and the CLI's
exit code and output. The full figure is `attnconf calibrate` (200 seeds, bundled adapters)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnconf.conformance import calibration

ZOO = Path(calibration.__file__).resolve().parent / "known_bad"   # as a directory: the --zoo DIR path


def test_random_cases_cover_every_family_with_exact_expectations():
    for family in calibration.family_names():
        case = calibration.random_case(family, 7)
        assert case.family == family and case.expected and case.scale
        again = calibration.random_case(family, 7)
        for name, arr in case.expected.items():
            assert (arr == again.expected[name]).all()    # seeded: reproducible


def test_zero_false_failures_on_reference_and_control():
    adapters = calibration.correct_adapters(ZOO, bundled=False)
    assert [a.name for a in adapters] == ["numpy-reference", "known-bad/control"]
    result = calibration.false_failures(adapters, seeds=12)
    assert set(f for _, f in result) == set(calibration.family_names())
    judged = sum(t.judged for t in result.values())
    assert judged >= 12 * len(calibration.family_names()) * 4 * 2 * 0.9
    failures = {k: t.examples for k, t in result.items() if t.failed}
    assert not failures


def test_false_failure_counting_sees_a_wrong_implementation():
    from attnconf.conformance.known_bad.scale import ScaleOff1e5

    result = calibration.false_failures([ScaleOff1e5()], seeds=3, families=["sdpa"])
    assert result[("known-bad/scale-off-1e-5", "sdpa")].failed > 0


def test_calibrate_command_meets_targets(tmp_path, capsys):
    from attnconf.cli import main

    out = tmp_path / "calib.json"
    code = main(["calibrate", "--seeds", "3", "--no-bundled", "--zoo", str(ZOO), "--first-catch",
                 "--json", str(out)])
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert code == 0, text
    assert doc["ok"] and doc["false_failure_total"] == 0 and not doc["missed"]
    assert len(doc["zoo"]) >= 25 and all(z["caught"] for z in doc["zoo"])
    assert "(a) false failures" in text and "(b) known-bad implementations caught" in text
    assert "targets met" in text


def test_calibrate_usage_errors():
    from attnconf.cli import main

    assert main(["calibrate", "--seeds", "0"]) == 2
    assert main(["calibrate", "--family", "nope", "--zoo", "none"]) == 2
    assert main(["calibrate", "--seeds", "1", "--zoo", "/nonexistent/zoo", "--no-bundled"]) == 2


def test_documented_divergences_are_excluded_by_clause_and_counted():
    """An expectation entry documents a divergence at adapter + dtype + operation + clause (its case
    pattern cannot match random ids): calibration counts those failures as excluded, and only those;
    an entry without a clause documents golden cases only and excludes nothing."""
    from attnconf.conformance.known_bad.scale import ScaleOff1e5

    from attnconf.conformance.judging.expectations import Expectation, Expectations

    name = "known-bad/scale-off-1e-5"
    bare = calibration.false_failures([ScaleOff1e5()], seeds=3, families=["sdpa"])[(name, "sdpa")]
    documented = Expectations([Expectation(adapter=name, dtype="float64", case="sdpa/scale_*",
                                           clause="sdpa.scale.*", reason="test: scale off at float64")])
    tally = calibration.false_failures([ScaleOff1e5()], seeds=3, families=["sdpa"],
                                       expectations=documented)[(name, "sdpa")]
    excluded = sum(tally.excluded.values())
    assert excluded == 3 and all(s.dtype == "float64" for s in tally.excluded)
    assert tally.failed == bare.failed - excluded and tally.judged == bare.judged - excluded
    caseonly = Expectations([Expectation(adapter=name, dtype="float64", case="sdpa/*", reason="golden only")])
    again = calibration.false_failures([ScaleOff1e5()], seeds=3, families=["sdpa"],
                                       expectations=caseonly)[(name, "sdpa")]
    assert not again.excluded and again.failed == bare.failed
    other_op = Expectations([Expectation(adapter=name, dtype="float64", case="sdpa_vjp/x", clause="sdpa.scale.*",
                                         reason="gradients only")])
    assert not calibration.false_failures([ScaleOff1e5()], seeds=3, families=["sdpa"],
                                          expectations=other_op)[(name, "sdpa")].excluded
