"""The report treats every string from a results file as hostile (issue 7, security).

Hostile strings go into every field an implementation or a results file controls; the page is
parsed and must contain no element, attribute, script or link the template did not put there, and
each hostile string must still be shown (escaped), not dropped.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from attnconf.conformance.report import CHUNK_TYPE, embedded_records, load_results, render_html

HOSTILE = [
    "<script>alert(1)</script>",
    '" onmouseover="alert(2)',
    "' onfocus='alert(3)' autofocus='",
    "javascript:alert(4)",
    "</script><script>alert(5)</script>",
    "<img src=x onerror=alert(6)>",
    "<!-- -->--><svg onload=alert(7)>",
    "{{ 7*7 }}{% raw %}",
    "\u2028\u2029</ScRiPt >",
]


def hostile_results(i: int = 0) -> dict:
    h = HOSTILE
    pick = lambda k: h[(i + k) % len(h)]  # noqa: E731 - a short rotation through the strings
    adapter = "adapter" + pick(0)
    record = {
        "adapter": adapter, "framework": "fw" + pick(1), "operation": "sdpa", "case": "case/" + pick(2),
        "clauses": ["sdpa.output", pick(3)], "dtype": "float32" + pick(4), "check": "agreement",
        "status": "fail", "message": "failed: " + pick(5) + "\n" + pick(6),
        "repro": "attnconf run --select '" + pick(7) + "'", "duration_s": 0.1,
        "metrics": {"max_ulp_error": 3.0, "rule": pick(8), pick(0): pick(1), "worst_index": [0, 2]},
        "options": {pick(3): pick(4), "is_causal": True}, "shapes": {"query": [1, 2, 3, 4], pick(5): [6]},
    }
    return {
        "schema_version": "1.0", "suite_version": pick(0), "spec_version": pick(1),
        "started_at": pick(2), "finished_at": pick(3), "command": ["attnconf", "run", pick(4)],
        "environment": {"python": pick(5), "platform": pick(6), "cpu": pick(7), "numpy": pick(8),
                        "frameworks": {pick(0): pick(1)}, "device": pick(2)},
        "adapters": [{"name": adapter, "framework": pick(1)}], "complete": False, "level": "strict",
        "expectation_findings": [{"kind": pick(8), "detail": pick(0),
                                  "entry": {"adapter": adapter, "case": pick(1), "reason": pick(2)}},
                                 {"kind": "passes", "detail": pick(3), "entry": pick(4)}],
        "results": [record, {**record, "status": "pass", "dtype": "float64"},
                    {**record, "status": pick(3), "case": "case2"}],
        "profiles": {adapter: {pick(4): {"value": pick(5), "evidence": pick(6)}},
                     "reference": {pick(4): {"value": "zero", "evidence": pick(7)}}},
        "benchmarks": {"machine": pick(8), "peak_gflops": {"float32": 10.0},
                       "points": [{"adapter": adapter, "operation": pick(0), "dtype": "float32", "L": L, "S": L,
                                   "H": 1, "E": 64, "B": 1, "causal": False, "time_s": 1e-6 * L * L,
                                   "gflops": 5.0, "pct_peak": 50.0, "peak_rss_mb": 10.0} for L in (128, 256)],
                       "scaling": [{"adapter": adapter, "dtype": "float32", "exponent": 2.0}]},
    }


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.scripts = [], [], []
        self._in_script = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append([dict(attrs), ""])

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts[-1][1] += data
        else:
            self.text.append(data)


def _parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    p.close()
    return p


def _template_tags() -> set[str]:
    import re

    import attnconf.conformance.report as report

    root = Path(report.__file__).parent
    source = (root / "templates" / "report.html.j2").read_text() + (root / "plots.py").read_text()
    # the template's own tag names, including the h{{ level }} headings of the spec text
    return {t.lower() for t in re.findall(r"<([A-Za-z][A-Za-z0-9]*)", source)} | {f"h{n}" for n in range(1, 7)}


@pytest.fixture(scope="module")
def benign():
    fix = Path(__file__).parent / "fixtures" / "report"
    runs, _ = load_results([fix / "torch.json", fix / "bench.json"])
    return _parse(render_html(runs))


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_strings_are_escaped_everywhere(i, benign, tmp_path):
    # a hostile file name too: it becomes the run label and appears in problem lines
    bad_name = tmp_path / ("run" + HOSTILE[i].replace("/", "_") + ".json")
    bad_name.write_text(json.dumps(hostile_results(i)))
    missing = tmp_path / ("gone" + HOSTILE[(i + 1) % len(HOSTILE)].replace("/", "_") + ".json")
    runs, problems = load_results([bad_name, missing])
    # the missing file, and the record whose status is a hostile string (schema-invalid: not shown)
    assert len(runs) == 1 and len(problems) == 2, problems
    html = render_html(runs, baseline=[hostile_results(i + 1)], problems=problems)
    page = _parse(html)

    for h in HOSTILE:
        if "<" in h:
            assert h not in html, f"unescaped {h!r}"
    # no element that neither the template nor the plot code writes
    assert {t for t, _ in page.tags} <= _template_tags()
    for tag, attrs in page.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert name not in ("src", "srcset", "autofocus", "formaction"), (tag, name)
            if name == "href":
                assert value.startswith("#"), value
    # exactly the template's scripts: the JSON data block, the static code (unchanged), and the
    # records' chunks (compressed data: base64 text that no browser runs)
    assert [a for a, _ in page.scripts] == [a for a, _ in benign.scripts]
    assert [a.get("type") for a, _ in page.scripts] == ["application/json", None, CHUNK_TYPE]
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", page.scripts[2][1])
    assert page.scripts[1][1] == benign.scripts[1][1]
    data = json.loads(page.scripts[0][1])
    assert data["implementations"][0]["name"] == "adapter" + HOSTILE[i]
    assert any(HOSTILE[(i + 1) % len(HOSTILE)].replace("/", "_") in p for p in data["problems"])
    # the strings are still shown to the reader, as text
    text = "".join(page.text)
    assert "adapter" + HOSTILE[i] in text
    # the records reach the page as data the script sets as text (test_browser_report.py opens them)
    shown = embedded_records(html)
    assert any(("failed: " + HOSTILE[(i + 5) % len(HOSTILE)]) in r["message"] for r in shown)
    assert any(r["case"] == "case/" + HOSTILE[(i + 2) % len(HOSTILE)] for r in shown)


def test_json_block_cannot_be_closed_early():
    html = render_html([hostile_results(4)], problems=["</script><script>alert(1)</script>"])
    block = html.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block
    assert json.loads(block)["problems"][0] == "</script><script>alert(1)</script>"
