"""Results are never lost, misplaced or mislabelled (issue 22): real `attnconf run` subprocesses
with plug-ins that misbehave in-process (tests/zoo/misbehaving.py), interrupted by a signal, with
stdout's reader gone, on a full file system, and runs that judge nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnconf.conformance.results.files import read_results

TESTS = Path(__file__).resolve().parent
CAUSAL = "sdpa/causal_tl_*"
ENV = dict(os.environ, PYTHONPATH=str(TESTS))


def command(*args, json_path="r.json"):
    return [sys.executable, "-m", "attnconf", "run", "--no-expectations", "--json", str(json_path), *args]


def attnconf_run(tmp_path, *args, env=None, **kw):
    return subprocess.run(command(*args, **kw), cwd=tmp_path, capture_output=True, text=True,
                          env=env or ENV, timeout=600)


def plugin(name):
    return ["--sdpa", f"zoo.misbehaving:{name}", "--framework", "numpy"]


def test_a_plugin_that_changes_directory_in_process_does_not_move_the_results(tmp_path):
    r = attnconf_run(tmp_path, *plugin("sdpa_chdir"), "--no-isolation", "--no-checks", "--select", CAUSAL,
                     "--dtype", "float64", "--html", "out/r.html")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = read_results(tmp_path / "r.json")
    assert doc["complete"] and len(doc["results"]) >= 3, doc["complete"]
    assert all(x["status"] == "pass" for x in doc["results"])
    assert (tmp_path / "out" / "r.html").is_file(), "the report should be where the command line named it"


@pytest.mark.parametrize("name, words", [
    ("sdpa_exit", "SystemExit: 0"),
    ("sdpa_base_exception", "Abort: the plug-in gives up"),
    ("sdpa_bad_str", "Unprintable: <str() of the exception raised RuntimeError>"),
])
def test_in_process_a_base_exception_or_bad_str_is_that_cases_error(tmp_path, name, words):
    r = attnconf_run(tmp_path, *plugin(name), "--no-isolation", "--no-checks", "--select",
                     "sdpa/causal_tl_square*,sdpa/mask_bool*", "--dtype", "float64")
    doc = read_results(tmp_path / "r.json")
    assert r.returncode == 1, f"a run with error records should exit 1, but got {r.returncode}: {r.stderr[-2000:]}"
    assert doc["complete"], "the run should go on to the end"
    judged = [x for x in doc["results"] if x["status"] != "skip"]
    causal = [x for x in judged if x["options"].get("is_causal")]
    others = [x for x in judged if not x["options"].get("is_causal")]
    assert causal and others
    assert all(x["status"] == "error" and words in x["message"] for x in causal), causal[0]["message"]
    assert all(x["status"] == "pass" for x in others)


def test_in_process_sys_exit_in_the_checks_is_an_error_record(tmp_path):
    r = attnconf_run(tmp_path, *plugin("sdpa_exit"), "--no-isolation", "--select", "invariant/*causal*",
                     "--dtype", "float64")
    doc = read_results(tmp_path / "r.json")
    assert doc["complete"], r.stderr[-2000:]
    assert r.returncode == 1 and any(x["status"] == "error" and "SystemExit" in x["message"]
                                     for x in doc["results"]), (r.returncode, doc["results"][:2])


def test_timeout_with_no_isolation_is_refused_up_front(tmp_path):
    r = attnconf_run(tmp_path, *plugin("sdpa_hang_after"), "--no-isolation", "--timeout", "5")
    assert r.returncode == 2 and "--timeout applies to worker processes" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("executor", ["in-process", "worker"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_every_record_it_judged(tmp_path, executor, signum):
    """The plug-in logs each finished call and hangs on the 7th: the signal arrives while it hangs,
    so exactly the 6 records judged before must be in the file, marked incomplete."""
    log = tmp_path / "calls.log"
    env = dict(ENV, ATTNCONF_TEST_CALL_LOG=str(log), ATTNCONF_TEST_HANG_AFTER="6")
    proc = subprocess.Popen(command(*plugin("sdpa_hang_after"), "--executor", executor, "--no-checks",
                                    "--select", "sdpa/*", "--dtype", "float64"),
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not Path(str(log) + ".hang").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, f"exit should be {128 + signum}, but got {proc.returncode}: {err}"
    assert "interrupted" in err and "r.json" in err, err
    doc = read_results(tmp_path / "r.json")
    done = len(log.read_text().splitlines())
    assert done == 6
    assert not doc["complete"] and doc["finished_at"] is None
    assert [x["status"] for x in doc["results"]] == ["pass"] * done, \
        f"the file should hold the {done} records judged, but holds {len(doc['results'])}"


@pytest.mark.parametrize("merged", [False, True], ids=["stdout", "stdout-and-stderr"])
def test_a_failing_run_whose_reader_went_away_still_exits_1(tmp_path, merged):
    """`attnconf run … | head` / `| grep -q` (and `2>&1 | head`, where the progress lines on
    stderr meet the closed pipe first): the reader closes the pipe before the summary."""
    proc = subprocess.Popen(command(*plugin("sdpa_wrong"), "--no-checks", "--select", CAUSAL, "--dtype", "float64"),
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merged else subprocess.PIPE)
    proc.stdout.close()
    err = "" if merged else proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 1, f"exit should be 1 (the verdict), but got {proc.returncode}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert read_results(tmp_path / "r.json")["complete"]


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs (needs root and mount rights: skipped with the reason elsewhere)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root in a mount namespace): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_full_disk_is_one_line_naming_the_file_and_the_file_stays_valid(tmp_path, small_fs):
    path = small_fs / "r.json"
    r = attnconf_run(tmp_path, "--adapter", "numpy-reference", "--no-checks", "--select", "sdpa/*",
                     json_path=path)
    assert r.returncode == 4, f"exit should be 4 (results not written), but got {r.returncode}: {r.stderr[-2000:]}"
    lines = r.stderr.strip().splitlines()
    assert str(path) in lines[-1] and "No space left on device" in lines[-1], lines[-3:]
    assert "internal error" not in r.stderr
    doc = read_results(path)    # the last complete version: valid, marked incomplete
    assert not doc["complete"]


def test_a_plugin_run_that_judges_nothing_is_not_a_pass(tmp_path):
    # every record a decline (the plug-in has no float64 kernel)
    r = attnconf_run(tmp_path, "--sdpa", "zoo.declining:sdpa_no_float64", "--framework", "numpy",
                     "--no-checks", "--select", CAUSAL, "--dtype", "float64")
    assert r.returncode == 2 and "should judge at least one record" in r.stderr, (r.returncode, r.stderr)
    # --select leaves it no case of its operation
    r = attnconf_run(tmp_path, *plugin("sdpa_wrong"), "--no-checks", "--select", "enc/*")
    assert r.returncode == 2 and "should judge at least one record" in r.stderr, (r.returncode, r.stderr)
    assert json.loads((tmp_path / "r.json").read_text())["results"] == []


def test_golden_export_selecting_nothing_fails(tmp_path):
    r = subprocess.run([sys.executable, "-m", "attnconf", "golden", "export", str(tmp_path / "x"), "--select",
                        "no/such_case"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--select should match at least one case id" in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()


def test_the_pytest_plugin_writes_its_json_where_it_was_named_despite_a_chdir(tmp_path):
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "-p", "no:cacheprovider", "-q",
           "-k", "agreement or sdpa", "--attnconf-sdpa", "zoo.misbehaving:sdpa_chdir", "--attnconf-framework",
           "numpy", "--attnconf-select", "sdpa/causal_tl_square*", "--attnconf-dtype", "float64",
           "--attnconf-json", "p.json"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    doc = read_results(tmp_path / "p.json")
    agreement = [x for x in doc["results"] if x["case"] == "sdpa/causal_tl_square_l9"]
    assert doc["complete"] and [x["status"] for x in agreement] == ["pass"], doc["results"][:2]
