"""The non-Python workflow of docs/non-python.md end to end, through the real CLI:

  attnconf golden export DIR  ->  a C program (driven by a stdlib-only script, no attnconf import)
  computes the sdpa outputs from the exported .npy files  ->  attnconf verify-outputs scores them.

A correct build passes every sdpa case; the same program built to scale logits 0.1 % too much
fails them, and the results JSON of both is schema-valid.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attnconf.conformance.results.files import read_results

EXTERNAL = Path(__file__).resolve().parent / "zoo" / "external"
# the C program implements spec/sdpa.md's options, not the kernel options (sdpa/opt_* and most
# sdpa/square_*: window, softcap, sinks, ALiBi, decode offsets, lengths), so those cases are not
# exported to it (the square cases without options are)
SDPA = "sdpa/[!os]*,sdpa/s[!q]*,sdpa/square_scale_*,sdpa/square_mask_*"
pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


def attnconf(*args, cwd):
    return subprocess.run([sys.executable, "-m", "attnconf", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    binary = root / "sdpa_npy"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(EXTERNAL / "sdpa_npy.c"), "-lm"], check=True)
    r = attnconf("golden", "export", str(root / "export"), "--select", SDPA, cwd=root)
    assert r.returncode == 0, r.stderr
    return root, binary


def compute_elsewhere(root, binary, out_name, *extra):
    # -I: isolated mode, so neither the checkout nor site-packages' attnconf is importable
    r = subprocess.run([sys.executable, "-I", str(EXTERNAL / "drive.py"), str(root / "export"),
                        str(root / out_name), str(binary), *extra], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return root / out_name


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_c_implementation_passes_every_sdpa_case(exported, dtype):
    root, binary = exported
    outputs = compute_elsewhere(root, binary, f"good-{dtype}", "--dtype", dtype)
    js = root / f"good-{dtype}.json"
    r = attnconf("verify-outputs", str(outputs), "--name", "c-sdpa", "--select", SDPA, "--json", str(js), cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = read_results(js)                                   # schema-valid
    statuses = {rec["status"] for rec in doc["results"]}
    assert statuses == {"pass"}, [rec["message"] for rec in doc["results"] if rec["status"] != "pass"][:3]
    assert {rec["dtype"] for rec in doc["results"]} == {dtype}
    assert len(doc["results"]) == len(json.loads((root / "export" / "index.json").read_text())["cases"])
    assert doc["adapters"][0]["name"] == "c-sdpa"


def test_deliberately_wrong_c_implementation_fails(exported):
    root, binary = exported
    outputs = compute_elsewhere(root, binary, "bad", "--bug", "scale")
    js = root / "bad.json"
    r = attnconf("verify-outputs", str(outputs), "--select", SDPA, "--json", str(js), cwd=root)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = read_results(js)
    failed = [rec for rec in doc["results"] if rec["status"] == "fail"]
    # a 1e-3 relative scale error shows wherever the softmax is not flat (most cases)
    assert len(failed) >= len(doc["results"]) // 2
    assert all("ulp" in rec["message"] for rec in failed)
    assert "FAIL" in r.stdout and "attnconf verify-outputs" in failed[0]["repro"]


def test_npz_layout_and_html_report(exported):
    import numpy as np

    root, binary = exported
    folder = compute_elsewhere(root, binary, "npz-src")
    arrays = {p.relative_to(folder).with_suffix("").as_posix(): np.load(p, allow_pickle=False) for p in folder.rglob("*.npy")}
    np.savez(root / "outputs.npz", **arrays)
    r = attnconf("verify-outputs", str(root / "outputs.npz"), "--select", SDPA,
                 "--json", str(root / "npz.json"), "--html", str(root / "npz.html"), cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "npz.html").stat().st_size > 1000
