"""The pytest11 plugin: `pytest --pyargs attnconf.conformance` runs, with readable ids, under
pytest-xdist too, and a failing implementation fails its own parametrised test with a repro."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from attnconf.conformance.results import files as results

pytestmark = pytest.mark.slow

BAD = textwrap.dedent('''
    import numpy as np
    from attnconf import reference

    def sdpa(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
        s = 1.0 / np.sqrt(query.shape[-1]) if scale is None else scale
        opts = dict(is_causal=is_causal, scale=s * (1 + 1e-5), enable_gqa=enable_gqa)
        inputs = dict(query=query, key=key, value=value)
        if attn_mask is not None:
            inputs["attn_mask"] = attn_mask
        return reference.compute("sdpa", inputs, opts)["output"].astype(query.dtype)
''')


def _pytest(tmp_path, *args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "-p", "no:cacheprovider",
           "-k", "agreement", "-q", *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)


def test_collects_readable_ids_per_adapter_case_dtype(tmp_path):
    proc = _pytest(tmp_path, "--collect-only", "--attnconf-adapter", "numpy-reference",
                   "--attnconf-select", "sdpa/size_l1*", "--attnconf-dtype", "float64,float32")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_sdpa.py::test_agreement[numpy-reference-float64-sdpa/size_l1_s1_e1]" in proc.stdout
    assert "test_sdpa.py::test_agreement[numpy-reference-float32-sdpa/size_l1_s1_e1]" in proc.stdout


def test_runs_under_xdist_and_merges_json(tmp_path):
    path = tmp_path / "r.json"
    proc = _pytest(tmp_path, "-n", "2", "--attnconf-adapter", "numpy-reference", "--attnconf-select", "sdpa/size_*",
                   "--attnconf-dtype", "float64,float16", "--attnconf-json", str(path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = results.read_results(path)
    assert len(doc["results"]) == 2 * 9 and not list(tmp_path.glob("r.json.*.part"))
    coverage = {e["operation"]: e["implemented"] for e in doc["coverage"] if e["adapter"] == "numpy-reference"}
    assert coverage and all(coverage.values()), doc["coverage"]     # the reference implements every operation


def test_a_failing_function_fails_its_own_test_with_a_repro(tmp_path):
    (tmp_path / "suitecore_bad.py").write_text(BAD)
    proc = _pytest(tmp_path, "--attnconf-sdpa", "suitecore_bad:sdpa", "--attnconf-framework", "numpy",
                   "--attnconf-select", "sdpa/size_l1_s64*", "--attnconf-dtype", "float64,float32",
                   env_extra={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rerun: attnconf run --sdpa suitecore_bad:sdpa --framework numpy --select sdpa/size_l1_s64_decode --dtype float64" in proc.stdout
    assert "FAILED" in proc.stdout and "[suitecore_bad:sdpa-float64-sdpa/size_l1_s64_decode]" in proc.stdout
    assert "3 skipped" in proc.stdout  # mha, encoding, gradients: not offered by a bare sdpa


def test_the_plugin_is_harmless_in_other_projects(tmp_path):
    (tmp_path / "test_other.py").write_text(
        "import sys\n"
        "def test_nothing_heavy_was_imported():\n"
        "    heavy = [m for m in ('torch', 'jax', 'tensorflow', 'attnconf.adapters.registry') if m in sys.modules]\n"
        "    assert heavy == []\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_other.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
