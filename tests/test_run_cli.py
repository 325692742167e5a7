"""`attnconf run`: exit codes, schema-valid results JSON, summary and repro commands.

Small selections keep these fast; implementations are the bundled NumPy reference and bare
NumPy functions written here (one correct, one with a 1e-5 relative scale error).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from attnconf import cli
from attnconf.conformance.results import files as results

PLUGIN = textwrap.dedent('''
    import numpy as np

    def _sdpa(query, key, value, attn_mask, is_causal, scale, factor):
        s = query @ np.swapaxes(key, -1, -2) * (scale if scale is not None else 1 / np.sqrt(query.shape[-1])) * factor
        L, S = s.shape[-2:]
        allowed = np.ones(s.shape, bool)
        if attn_mask is not None and attn_mask.dtype == bool:
            allowed &= attn_mask
        elif attn_mask is not None:
            s = s + attn_mask
        if is_causal:
            allowed &= np.tril(np.ones((L, S), bool))
        s = np.where(allowed, s, -np.inf)
        m = s.max(-1, keepdims=True)
        full = np.isneginf(m)
        p = np.exp(s - np.where(full, 0, m))
        p = np.where(full, 0, p / np.where(full, 1, p.sum(-1, keepdims=True)))
        return (p @ value).astype(query.dtype)

    def good(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
        return _sdpa(query, key, value, attn_mask, is_causal, scale, 1.0)

    def scaled_wrong(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
        return _sdpa(query, key, value, attn_mask, is_causal, scale, 1.0 + 1e-5)
''')


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    (tmp_path / "suitecore_plug.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _run(argv, capsys):
    code = cli.main(["run", "--no-checks", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_reference_conforms_exit_0_and_json_is_schema_valid(tmp_path, capsys):
    path = tmp_path / "r.json"
    code, out, err = _run(["--adapter", "numpy-reference", "--select", "sdpa/size_*",
                           "--dtype", "float64,float32", "--json", str(path)], capsys)
    assert code == 0, err
    doc = results.read_results(path)
    assert doc["complete"] is True and doc["finished_at"]
    assert {r["dtype"] for r in doc["results"]} == {"float64", "float32"}
    assert all(r["status"] == "pass" for r in doc["results"])
    assert "all conform" in out and "wall time" in out


def test_a_bare_function_with_a_scale_error_exits_1_naming_clauses(plugin_dir, tmp_path, capsys):
    path = tmp_path / "r.json"
    code, out, err = _run(["--sdpa", "suitecore_plug:scaled_wrong", "--framework", "numpy",
                           "--select", "sdpa/size_*", "--dtype", "float64", "--json", str(path)], capsys)
    assert code == 1, err
    doc = results.read_results(path)
    failed = [r for r in doc["results"] if r["status"] == "fail"]
    assert failed and "sdpa.output" in out and "non-conforming clauses" in out
    assert failed[0]["repro"].startswith("attnconf run --sdpa suitecore_plug:scaled_wrong --framework numpy --select ")
    assert failed[0]["metrics"]["max_ulp_error"] > failed[0]["metrics"]["tolerance_ulps"]


def test_a_correct_bare_function_conforms(plugin_dir, tmp_path, capsys):
    code, out, err = _run(["--sdpa", "suitecore_plug:good", "--framework", "numpy", "--select", "sdpa/causal_tl*",
                           "--dtype", "float64,float32", "--json", str(tmp_path / "r.json")], capsys)
    assert code == 0, out + err


@pytest.mark.parametrize("argv,words", [
    (["--dtype", "float8"], "--dtype should be one of"),
    (["--adapter", "no-such-adapter"], "adapter should be one of"),
    (["--level", "lenient"], "--level should be one of"),
    (["--device", "tpu"], "--device should be one of"),
    (["--timeout", "0"], "--timeout should be a positive"),
    (["--select", "no/such/case*", "--adapter", "numpy-reference"], "--select should match"),
    (["--json", "/proc/attnconf/r.json"], "--json path should be writable"),
    (["--framework", "numpy"], "--framework should come with --sdpa"),
    (["--sdpa", "nodots"], ""),
    (["--expectations", "x.json", "--no-expectations"], "should not be combined"),
])
def test_usage_errors_are_one_line_exit_2(argv, words, capsys, tmp_path):
    if "--json" not in argv:
        argv = [*argv, "--json", str(tmp_path / "r.json")]
    code, out, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnconf: ") and words in lines[0]
    assert "Traceback" not in err


def test_cli_subprocess_prints_time_and_writes_default_path(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "attnconf", "run", "--adapter", "numpy-reference",
                           "--select", "enc/vaswani_interleaved_d16", "--dtype", "float32", "--no-checks"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wall time" in proc.stdout
    doc = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert doc["schema_version"] == results.SCHEMA_VERSION and len(doc["results"]) == 1


def test_html_report_is_rendered_when_asked(tmp_path, capsys):
    pytest.importorskip("attnconf.conformance.report")
    html = tmp_path / "r.html"
    code, out, err = _run(["--adapter", "numpy-reference", "--select", "sdpa/size_l1*", "--dtype", "float64",
                           "--json", str(tmp_path / "r.json"), "--html", str(html)], capsys)
    assert code == 0, err
    assert html.read_text().lstrip().lower().startswith("<!doctype html") and "report:" in out


def test_adapters_run_concurrently_in_workers_and_all_records_land(plugin_dir, tmp_path):
    path = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    proc = subprocess.run([sys.executable, "-m", "attnconf", "run", "--adapter", "numpy-reference",
                           "--sdpa", "suitecore_plug:good", "--framework", "numpy", "--select", "sdpa/size_*",
                           "--dtype", "float64,float32", "--no-checks", "--jobs", "2", "--json", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = results.read_results(path)
    by_adapter = {}
    for r in doc["results"]:
        by_adapter.setdefault(r["adapter"], []).append(r["status"])
    assert len(by_adapter) == 2 and all(len(v) == 18 and set(v) == {"pass"} for v in by_adapter.values())
    assert [a["name"] for a in doc["adapters"]] == list(dict.fromkeys(a["name"] for a in doc["adapters"]))
