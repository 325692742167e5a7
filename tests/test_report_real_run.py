"""The report on real `attnconf run` output: a small reference run, and a hostile bare-function
plug-in whose exception message tries to close the page's script — end to end through the CLI."""
from __future__ import annotations

import json
import re
from collections import Counter

from attnconf.cli import main
from attnconf.conformance.report import CHUNK_TYPE, embedded_records, load_results
from attnconf.conformance.report.merge import merge



def _one_sdpa_case() -> str:
    """The id of one golden sdpa case, taken from the catalogue so a renamed case cannot leave
    these tests selecting nothing."""
    from attnconf.reference.golden import load_cases

    return load_cases("sdpa/*")[0].id


SELECT = _one_sdpa_case()


def test_report_of_a_real_reference_run(tmp_path, capsys):
    out_json, out_html = tmp_path / "reference.json", tmp_path / "index.html"
    rc = main(["run", "--adapter", "numpy-reference", "--select", SELECT, "--dtype", "float64,float32",
               "--json", str(out_json)])
    assert rc == 0
    assert main(["report", str(out_json), "--html", str(out_html)]) == 0
    doc = json.loads(out_json.read_text())
    runs, problems = load_results([out_json])
    assert problems == []
    impl = merge(runs).implementations[0]
    assert impl.adapter == "numpy-reference"
    assert impl.counts == Counter(r["status"] for r in doc["results"]) and impl.total > 0
    html = out_html.read_text()
    shown = embedded_records(html)
    assert len(shown) == len(doc["results"])
    assert sorted((r["case"], r["dtype"], r["status"], r["repro"]) for r in shown) == sorted(
        (r["case"], r["dtype"], r["status"], r["repro"]) for r in doc["results"])
    assert f"{impl.counts['pass']}/{impl.total}" in html


def test_hostile_plugin_message_is_escaped_end_to_end(tmp_path, monkeypatch, capsys):
    (tmp_path / "evil_report_plugin.py").write_text(
        '"""<script>alert(\'doc\')</script>"""\n'
        "def sdpa(query, key, value, attn_mask=None, is_causal=False, scale=None, **kw):\n"
        "    raise ValueError('</script><script>alert(1)</script><img src=x onerror=alert(2)>')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out_json, out_html = tmp_path / "evil.json", tmp_path / "evil.html"
    rc = main(["run", "--sdpa", "evil_report_plugin:sdpa", "--framework", "numpy", "--select", SELECT,
               "--dtype", "float32", "--no-checks", "--json", str(out_json), "--html", str(out_html)])
    assert rc == 1  # the plug-in raises: a non-conformance, not an attnconf failure
    messages = [r["message"] for r in json.loads(out_json.read_text())["results"]]
    assert any("</script><script>alert(1)</script>" in m for m in messages)
    html = out_html.read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    # the message travels as data (compressed, base64: no < or > survives into the page) and
    # reaches the page as text
    for block in re.findall(r'class="rec-chunk">(.*?)</script>', html, re.S):
        assert re.fullmatch(r"[A-Za-z0-9+/=]+", block)
    assert any("</script><script>alert(1)</script>" in r["message"] for r in embedded_records(html))
    scripts = re.findall(r"<script([^>]*)>", html)
    # the page's own data blocks and its one code block, nothing more
    assert scripts.count("") == 1 and set(scripts) == {"", ' type="application/json" id="report-data"',
                                                      f' type="{CHUNK_TYPE}" class="rec-chunk"'}, scripts
