"""One reader of results files: `attnconf report` checks each file against the results schema
(the one `results.validate` uses); a record that does not match is an input problem with the
reason and is never rendered, while the file's valid records are. And the coverage view lists
what an implementation declined (NotImplementedError), per adapter, with the reason.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from attnconf.cli import main
from attnconf.conformance.report import embedded_records
from attnconf.conformance.results import files as results

TESTS = Path(__file__).resolve().parent
FIX = TESTS / "fixtures" / "report"
BAD_CASE = "sdpa/not_a_real_case_status_5"


def _page_data(html: str) -> dict:
    block = html.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0]
    return json.loads(block)


def _section(html: str, section_id: str) -> str:
    return html.split(f'<section id="{section_id}">', 1)[1].split("</section>", 1)[0]


def test_a_schema_invalid_record_is_an_input_problem_and_not_rendered(tmp_path, capsys):
    doc = json.loads((FIX / "torch.json").read_text())
    valid = len(doc["results"])
    doc["results"].append({**doc["results"][0], "case": BAD_CASE, "status": 5})
    path = tmp_path / "torch.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "index.html"
    rc = main(["report", str(path), "--html", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    err = [line for line in captured.err.splitlines() if BAD_CASE in line]
    assert len(err) == 1 and "does not match the results schema at status: 5 is not one of" in err[0], captured.err
    assert "1 input problem(s)" in captured.out and f"{valid} records" in captured.out, captured.out
    html = out.read_text()
    data = _page_data(html)
    assert any(BAD_CASE in p and "status" in p for p in data["problems"]), data["problems"]
    assert BAD_CASE not in [r["case"] for r in embedded_records(html)], "the invalid record should not be rendered, but it is"
    assert len(embedded_records(html)) == valid
    shown = sum(sum(i["counts"].values()) for i in data["implementations"])
    assert shown == valid, f"the page should count the {valid} valid records, but counts {shown}"
    problems = html.split('<div class="problems" id="problems">', 1)[1].split("</div>", 1)[0]
    assert BAD_CASE in problems


def test_the_report_and_results_validate_agree_on_what_is_invalid(tmp_path, capsys):
    doc = json.loads((FIX / "torch.json").read_text())
    del doc["environment"]
    path = tmp_path / "noenv.json"
    path.write_text(json.dumps(doc))
    try:
        results.read_results(path)
    except Exception as exc:                         # the suite's own reader refuses it …
        assert "environment" in str(exc)
    else:
        raise AssertionError("results.read_results should refuse a document without environment, but read it")
    out = tmp_path / "index.html"
    rc = main(["report", str(path), "--html", str(out)])   # … and so does the report
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "noenv.json: does not match the results schema at (top level): 'environment' is a required property" in err
    assert "No results could be read" in out.read_text()


def test_the_coverage_view_counts_declined_cases_per_adapter_by_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(TESTS))
    out, html_path = tmp_path / "r.json", tmp_path / "r.html"
    rc = main(["run", "--no-expectations", "--no-checks", "--executor", "in-process",
               "--sdpa", "zoo.declining:sdpa_no_float64", "--framework", "numpy",
               "--adapter", "numpy-reference", "--select", "sdpa/size_l1_s1_e1",
               "--dtype", "float64,float32", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    rc = main(["report", str(out), "--html", str(html_path)])
    assert rc == 0
    view = _section(html_path.read_text(), "coverage").split("Skips, counted by reason", 1)[1]
    rows = re.findall(r"<tr><td>(.*?)</td><td>.*?>(\w+)</span></td><td class=\"num\">(\d+)</td><td>(.*?)</td>"
                      r"<td>(.*?)</td><td class=\"mono\">(.*?)</td></tr>", view)
    assert rows == [("declined: no float64 kernel", "skip", "1", "agreement", "float64", "sdpa/size_l1_s1_e1")], view
    assert "zoo.declining:sdpa_no_float64" in view and "numpy-reference" not in view, view


def test_the_fast_record_check_never_accepts_what_the_schema_rejects():
    """record_problem's compiled yes-check (fastcheck) agrees with jsonschema on valid records and
    never says yes to an invalid one (a False goes on to jsonschema for the reason)."""
    import jsonschema

    from attnconf.conformance.report import model
    from attnconf.conformance.report.fastcheck import compile_schema

    full = results.schema()
    fast = model._fast_record_check()
    assert fast is not None, "the record definition should compile (or record_problem is slow again)"
    validator = jsonschema.Draft202012Validator({"$defs": full["$defs"], "$ref": "#/$defs/record"})
    good = json.loads((FIX / "torch.json").read_text())["results"]
    bad = [{**good[0], **change} for change in (
        {"status": 5}, {"status": "passed"}, {"check": "other"}, {"clauses": "sdpa.output"}, {"clauses": [1]},
        {"metrics": []}, {"metrics": {"max_ulp_error": "big"}}, {"metrics": {"max_ulp_error": True}},
        {"metrics": {"worst_index": [0.5]}}, {"metrics": {"strict_pass": 1}}, {"metrics": {"mismatches": 1.5}},
        {"shapes": {"query": [1, 2.5]}}, {"shapes": {"query": [True]}}, {"duration_s": "1"}, {"duration_s": None},
        {"adapter": None}, {"message": ["x"]}, {"options": []})]
    bad.append({k: v for k, v in good[0].items() if k != "repro"})
    bad += [None, [], "record", 5]
    edge = [{**good[0], "metrics": {"max_ulp_error": "inf", "mismatches": 2.0, "worst_index": [1, 2.0]}},
            {**good[0], "metrics": {"max_ulp_error": None}}, {**good[0], "duration_s": 3}]
    for rec in good + edge:
        assert fast(rec) == validator.is_valid(rec) is True, rec
    for rec in bad:
        assert validator.is_valid(rec) is False, rec
        assert fast(rec) is False, rec
        assert model.record_problem(rec) is not None, rec
    # a keyword it does not handle: it declines to compile rather than guess
    assert compile_schema({"type": "object", "dependentRequired": {"a": ["b"]}}, {}) is None
    assert compile_schema({"$ref": "#/$defs/node"}, {"node": {"items": {"$ref": "#/$defs/node"}}}) is None
