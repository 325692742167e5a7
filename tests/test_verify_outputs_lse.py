"""verify-outputs scores a log-sum-exp and merged states computed outside Python (docs/non-python.md):
`attnconf golden export` -> the C program of tests/zoo/external (its --lse and --merge modes, driven
by the stdlib-only drive.py) -> `attnconf verify-outputs`. A correct build passes the sdpa_lse cases
it implements and every merge case; a base-2 LSE and a merge that turns all-empty rows into NaN fail.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attnconf.conformance.results.files import read_results

EXTERNAL = Path(__file__).resolve().parent / "zoo" / "external"
# the C program implements masks, causal and scale, not the kernel options (sinks, softcap, ALiBi,
# windows, offsets, lengths): the sdpa_lse cases without them, and every merge case
SELECT = ("sdpa_lse/basic*,sdpa_lse/scale*,sdpa_lse/gqa*,sdpa_lse/logits*,sdpa_lse/fully*,"
          "sdpa_lse/float_mask*,merge/*")
OPS = "sdpa_lse,merge_attention_states"
pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


def attnconf(*args, cwd):
    return subprocess.run([sys.executable, "-m", "attnconf", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lse-workflow")
    binary = root / "sdpa_npy"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(EXTERNAL / "sdpa_npy.c"), "-lm"], check=True)
    r = attnconf("golden", "export", str(root / "export"), "--select", SELECT, cwd=root)
    assert r.returncode == 0, r.stderr
    return root, binary


def verify(root, binary, name, *extra):
    out = root / name
    r = subprocess.run([sys.executable, "-I", str(EXTERNAL / "drive.py"), str(root / "export"), str(out),
                        str(binary), "--ops", OPS, *extra], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    js = root / f"{name}.json"
    r = attnconf("verify-outputs", str(out), "--name", "c-lse", "--select", SELECT, "--json", str(js), cwd=root)
    return r, read_results(js)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_lse_and_merge_pass(exported, dtype):
    r, doc = verify(*exported, f"good-{dtype}", "--dtype", dtype)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {rec["status"] for rec in doc["results"]} == {"pass"}
    ops = {rec["operation"] for rec in doc["results"]}
    assert ops == {"sdpa_lse", "merge_attention_states"}
    assert len(doc["results"]) == 16          # 6 sdpa_lse + 10 merge cases, one dtype
    assert all("lse" in rec["metrics"]["outputs"] for rec in doc["results"])


def test_base2_lse_fails(exported):
    r, doc = verify(*exported, "base2", "--bug", "lse-base2")
    assert r.returncode == 1
    failed = {rec["case"] for rec in doc["results"] if rec["status"] == "fail"}
    assert {c for c in failed if c.startswith("sdpa_lse/")} == {
        rec["case"] for rec in doc["results"] if rec["case"].startswith("sdpa_lse/")}
    assert all("lse" in rec["message"] for rec in doc["results"] if rec["case"] in failed)


def test_merge_with_nan_for_empty_rows_fails(exported):
    root, binary = exported
    out = root / "nan-empty"
    subprocess.run([sys.executable, "-I", str(EXTERNAL / "drive.py"), str(root / "export"), str(out), str(binary),
                    "--ops", "merge_attention_states", "--bug", "nan-empty"], check=True, timeout=300)
    js = root / "nan-empty.json"
    r = attnconf("verify-outputs", str(out), "--select", "merge/*", "--json", str(js), cwd=root)
    assert r.returncode == 1
    failed = [rec["case"] for rec in read_results(js)["results"] if rec["status"] == "fail"]
    assert failed == ["merge/all_empty_rows"]
