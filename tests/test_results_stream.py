"""Results JSON: schema validation, version gate, and a killed run keeping what it measured."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from attnconf.conformance.results import files as results
from attnconf.errors import UsageError

SLOW_ADAPTER = textwrap.dedent('''
    import time
    import numpy as np
    from attnconf import reference
    from attnconf.adapters.numpy_reference import NumpyReferenceAdapter

    class Slow(NumpyReferenceAdapter):
        name = "slow-numpy"

        def sdpa(self, *args, **kwargs):
            time.sleep(0.3)   # long enough to be killed in the middle of the run
            return super().sdpa(*args, **kwargs)
''')


def _minimal_doc():
    doc = results.new_document(command=["attnconf", "run"])
    doc["results"].append({"adapter": "a", "framework": "numpy", "operation": "sdpa", "case": "sdpa/x",
                           "clauses": ["sdpa.output"], "dtype": "float32", "check": "agreement",
                           "status": "fail", "metrics": {"max_ulp_error": float("inf")},
                           "message": "m", "repro": "attnconf run --adapter a"})
    return doc


def test_written_documents_validate_and_nonfinite_metrics_become_strings(tmp_path):
    path = tmp_path / "r.json"
    w = results.ResultsWriter(path, doc=_minimal_doc())
    w.finish()
    doc = results.read_results(path)
    assert doc["results"][0]["metrics"]["max_ulp_error"] == "inf"
    assert doc["complete"] is True


def test_newer_schema_versions_are_rejected_in_one_line(tmp_path):
    path = tmp_path / "r.json"
    doc = _minimal_doc()
    doc["schema_version"] = "2.0"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="newer than this attnconf reads") as info:
        results.read_results(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mutate,words", [
    (lambda d: d.pop("results"), "'results' is a required property"),
    (lambda d: d["results"][0].update(status="passed"), "results/0/status"),
    (lambda d: d.update(schema_version="one"), "schema_version should look like"),
])
def test_invalid_documents_name_the_problem(tmp_path, mutate, words):
    doc = _minimal_doc()
    mutate(doc)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=words.replace("'", ".")):
        results.read_results(path)


def test_truncated_file_is_a_usage_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_minimal_doc())[:50])
    with pytest.raises(UsageError, match="should be JSON"):
        results.read_results(path)


def test_a_killed_run_keeps_its_records(tmp_path):
    (tmp_path / "suitecore_slow.py").write_text(SLOW_ADAPTER)
    path = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "attnconf", "run", "--adapter", "suitecore_slow:Slow",
                             "--select", "sdpa/", "--dtype", "float64", "--no-checks", "--json", str(path)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        measured = 0
        while time.monotonic() < deadline and measured < 5:
            time.sleep(0.5)
            try:
                measured = len(json.loads(path.read_text())["results"])
            except (OSError, ValueError, KeyError):
                measured = 0
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    doc = results.read_results(path)   # still valid after SIGKILL: written atomically
    assert doc["complete"] is False and doc["finished_at"] is None
    assert len(doc["results"]) >= 5
    assert all(r["adapter"] == "slow-numpy" for r in doc["results"])
