"""The report's coverage view and the truth of merging (issue 19 items 4 and 6, issues 22-23):
per implementation × operation, implemented or not (the results' "coverage" entries) and the
clauses judged (from the records), so thin coverage shows; the adapters a run did not run, with
reason and command; skips counted by reason; two statuses for one measurement shown as a
conflict, never last-wins; the same file given twice read once, with a note."""
from __future__ import annotations

import json
import re
from pathlib import Path

from attnconf.conformance.report import embedded_records, load_results, render_html
from attnconf.conformance.report.diff import profile_value
from attnconf.conformance.report.model import make_run
from attnconf.conformance.results.files import new_document

FIX = Path(__file__).parent / "fixtures" / "report"


def _rec(adapter, case, status, clauses, dtype="float32", message="", operation="sdpa"):
    return {"adapter": adapter, "framework": "numpy", "operation": operation, "case": case, "clauses": clauses,
            "dtype": dtype, "check": "agreement", "status": status, "metrics": {}, "message": message,
            "repro": f"attnconf run --adapter {adapter} --select '{case}' --dtype {dtype}"}


def _doc(records, **extra):
    doc = new_document(command=["attnconf", "run"])
    doc.update(results=records, complete=True, **extra)
    return doc


def _section(html: str, section_id: str) -> str:
    return html.split(f'<section id="{section_id}">', 1)[1].split("</section>", 1)[0]


def _cells(html: str, impl: str) -> list[str]:
    table = html.split('id="coverage-table"', 1)[1].split("</table>", 1)[0]
    row = table.split(f'<tr data-impl="{impl}">', 1)[1].split("</tr>", 1)[0]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_coverage_table_shows_implemented_operations_and_judged_clauses():
    full = [_rec("full", f"sdpa/c{i}", "pass", [f"sdpa.c{i}"]) for i in range(4)]
    thin = [_rec("thin", "sdpa/c0", "pass", ["sdpa.c0"])] + [
        _rec("thin", f"sdpa/c{i}", "skip", [f"sdpa.c{i}"], message="declined: only L == S") for i in range(1, 4)]
    coverage = [{"adapter": a, "operation": "sdpa", "implemented": True, "reason": ""} for a in ("full", "thin")]
    coverage += [{"adapter": "thin", "operation": "rotary_embedding", "implemented": False,
                  "reason": "thin has no rotary_embedding method"}]
    html = render_html([_doc(full + thin, coverage=coverage)])
    heads = re.findall(r'<th title="[^"]*" class="mono">(.*?)</th>', html.split('id="coverage-table"', 1)[1].split("</thead>", 1)[0])
    assert heads == ["sdpa", "rotary_embedding"]
    assert _cells(html, "full")[:3] == ["full", "4/4", "4/4 clauses · 4 records"]
    thin_cells = _cells(html, "thin")
    assert thin_cells[:3] == ["thin", "1/4", "1/4 clauses · 4 records, 3 skip"]
    assert thin_cells[3].startswith("not implemented") and "no rotary_embedding method" in thin_cells[3]
    # thin coverage is marked
    assert re.search(r'<td class="thin"[^>]*>1/4 clauses', html)
    # the skips, counted by reason
    skips = _section(html, "coverage").split("Skips, counted by reason", 1)[1]
    assert re.search(r"<td>declined: only L == S</td><td>.*?skip.*?</td><td class=\"num\">3</td>", skips)


def test_adapters_not_run_are_listed_with_reason_and_command():
    not_run = [{"adapter": "flash-attn", "reason": "GPU only: no CUDA device",
                "command": "attnconf run --adapter flash-attn --device cuda"},
               {"adapter": "<b>x</b>", "reason": "opt-in", "command": ""}]
    html = render_html([_doc([_rec("a", "sdpa/c0", "pass", ["sdpa.c0"])], not_run=not_run)])
    table = html.split('id="not-run-table"', 1)[1].split("</table>", 1)[0]
    assert "flash-attn" in table and "GPU only: no CUDA device" in table
    assert "<code>attnconf run --adapter flash-attn --device cuda</code>" in table
    assert "&lt;b&gt;x&lt;/b&gt;" in table and "<b>x</b>" not in html


def test_a_file_without_coverage_entries_says_so():
    html = render_html([_doc([_rec("a", "sdpa/c0", "pass", ["sdpa.c0"])])])
    assert "carry no coverage entries" in html and "name no adapter left out" in html


def test_two_statuses_for_one_measurement_across_files_are_a_conflict(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text(json.dumps(_doc([_rec("a", "sdpa/c0", "pass", ["sdpa.c0"]), _rec("a", "sdpa/c1", "pass", ["sdpa.c1"])])))
    two.write_text(json.dumps(_doc([_rec("a", "sdpa/c0", "fail", ["sdpa.c0"]), _rec("a", "sdpa/c1", "pass", ["sdpa.c1"])])))
    runs, problems = load_results([one, two])
    html = render_html(runs, problems=problems)
    table = _section(html, "conflicts")
    rows = re.findall(r"<tr><td class=\"mono\">(.*?)</td><td class=\"mono\">(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert rows == [("a", "sdpa/c0", "float32", "agreement", "pass (one), fail (two)")]
    assert "1 measurement(s) have different statuses" in html
    # both records are still shown, each in its own run's column
    assert sorted(r["status"] for r in embedded_records(html) if r["case"] == "sdpa/c0") == ["fail", "pass"]


def test_a_repeated_record_with_another_status_in_one_file_is_a_conflict_not_last_wins():
    recs = [_rec("a", "sdpa/c0", "fail", ["sdpa.c0"]), _rec("a", "sdpa/c0", "pass", ["sdpa.c0"])]
    run = make_run(_doc(recs), "r", "<mem>")
    assert len(run.records) == 1 and run.records[0]["conflict"] == ["fail", "pass"]
    assert any("different statuses" in p for p in run.problems)
    html = render_html([run])
    assert "fail (r), pass (r)" in _section(html, "conflicts")
    shown = embedded_records(html)
    assert shown[0]["conflict"] == "fail; pass"
    # a repeat with the same status is the same record, not a conflict
    same = make_run(_doc([recs[1], recs[1]]), "r", "<mem>")
    assert len(same.records) == 1 and not same.conflicts and not same.problems


def test_the_same_file_given_twice_is_read_once_with_a_note(tmp_path):
    path = tmp_path / "torch.json"
    path.write_text((FIX / "torch.json").read_text())
    link = tmp_path / "again.json"
    link.symlink_to(path)
    runs, problems = load_results([path, path, link])
    assert len(runs) == 1
    assert len(problems) == 2 and all("given more than once; read once" in p for p in problems), problems
    html = render_html(runs, problems=problems)
    assert "given more than once; read once" in html and "Conflicts" not in html


def test_an_empty_profile_value_is_not_a_literal_pair_of_braces():
    assert profile_value({"value": {}}) == "none" and profile_value({"value": []}) == "none"
    doc = _doc([_rec("a", "sdpa/c0", "pass", ["sdpa.c0"])], profiles={"a": {"output_dtype": {"value": {}}}})
    table = render_html([doc]).split('id="profile-table"', 1)[1].split("</table>", 1)[0]
    assert "{}" not in table and ">none<" in table


def test_wide_tables_scroll_inside_their_box():
    html = render_html([_doc([_rec(f"adapter-with-a-long-name-{i}", "sdpa/c0", "pass", ["sdpa.c0"]) for i in range(30)])])
    assert ".wide{overflow-x:auto;max-width:100%}" in html
    for table_id in ("summary-table", "section-table", "coverage-table", "clause-matrix"):
        assert re.search(rf'<div class="wide"><table [^>]*id="{table_id}"|<div class="wide"><table id="{table_id}"', html), table_id


def test_hostile_or_malformed_operation_metadata_is_escaped_or_ignored():
    ops = {"sdpa": {"title": "<script>alert(1)</script>", "section": "<b>s</b>", "order": "first",
                    "clauses": "sdpa.output", "report": {"plot": "attention", "length": ["query", -2],
                                                         "label": "<img src=x onerror=alert(2)>"}},
           "sdpa_vjp": {"title": "t", "report": {"plot": "attention", "length": ["query", "-2"]}},
           "bad": "not an object"}
    rec = {**_rec("a", "sdpa/c0", "pass", []), "metrics": {"max_ulp_error": 1.0}, "shapes": {"query": [1, 1, 4, 8]}}
    vjp = {**rec, "operation": "sdpa_vjp", "case": "sdpa_vjp/c0"}
    html = render_html([_doc([rec, vjp], operations=ops)])
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>s</b>" not in html
    assert "a (&lt;img src=x onerror=alert(2)&gt;)" in html      # the label, escaped, in the plot
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html        # the title, escaped, in the coverage table
