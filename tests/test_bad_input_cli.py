"""Bad input through the real CLI: each mistake gets exactly one stderr line naming what was wrong
and what is expected, exit status 2, and no traceback (unless --debug).

Most cases call `attnconf.cli.main([...])` in this process (fast); the ones that need a different
environment (a framework made unimportable) or check the process boundary run `python -m attnconf`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnconf.cli import main
from attnconf.reference import golden

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))           # the zoo of misbehaving plug-ins
FN = ["--sdpa", "zoo.sdpa:good", "--framework", "numpy", "--no-checks"]


def assert_one_line(code, err, *words):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("attnconf: ")
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(*args, words=()):
        try:
            code = main(list(args))
        except SystemExit as exc:          # argparse errors
            code = exc.code
        out, err = capsys.readouterr()
        assert_one_line(code, err, *words)
        return err
    return run


@pytest.fixture(scope="module")
def goldens(tmp_path_factory):
    """Copies of the shipped golden dir, each broken in one way."""
    src = golden.resolve_dir()
    root = tmp_path_factory.mktemp("goldens")
    dirs = {}
    for name in ("missing_file", "truncated", "sha_mismatch", "unreadable", "bad_manifest"):
        dirs[name] = root / name
        shutil.copytree(src, dirs[name])
    (dirs["missing_file"] / "mha.npz").unlink()
    data = (dirs["truncated"] / "sdpa.npz").read_bytes()
    (dirs["truncated"] / "sdpa.npz").write_bytes(data[: len(data) // 3])
    flipped = bytearray((dirs["sha_mismatch"] / "sdpa.npz").read_bytes())
    flipped[-200] ^= 1
    (dirs["sha_mismatch"] / "sdpa.npz").write_bytes(bytes(flipped))
    (dirs["unreadable"] / "sdpa.npz").unlink()
    (dirs["unreadable"] / "sdpa.npz").mkdir()   # unreadable as a file even for root
    (dirs["bad_manifest"] / "manifest.json").write_text("{ truncated")
    dirs["empty"] = root / "empty"
    dirs["empty"].mkdir()
    return dirs


# --- plug-in targets and adapters ------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["run", "--adapter", "no-such-adapter"], ["no-such-adapter", "numpy-reference", "torch-math"]),
    (["run", "--sdpa", "notatarget", "--framework", "numpy"], ["PKG.MOD:FUNC", "'notatarget'"]),
    (["run", "--sdpa", "a:b:c", "--framework", "numpy"], ["PKG.MOD:FUNC", "'a:b:c'"]),
    (["run", "--adapter", "zoo.sdpa:", "--no-checks"], ["PKG.MOD:CLASS"]),
    (["run", "--sdpa", "nosuchmodule.sub:f", "--framework", "numpy"], ["nosuchmodule.sub", "importable"]),
    (["run", "--sdpa", "zoo.sdpa:not_there", "--framework", "numpy"], ["zoo.sdpa", "not_there", "attribute"]),
    (["run", "--sdpa", "zoo.not_callable:sdpa", "--framework", "numpy"], ["callable", "int"]),
    (["run", "--encoding", "zoo.not_callable:encoding", "--framework", "numpy"], ["callable", "str"]),
    (["run", "--sdpa", "zoo.import_error:sdpa", "--framework", "numpy"], ["zoo.import_error", "ImportError",
                                                                          "libattention_kernel.so"]),
    (["run", "--adapter", "zoo.sdpa:Opaque"], ["Adapter", "Opaque"]),
])
def test_plugin_mistakes(cli, args, words):
    cli(*args, words=words)


# --- names and options -----------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["run", "--sdpa", "zoo.sdpa:good", "--framework", "mxnet"], ["--framework", "mxnet", "torch"]),
    (["run", "--sdpa", "zoo.sdpa:good"], ["--framework", "none"]),
    (["run", "--framework", "numpy"], ["--framework", "--sdpa"]),
    (["run", *FN, "--dtype", "float8"], ["--dtype", "float8", "bfloat16"]),
    (["run", *FN, "--dtype", ","], ["--dtype", "one or more"]),
    (["run", *FN, "--device", "tpu"], ["--device", "tpu", "cuda"]),
    (["run", *FN, "--level", "loose"], ["--level", "loose", "strict"]),
    (["run", *FN, "--executor", "threads"], ["--executor", "threads", "worker"]),
    (["run", *FN, "--timeout", "-1"], ["--timeout", "positive"]),
    (["run", *FN, "--timeout", "soon"], ["--timeout", "soon"]),
    (["run", *FN, "--expectations", "x.json", "--no-expectations"], ["--no-expectations", "combined"]),
    (["run", *FN, "--select", "no/such/case*"], ["--select", "no/such/case*"]),
    (["run", *FN, "--json", "/proc/attnconf/results.json"], ["--json", "/proc/attnconf/results.json"]),
    (["run", *FN, "--json", "."], ["--json", "directory"]),
    (["run", *FN, "--memory-limit", "lots"], ["--memory-limit", "4G", "'lots'"]),
    (["run", *FN, "--memory-limit", "1K"], ["--memory-limit", "at least 64M"]),
    (["run", *FN, "--no-isolation", "--executor", "worker"], ["--no-isolation", "--executor worker"]),
    (["run", *FN, "--no-isolation", "--memory-limit", "4G"], ["--memory-limit", "in-process"]),
    (["no-such-command"], ["no-such-command"]),
    (["expectations"], ["update", "list"]),
])
def test_option_mistakes(cli, args, words):
    cli(*args, words=words)


# --- golden files ----------------------------------------------------------------------------
@pytest.mark.parametrize("which, select, words", [
    ("empty", "sdpa/*", ["manifest.json", "missing"]),
    ("bad_manifest", "sdpa/*", ["manifest.json"]),
    ("missing_file", "mha/*", ["mha.npz", "missing"]),
    ("truncated", "sdpa/*", ["sdpa.npz"]),
    ("sha_mismatch", "sdpa/*", ["sdpa.npz", "sha256"]),
    ("unreadable", "sdpa/*", ["sdpa.npz"]),
])
def test_golden_file_problems_name_the_file(cli, goldens, which, select, words):
    cli("run", *FN, "--golden-dir", str(goldens[which]), "--select", select, words=words)


def test_golden_dir_that_does_not_exist(cli, tmp_path):
    cli("run", *FN, "--golden-dir", str(tmp_path / "nowhere"), words=["--golden-dir", "nowhere"])


# --- expectation and results files -----------------------------------------------------------
EXP_OK = '{"format": "attnconf-expectations", "version": 1, "expectations": [%s]}'


@pytest.mark.parametrize("text, words", [
    (None, ["exp.json", "does not exist"]),
    ("{ not json", ["exp.json", "not valid JSON"]),
    (EXP_OK % '{"adapter": "x", "reason": "r", "stauts": "fail"}', ["stauts", "reason"]),
    (EXP_OK % '{"adapter": "x"}', ["reason", "non-empty"]),
    ('{"format": "attnconf-expectations", "version": 7, "expectations": []}', ["version 7", "upgrade"]),
])
def test_bad_expectation_files(cli, tmp_path, text, words):
    if text is not None:
        (tmp_path / "exp.json").write_text(text)
    cli("run", *FN, "--select", "sdpa/size_l1_s1_e1", "--dtype", "float64", "--json", str(tmp_path / "r.json"),
        "--expectations", str(tmp_path / "exp.json"), words=words)


@pytest.mark.parametrize("text, words", [
    (None, ["res.json", "readable"]),
    ("[1, 2", ["res.json", "JSON"]),
    ('{"schema_version": "9.0", "results": []}', ["9.0", "newer", "upgrade"]),
    ('{"schema_version": "1.0", "results": 3}', ["res.json", "schema"]),
])
def test_bad_results_files(cli, tmp_path, text, words):
    if text is not None:
        (tmp_path / "res.json").write_text(text)
    cli("expectations", "update", "--results", str(tmp_path / "res.json"), "--out", str(tmp_path / "e.json"),
        words=words)


@pytest.mark.parametrize("text, words", [
    ('{"schema_version": "2.0", "results": []}', ["2.0", "newer"]),
    ('{"schema_version": "1.0"}', ["r.json", "schema"]),
])
def test_resume_from_a_bad_results_file(cli, tmp_path, text, words):
    (tmp_path / "r.json").write_text(text)
    cli("run", *FN, "--select", "sdpa/size_l1_s1_e1", "--dtype", "float64", "--json", str(tmp_path / "r.json"),
        "--resume", words=words)


# --- verify-outputs --------------------------------------------------------------------------
@pytest.fixture
def outputs(tmp_path):
    path = tmp_path / "outs.npz"
    np.savez(path, **{"sdpa/size_l1_s1_e1/output": np.zeros((1, 1, 1, 1))})
    return path


@pytest.mark.parametrize("make, extra, words", [
    (lambda p: None, [], ["missing.npz", "exist"]),
    (lambda p: p.write_text("{}"), [], ["missing.npz", "zip"]),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros(2)) or p.with_suffix(".npy").rename(p), [], ["single array"]),
    (lambda p: np.savez(p, **{"sdpa/size_l1_s1_e1/output": np.array([None])}), [], ["numeric"]),
    (lambda p: np.savez(p, **{"not/a/case": np.zeros(2)}), [], ["'not/a/case'", "<case id>/<output name>"]),
    (lambda p: p.mkdir(), [], ["holds none"]),
])
def test_bad_outputs_files(cli, tmp_path, make, extra, words):
    path = tmp_path / "missing.npz"
    make(path)
    cli("verify-outputs", str(path), "--json", str(tmp_path / "r.json"), *extra, words=words)


@pytest.mark.parametrize("extra, words", [
    (["--dtype", "float8"], ["--dtype", "float8"]),
    (["--json", "out.txt"], ["--json", ".json"]),
    (["--json", "/proc/attnconf/r.json"], ["--json", "writable"]),
    (["--html", "report.pdf"], ["--html", ".html"]),
    (["--name", ""], ["--name", "non-empty"]),
    (["--select", "zzz-no-case"], ["zzz-no-case", "golden cases"]),
])
def test_bad_verify_outputs_options(cli, outputs, extra, words):
    cli("verify-outputs", str(outputs), *extra, words=words)


def test_export_to_an_uncreatable_folder(cli):
    cli("golden", "export", "/proc/attnconf-export", words=["/proc/attnconf-export"])


# --- across the process boundary ------------------------------------------------------------
def _subprocess(args, *, extra_path=()):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, extra_path), str(TESTS)]))
    return subprocess.run([sys.executable, "-m", "attnconf", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory):
    """A path entry that makes torch look not installed: its sitecustomize puts None in
    sys.modules['torch'], Python's own import block (find_spec finds nothing, import raises)."""
    d = tmp_path_factory.mktemp("no_torch")
    (d / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    return d


@pytest.fixture(scope="module")
def broken_torch(tmp_path_factory):
    """A path entry whose torch is installed (find_spec finds it) but fails when imported."""
    d = tmp_path_factory.mktemp("broken_torch")
    (d / "torch.py").write_text("raise ImportError('this torch is broken')\n")
    return d


@pytest.mark.parametrize("args, words", [
    (["run", "--sdpa", "zoo.sdpa:good", "--framework", "torch"], ["--framework torch", "installed"]),
    (["run", "--adapter", "torch-math"], ["torch-math", "available", "torch"]),
])
def test_framework_not_installed(no_torch, args, words):
    r = _subprocess(args, extra_path=[no_torch])
    assert_one_line(r.returncode, r.stderr, *words)


def test_a_framework_that_fails_to_import_is_the_adapters_error(broken_torch, tmp_path):
    # Availability is read from package metadata (no framework import in the parent); the import
    # happens in the worker, and its failure is every record's one-line error, not a traceback.
    out = tmp_path / "r.json"
    r = _subprocess(["run", "--adapter", "torch-math", "--select", "sdpa/causal_tl_sq", "--dtype", "float32",
                     "--no-checks", "--json", str(out)], extra_path=[broken_torch])
    assert r.returncode == 1, r.stderr[-2000:]
    records = json.loads(out.read_text())["results"]
    assert records and all(rec["status"] == "error" for rec in records)
    assert all("torch-math should be available, but in its worker it is not" in rec["message"]
               and "this torch is broken" in rec["message"] for rec in records)


def test_subprocess_gives_the_same_single_line():
    r = _subprocess(["run", "--adapter", "no-such-adapter"])
    assert_one_line(r.returncode, r.stderr, "no-such-adapter", "numpy-reference")


def test_debug_shows_the_traceback():
    r = _subprocess(["--debug", "run", "--adapter", "no-such-adapter"])
    assert r.returncode != 0 and "Traceback" in r.stderr and "UsageError" in r.stderr
