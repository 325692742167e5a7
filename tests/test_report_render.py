"""Meta-tests of the report: reading results defensively, merging, counts with denominators,
the diff, the CLI, and the page's self-containment. Hostile strings: test_report_escaping.py."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from attnconf.cli import main
from attnconf.conformance.report import embedded_records, load_results, render, render_html
from attnconf.conformance.report.diff import diff
from attnconf.conformance.report.merge import merge
from attnconf.conformance.report.model import make_run
from attnconf.conformance.report.spec_text import markdown_blocks

FIX = Path(__file__).parent / "fixtures" / "report"


def _tags(html: str) -> list[tuple[str, list]]:
    from html.parser import HTMLParser

    found = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

        handle_startendtag = handle_starttag

    P().feed(html)
    return found


def _fixture(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def test_load_results_reports_each_bad_input_in_one_line(tmp_path):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema_version": "9.0", "results": []}))
    paths = [FIX / "reference.json", FIX / "truncated.json", tmp_path / "missing.json",
             FIX / "foreign_pytest_benchmark.json", newer, FIX / "torch.json"]
    runs, problems = load_results(paths)
    assert [r.label for r in runs] == ["reference", "torch"]
    assert len(problems) == 4
    assert all("\n" not in p for p in problems)
    for fragment in ("truncated.json: not valid JSON", "missing.json: results file not found",
                     "foreign_pytest_benchmark.json: not an attnconf results file", "newer.json: schema_version"):
        assert sum(fragment in p for p in problems) == 1, fragment


def test_folder_input_means_its_json_files_and_labels_stay_unique(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(FIX / "torch.json", tmp_path / sub / "torch.json")
    runs, problems = load_results([tmp_path / "a", tmp_path / "b"])
    assert problems == []
    assert len({r.label for r in runs}) == 2


def test_unknown_fields_ignored_and_missing_optional_fields_tolerated():
    run = make_run({"results": [{"adapter": "x", "status": "pass"}, "not a record", {"case": "c"}],
                    "future": {"anything": 1}}, "r", "<mem>")
    assert len(run.records) == 2
    assert run.records[0]["clauses"] == [] and run.records[0]["metrics"] == {}
    assert run.records[1]["adapter"] == "?" and run.records[1]["status"] == "other"
    assert any("not JSON objects" in p for p in run.problems)
    html = render_html([run])
    assert "does not conform" in html  # an unknown status never passes silently


def test_repeated_record_in_one_run_keeps_the_last():
    rec = {"adapter": "a", "case": "c", "dtype": "float32", "check": "agreement", "clauses": ["sdpa.output"]}
    run = make_run({"results": [{**rec, "status": "fail"}, {**rec, "status": "pass"}]}, "r", "<mem>")
    assert [r["status"] for r in run.records] == ["pass"]


def test_counts_come_from_the_records_with_denominators_and_skip_is_not_pass():
    runs, _ = load_results([FIX / "reference.json", FIX / "torch.json"])
    merged = merge(runs)
    raw = _fixture("torch.json")["results"]
    expected = Counter(r["status"] for r in raw if r["adapter"] == "torch_sdpa")
    impl = next(i for i in merged.implementations if i.adapter == "torch_sdpa")
    assert impl.counts == expected
    assert impl.total == len([r for r in raw if r["adapter"] == "torch_sdpa"])
    assert impl.verdict == "does not conform"
    only_skips = make_run({"results": [{"adapter": "s", "case": "c", "status": "skip"}]}, "s", "<mem>")
    assert merge([only_skips]).implementations[0].verdict == "not tested"
    expected_only = make_run({"results": [{"adapter": "x", "case": "c", "status": "pass"},
                                          {"adapter": "x", "case": "d", "status": "xfail"}]}, "x", "<mem>")
    assert merge([expected_only]).implementations[0].verdict == "documented divergences"
    clean = make_run({"results": [{"adapter": "y", "case": "c", "status": "pass"}]}, "y", "<mem>")
    assert merge([clean]).implementations[0].verdict == "conforms"


def test_same_adapter_in_two_runs_stays_two_columns(tmp_path):
    for name in ("machine1.json", "machine2.json"):
        shutil.copy(FIX / "torch.json", tmp_path / name)
    runs, _ = load_results(sorted(tmp_path.glob("*.json")))
    names = [i.name for i in merge(runs).implementations]
    assert "torch_sdpa [machine1]" in names and "torch_sdpa [machine2]" in names


def test_diff_finds_status_and_profile_changes_only_where_they_changed():
    cur, _ = load_results([FIX / "reference.json", FIX / "torch.json"])
    base, _ = load_results([FIX / "baseline_torch.json"])
    merge(cur)  # sets the display names the diff shows
    d = diff(cur, base)
    old = {(r["case"], r["dtype"]): r["status"] for r in _fixture("baseline_torch.json")["results"]}
    new = {(r["case"], r["dtype"]): r["status"] for r in _fixture("torch.json")["results"]}
    bad = {"fail", "error", "crash", "timeout"}
    want_failing = {k for k in new if new[k] in bad and old[k] not in bad}
    want_passing = {k for k in new if new[k] == "pass" and old[k] != "pass"}
    assert {(r["record"]["case"], r["record"]["dtype"]) for r in d["newly_failing"]} == want_failing
    assert {(r["record"]["case"], r["record"]["dtype"]) for r in d["newly_passing"]} == want_passing
    assert want_failing and want_passing  # the fixtures must exercise both
    assert d["adapters_not_in_baseline"] == ["reference"]
    assert [(c["aspect"], c["old"], c["new"]) for c in d["profile_changes"]] == [("causal_alignment", "bottom_right", "top_left")]


@pytest.mark.parametrize("factor, expect_change", [(1.5, True), (1.001, False)])
def test_speed_change_must_exceed_the_noise(factor, expect_change):
    bench = _fixture("bench.json")
    slower = json.loads(json.dumps(bench))
    for p in slower["benchmarks"]["points"]:
        p["time_s"] *= factor
    d = diff([make_run(slower, "bench", "<mem>")], [make_run(bench, "bench", "<mem>")])
    assert bool(d["speed_changes"]) == expect_change
    if expect_change:
        assert all(c["slower"] and "spread" in c["basis"] for c in d["speed_changes"])


def test_page_is_self_contained(tmp_path):
    runs, problems = load_results([FIX / "reference.json", FIX / "torch.json", FIX / "bench.json"])
    html = render(runs, tmp_path / "r.html", baseline=FIX / "baseline_torch.json", problems=problems).read_text()
    tags = _tags(html)
    assert not [t for t, _ in tags if t in ("link", "img", "iframe", "object", "embed", "base", "audio", "video")]
    for tag, attrs in tags:
        for name, value in attrs:
            assert name not in ("src", "srcset", "action", "formaction", "poster", "background"), (tag, name)
            if name in ("href", "xlink:href"):
                assert (value or "").startswith("#"), (tag, value)  # in-page anchors only
    assert "url(" not in html.lower() and "@import" not in html.lower()
    for section in ('id="summary-table"', 'id="clause-matrix"', 'id="profile-table"', 'id="diff"',
                    'id="speed-table"', 'id="speed-statements"', 'id="provenance"', "<svg"):
        assert section in html, section


def test_cli_missing_input_is_one_line_not_fatal(tmp_path, capsys):
    out = tmp_path / "index.html"
    rc = main(["report", str(FIX / "torch.json"), str(tmp_path / "gone.json"), "--html", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0 and out.exists()
    assert len(err) == 1 and "gone.json: results file not found" in err[0]
    assert "gone.json: results file not found" in out.read_text()


def test_cli_nothing_readable_writes_the_page_and_exits_2(tmp_path, capsys):
    out = tmp_path / "index.html"
    rc = main(["report", str(tmp_path / "none.json"), "--html", str(out)])
    assert rc == 2 and out.exists()
    assert "No results could be read" in out.read_text()


def test_cli_unwritable_output_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["report", str(FIX / "torch.json"), "--html", str(blocker / "sub" / "index.html")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("attnconf: --html should be a writable path")


def test_spec_markdown_becomes_escaped_blocks_with_anchors():
    blocks = markdown_blocks("# SDPA\n\n### Default scale {#sdpa.scale.default}\nscale is\n1/sqrt(E).\n\n- a\n- <b>\n\n```\nx < y\n```\n")
    assert blocks[1] == {"kind": "h", "level": 5, "text": "Default scale", "anchor": "sdpa.scale.default"}
    assert blocks[2] == {"kind": "p", "text": "scale is 1/sqrt(E)."}
    assert blocks[3] == {"kind": "ul", "items": ["a", "<b>"]}
    assert blocks[4] == {"kind": "pre", "text": "x < y"}
    html = render_html([_fixture("torch.json")])
    assert 'id="spec-sdpa.scale.default"' in html  # the bundled spec's clause headings are anchors


def test_missing_spec_is_tolerated(monkeypatch):
    from attnconf import spec

    def boom():
        raise FileNotFoundError("index.json")

    monkeypatch.setattr(spec, "load_index", boom)
    html = render_html([_fixture("torch.json")])
    assert "spec index unavailable" in html and 'id="summary-table"' in html


def test_huge_message_is_capped_in_the_page():
    run = make_run({"results": [{"adapter": "a", "case": "c", "status": "fail", "message": "x" * 1_000_000}]}, "r", "<mem>")
    html = render_html([run])
    (rec,) = embedded_records(html)   # the records travel compressed: read them as the page does
    assert len(html) < 300_000 and "more characters in the results file" in rec["message"]
    assert len(rec["message"]) < 300_000


def test_killed_run_is_flagged_and_its_records_shown():
    doc = _fixture("torch.json")
    doc.update(complete=False, finished_at=None)
    html = render_html([doc])
    assert "the run did not finish (complete=false)" in html and "incomplete run" in html
    assert len(embedded_records(html)) == len(doc["results"])


@pytest.mark.parametrize("name", ["reference.json", "torch.json", "baseline_torch.json", "bench.json"])
def test_synthetic_fixtures_follow_the_results_schema(name):
    """The fixtures stand in for real runs only while they have the real shape."""
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    schema = json.loads(resources.files("attnconf.spec").joinpath("results.schema.json").read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(_fixture(name))]
    assert errors == []


def test_a_memory_bound_point_shows_its_gb_per_s_and_share_of_the_copy_bandwidth():
    """RoPE is counted in bytes (perf.bytes): the speed table shows GB/s and % of the copy probe."""
    doc = _fixture("bench.json")
    point = {**doc["benchmarks"]["points"][0], "operation": "rotary_embedding", "gflops": None,
             "pct_peak": None, "bytes": 5.4e8, "gbps": 6.19, "pct_bandwidth": 30.2}
    doc["benchmarks"]["points"] = [point]
    html = render_html([doc])
    table = html.split('id="speed-table"', 1)[1].split("</table>", 1)[0]
    assert "GB/s" in table and "% of copy bandwidth" in table
    row = table.split("rotary_embedding", 1)[1].split("</tr>", 1)[0]
    assert ">6.19<" in row and ">30.2<" in row, row
