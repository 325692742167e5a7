"""`attnconf run` with the worker executor (the default), through the real CLI: a crashing, hanging,
memory-hungry or garbage-returning plug-in leaves crash / timeout / fail records beside the passing
adapter, the run exits 1, results are on disk while the run goes (a killed run keeps them), and
--resume runs only what is missing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from attnconf.conformance.results.files import read_results

TESTS = Path(__file__).resolve().parent
SELECT = "sdpa/size_l1_s1_e1"          # one tiny golden case keeps each run short


def cmd(*args):
    return [sys.executable, "-m", "attnconf", "run", "--no-checks", "--no-expectations", *args]


def env():
    return dict(os.environ, PYTHONPATH=str(TESTS))


def attnconf_run(*args, timeout=300):
    return subprocess.run(cmd(*args), capture_output=True, text=True, env=env(), timeout=timeout)


def statuses(path):
    doc = read_results(path)                      # schema-valid
    return doc, Counter((r["adapter"], r["status"]) for r in doc["results"])


@pytest.mark.parametrize("func, status, words", [
    ("segfault", "crash", "SIGSEGV"),
    ("abort", "crash", "SIGABRT"),
    ("returns_none", "fail", "returned None"),
    ("nan_output", "fail", "NaN"),
    ("raises", "error", "ValueError"),
])
def test_misbehaving_plugin_beside_a_passing_adapter(tmp_path, func, status, words):
    out = tmp_path / "r.json"
    r = attnconf_run("--adapter", "numpy-reference", "--sdpa", f"zoo.sdpa:{func}", "--framework", "numpy",
                     "--select", "sdpa/size_*", "--dtype", "float64,float32", "--json", str(out))
    assert r.returncode == 1, r.stderr
    doc, counts = statuses(out)
    assert doc["complete"] is True
    assert set(counts) == {("numpy-reference", "pass"), (f"zoo.sdpa:{func}", status)}, counts
    assert counts[("numpy-reference", "pass")] == counts[(f"zoo.sdpa:{func}", status)]
    bad = [rec for rec in doc["results"] if rec["status"] == status]
    assert all(words in rec["message"] for rec in bad)
    assert "zoo.sdpa" in r.stdout and status in r.stdout      # the summary names them


def test_hang_is_timeout_and_the_run_finishes(tmp_path):
    out = tmp_path / "r.json"
    started = time.monotonic()
    r = attnconf_run("--sdpa", "zoo.sdpa:hang", "--framework", "numpy", "--select", SELECT,
                     "--dtype", "float64,float32", "--timeout", "1.5", "--json", str(out))
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - started < 60
    doc, counts = statuses(out)
    assert counts == {("zoo.sdpa:hang", "timeout"): 2}
    assert all("1.5 s" in rec["message"] for rec in doc["results"])


def test_memory_hog_under_memory_limit_is_crash(tmp_path):
    out = tmp_path / "r.json"
    r = attnconf_run("--sdpa", "zoo.sdpa:memory_hog", "--framework", "numpy", "--select", SELECT,
                     "--dtype", "float64", "--memory-limit", "768M", "--json", str(out))
    assert r.returncode == 1, r.stderr
    doc, counts = statuses(out)
    assert counts == {("zoo.sdpa:memory_hog", "crash"): 1}
    assert "memory exhausted" in doc["results"][0]["message"]


def test_no_isolation_still_runs_in_process(tmp_path):
    out = tmp_path / "r.json"
    r = attnconf_run("--no-isolation", "--adapter", "numpy-reference", "--select", SELECT, "--dtype", "float64",
                     "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert statuses(out)[1] == {("numpy-reference", "pass"): 1}


def _wait_for(path, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            doc = json.loads(path.read_text())
            if predicate(doc):
                return doc
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never satisfied the condition")


def test_killed_run_keeps_its_records_and_resume_runs_only_the_rest(tmp_path):
    out = tmp_path / "r.json"
    args = ["--adapter", "numpy-reference", "--sdpa", "zoo.sdpa:sleep_forever", "--framework", "numpy",
            "--select", "sdpa/size_*", "--dtype", "float64", "--json", str(out)]
    proc = subprocess.Popen(cmd(*args, "--timeout", "300"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env())
    try:
        # numpy-reference runs first; the sleeping plug-in then blocks on its first case
        n_ref = _wait_for(out, lambda d: any(a["name"] == "zoo.sdpa:sleep_forever" for a in d["adapters"])
                          and sum(r["adapter"] == "numpy-reference" for r in d["results"]) > 0)
        time.sleep(1.5)                              # past the writer's 1 s flush interval
    finally:
        os.kill(proc.pid, signal.SIGKILL)            # the run is killed from outside
        proc.wait(timeout=30)
    doc, counts = statuses(out)
    assert doc["complete"] is False and doc["finished_at"] is None
    kept = [r for r in doc["results"] if r["adapter"] == "numpy-reference"]
    assert kept and all(r["status"] == "pass" for r in kept)
    assert n_ref

    r = attnconf_run(*args, "--timeout", "1", "--resume")
    assert r.returncode == 1, r.stderr
    doc2, counts2 = statuses(out)
    assert doc2["complete"] is True
    again = [r for r in doc2["results"] if r["adapter"] == "numpy-reference"]
    assert again[: len(kept)] == kept, "records measured before the kill are kept as they were"
    keys = [(r["adapter"], r["case"], r["dtype"], r["check"]) for r in doc2["results"]]
    assert len(keys) == len(set(keys)), "nothing measured twice"
    assert counts2[("zoo.sdpa:sleep_forever", "timeout")] == counts2[("numpy-reference", "pass")]


def test_invariant_checks_run_in_the_worker_too(tmp_path):
    """With checks on, a plug-in that crashes takes down only its worker, during invariants as
    during agreement: the batch becomes one crash record and the run completes."""
    out = tmp_path / "r.json"
    # --select restricts invariants too: this one selects the golden case and every invariant
    r = subprocess.run([sys.executable, "-m", "attnconf", "run", "--no-expectations", "--sdpa", "zoo.sdpa:segfault",
                        "--framework", "numpy", "--select", SELECT + ",invariant/*", "--dtype", "float64",
                        "--json", str(out)],
                       capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 1, r.stderr
    doc, counts = statuses(out)
    assert doc["complete"] is True
    checks = Counter((rec["check"], rec["status"]) for rec in doc["results"])
    assert checks == {("agreement", "crash"): 1, ("invariant", "crash"): 1}, checks


@pytest.mark.parametrize("module, words", [("import_segfault", ["crashed", "SIGSEGV"]),
                                           ("import_hang", ["timed out", "3 s"])])
def test_plugin_that_crashes_or_hangs_at_import_is_one_line_not_a_dead_run(tmp_path, module, words):
    r = attnconf_run("--sdpa", f"zoo.{module}:sdpa", "--framework", "numpy", "--timeout", "3",
                     "--json", str(tmp_path / "r.json"))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"zoo.{module}:sdpa" in lines[0] and all(w in lines[0] for w in words), lines[0]
