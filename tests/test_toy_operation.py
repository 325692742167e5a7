"""Acceptance test of the operation registry (issues 11 and 19): operations defined OUTSIDE attnconf.

tests/fixtures/toy_operation/toy_pkg declares `toy_axpy` (output = alpha·x + y): its own clause
ids, reference, natural scale, cases, random family, tolerance rows, adapters (a correct one and
one whose alpha is 1.25x off) and one `Operation`. It also declares `toy_gather`, an operation of
a new kind (toy_pkg/gather.py): two outputs, one of them integer-valued (judged bit-exactly), and
an integer input; it runs through run, golden, verify-outputs, calibration, pytest and the report
with no edit of attnconf. It is registered only through a real entry
point: a minimal `toyop-0.dist-info` (METADATA + entry_points.txt, group attnconf.operations) in a
temporary directory on the subprocesses' PYTHONPATH, found by importlib.metadata. No pip, no
edit to attnconf; this process never registers it (the registry stays the bundled four here).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnconf import operations
from attnconf.conformance.report import embedded_records

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent / "fixtures" / "toy_operation"
ENTRY_POINTS = "[attnconf.operations]\ntoy_axpy = toy_pkg.op:OPERATION\ntoy_gather = toy_pkg.gather:OPERATION\n"
TOYS = 2      # golden archives the toys add: toy.npz, toy_gather.npz


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(tmp dir, env): the dist-info on PYTHONPATH, goldens of every registered operation in tmp/golden."""
    root = tmp_path_factory.mktemp("toyop")
    dist = root / "site" / "toyop-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyop\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURE), str(root / "site")])}
    proc = _attnconf(root, env, "golden", "generate", "--golden-dir", "golden")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = len(operations.names()) + TOYS      # one archive per bundled operation, and the toys'
    assert f"in {files} files" in proc.stdout, f"the toy's archive should join the bundled ones, but got {proc.stdout}"
    return root, env


def _attnconf(cwd, env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "attnconf", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _records(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))["results"]


def test_the_entry_point_registers_the_toy_and_this_process_stays_bundled(toy):
    root, env = toy
    proc = subprocess.run([sys.executable, "-c", "from attnconf import operations; print(operations.names())"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert "'toy_axpy'" in proc.stdout, proc.stdout + proc.stderr
    assert "toy_axpy" not in operations.names()


def test_golden_files_hold_the_toy_cases_and_verify(toy):
    root, env = toy
    manifest = json.loads((root / "golden" / "manifest.json").read_text())
    assert manifest["files"]["toy.npz"]["cases"] == 3, manifest["files"]
    toy_cases = [c for c in manifest["cases"] if c["operation"] == "toy_axpy"]
    assert [c["clauses"] for c in toy_cases] == [["toy.axpy", "toy.dtype"]] * 3
    proc = _attnconf(root, env, "golden", "verify", "--golden-dir", "golden", "--select", "toy/")
    files = len(operations.names()) + TOYS
    assert proc.returncode == 0 and f"ok: 3 cases, {files} files" in proc.stdout, proc.stdout + proc.stderr
    proc = _attnconf(root, env, "golden", "list", "--golden-dir", "golden", "--select", "toy/")
    assert proc.stdout.splitlines()[0] == "toy/n8_alpha2\ttoy\ttoy.axpy,toy.dtype", proc.stdout + proc.stderr
    proc = _attnconf(root, env, "golden", "export", "exported", "--golden-dir", "golden", "--select", "toy/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = json.loads((root / "exported" / "index.json").read_text())
    assert [c["id"] for c in index["cases"]] == ["toy/n8_alpha2", "toy/n33_alpha_third", "toy/n1_alpha_neg"]


def test_attnconf_run_passes_the_correct_toy_and_fails_the_wrong_one(toy):
    root, env = toy
    proc = _attnconf(root, env, "run", "--adapter", "toy_pkg.mod:ToyAdapter", "--adapter",
                     "toy_pkg.mod:WrongToyAdapter", "--golden-dir", "golden", "--json", "run.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    agreement = [r for r in _records(root / "run.json") if r["check"] == "agreement"]
    by_adapter = {}
    for r in agreement:
        by_adapter.setdefault(r["adapter"], []).append(r)
    assert sorted(r["status"] for r in by_adapter["toy-numpy"]) == ["pass"] * 12, by_adapter["toy-numpy"]
    wrong = by_adapter["toy-wrong"]
    assert [r["status"] for r in wrong] == ["fail"] * 12, [(r["case"], r["dtype"], r["status"]) for r in wrong]
    assert all(r["operation"] == "toy_axpy" and r["clauses"] == ["toy.axpy", "toy.dtype"] for r in wrong)
    assert "[TABLE[toy_axpy, float64]]" in next(r for r in wrong if r["dtype"] == "float64")["message"]
    # its own invariant and profile aspect (Operation.invariants / .profile) run beside the bundled ones
    checks = {(r["adapter"], r["case"], r["dtype"]): r["status"] for r in _records(root / "run.json")
              if r["check"] in ("invariant", "profile") and r["operation"] == "toy_axpy"}
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        assert checks[("toy-numpy", "invariant/toy.axpy", dtype)] == "pass", checks
        if dtype in ("float64", "float32"):     # bfloat16's invariant allowance (32 ulp) covers a 25% alpha
            assert checks[("toy-wrong", "invariant/toy.axpy", dtype)] == "fail", checks
        assert checks[("toy-numpy", "invariant/inv.determinism", dtype)] == "pass", checks
    assert checks[("toy-numpy", "profile/toy_alpha", "float64")] == "pass", checks
    assert checks[("toy-wrong", "profile/toy_alpha", "float64")] == "fail", checks


def test_a_toy_golden_without_its_plug_in_is_one_clear_error(toy):
    root, env = toy
    bare = {**env, "PYTHONPATH": str(FIXTURE)}   # the package, but no entry point
    proc = _attnconf(root, bare, "run", "--adapter", "toy_pkg.mod:ToyAdapter", "--golden-dir", "golden",
                     "--json", "bare.json", "--no-checks")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    known = ", ".join(operations.names())   # the bundled ones: no entry point in this process
    assert (f"operation of case toy/n8_alpha2 should be a registered one ({known}), but got 'toy_axpy'"
            in proc.stderr), proc.stderr


def test_verify_outputs_judges_toy_outputs_computed_elsewhere(toy):
    root, env = toy
    keys = {"toy/n8_alpha2": "c000", "toy/n33_alpha_third": "c001", "toy/n1_alpha_neg": "c002"}
    with np.load(root / "golden" / "toy.npz") as golden:   # float32 outputs; the last one 1% off
        outs = {f"{case_id}/output": golden[f"{key}.expected.output"].astype(np.float32) for case_id, key in keys.items()}
    outs["toy/n1_alpha_neg/output"] *= np.float32(1.01)
    np.savez(root / "outs.npz", **outs)
    proc = _attnconf(root, env, "verify-outputs", "outs.npz", "--golden-dir", "golden", "--select", "toy/",
                     "--json", "vo.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status = {r["case"]: r["status"] for r in _records(root / "vo.json")}
    assert status == {"toy/n8_alpha2": "pass", "toy/n33_alpha_third": "pass", "toy/n1_alpha_neg": "fail"}, status


def test_report_renders_toy_records(toy):
    root, env = toy
    if not (root / "run.json").exists():
        _attnconf(root, env, "run", "--adapter", "toy_pkg.mod:ToyAdapter", "--golden-dir", "golden",
                  "--json", "run.json", "--no-checks")
    proc = _attnconf(root, env, "report", "run.json", "--html", "report.html")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (root / "report.html").read_text(encoding="utf-8")
    cases = {r["case"] for r in embedded_records(html)}   # the records travel compressed in the page
    assert "toy/n8_alpha2" in cases and "toy.axpy" in html


def test_calibrate_judges_the_toy_family_and_catches_the_wrong_toy(toy):
    root, env = toy
    proc = _attnconf(root, {**env, "ATTNCONF_GOLDEN_DIR": str(root / "golden")}, "calibrate", "--seeds", "3",
                     "--family", "toy", "--no-bundled", "--zoo", str(FIXTURE / "toy_zoo"), "--json", "cal.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "cal.json").read_text())
    rows = {(r["adapter"], r["family"]): r for r in doc["false_failures"]}
    assert rows[("toy-numpy", "toy")]["judged"] == 12 and rows[("toy-numpy", "toy")]["failed"] == 0, rows
    assert doc["zoo"][0]["caught"] and any("toy/" in hit for hit in doc["zoo"][0]["caught_by"]), doc["zoo"]


def test_the_pytest_plugin_runs_the_toy_cases(toy):
    root, env = toy
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "-p",
                           "no:cacheprovider", "-k", "agreement", "-q", "--attnconf-adapter",
                           "toy_pkg.mod:WrongToyAdapter", "--attnconf-golden-dir", "golden",
                           "--attnconf-dtype", "float64"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert "[toy-wrong-float64-toy/n8_alpha2]" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 1


# --- the new kind: two outputs (one integer-valued), an integer input --------------------------
GATHER = ("toy_gather/n8_m5", "toy_gather/n20_m12_offset7")


def test_golden_files_hold_the_new_kinds_integer_input_and_output(toy):
    root, env = toy
    with np.load(root / "golden" / "toy_gather.npz") as golden:
        keys = sorted(golden.files)
        index = golden["c000.input.index"]
    assert index.dtype.kind in "iu", f"the integer input should stay integer in the archive, but got {index.dtype}"
    assert {"c000.expected.values", "c000.expected.positions"} <= set(keys), keys
    proc = _attnconf(root, env, "golden", "verify", "--golden-dir", "golden", "--select", "toy_gather/")
    assert proc.returncode == 0 and "ok: 2 cases" in proc.stdout, proc.stdout + proc.stderr


def test_run_judges_the_integer_output_bit_exactly(toy):
    root, env = toy
    proc = _attnconf(root, env, "run", "--adapter", "toy_pkg.gather:ToyGatherAdapter", "--adapter",
                     "toy_pkg.gather:WrongToyGatherAdapter", "--golden-dir", "golden", "--json", "gather.json",
                     "--select", "toy_gather/*")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((root / "gather.json").read_text())
    agreement = {(r["adapter"], r["case"], r["dtype"]): r for r in doc["results"] if r["check"] == "agreement"}
    good = [r for (a, _, _), r in agreement.items() if a == "toy-gather"]
    assert len(good) == 8 and {r["status"] for r in good} == {"pass"}, [(r["case"], r["message"]) for r in good]
    # the float output at its dtype, the integer one at the operation's exact (int64) row
    rec = agreement[("toy-gather", GATHER[0], "bfloat16")]
    assert rec["metrics"]["outputs"]["positions"]["tolerance_ulps"] == 0.0
    assert rec["metrics"]["outputs"]["values"]["tolerance_ulps"] > 0.0
    wrong = [r for (a, _, _), r in agreement.items() if a == "toy-gather-wrong"]
    assert len(wrong) == 8 and {r["status"] for r in wrong} == {"fail"}
    assert all(r["message"].startswith("positions: ") for r in wrong), [r["message"] for r in wrong]
    coverage = {(e["adapter"], e["operation"]): e["implemented"] for e in doc["coverage"]}
    assert coverage[("toy-gather", "toy_gather")] and not coverage[("toy-gather", "sdpa")]
    assert not [r for r in doc["results"] if r["adapter"] == "toy-gather" and r["operation"] != "toy_gather"]


def test_the_new_kinds_invariant_runs_at_the_float_dtypes(toy):
    root, env = toy
    proc = _attnconf(root, env, "run", "--adapter", "toy_pkg.gather:ToyGatherAdapter", "--adapter",
                     "toy_pkg.gather:WrongToyGatherAdapter", "--golden-dir", "golden", "--json", "inv.json",
                     "--select", "invariant/*", "--dtype", "float64,float32")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status = {(r["adapter"], r["case"], r["dtype"]): r["status"] for r in _records(root / "inv.json")}
    for dtype in ("float64", "float32"):
        assert status[("toy-gather", "invariant/toy.gather.positions", dtype)] == "pass", status
        assert status[("toy-gather-wrong", "invariant/toy.gather.positions", dtype)] == "fail", status
        assert status[("toy-gather", "invariant/inv.determinism", dtype)] == "pass", status


def test_verify_outputs_takes_a_float_and_an_integer_output(toy):
    root, env = toy
    keys = dict(zip(GATHER, ("c000", "c001")))
    with np.load(root / "golden" / "toy_gather.npz") as golden:
        outs = {}
        for case_id, key in keys.items():
            outs[f"{case_id}/values"] = golden[f"{key}.expected.values"].astype(np.float32)
            outs[f"{case_id}/positions"] = golden[f"{key}.expected.positions"].astype(np.int64)
    outs[f"{GATHER[1]}/positions"][0] += 1          # one integer off by one: not within any tolerance
    np.savez(root / "gather_outs.npz", **outs)
    proc = _attnconf(root, env, "verify-outputs", "gather_outs.npz", "--golden-dir", "golden", "--select",
                     "toy_gather/", "--json", "gvo.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    recs = {r["case"]: r for r in _records(root / "gvo.json")}
    assert recs[GATHER[0]]["status"] == "pass" and recs[GATHER[0]]["dtype"] == "float32", recs[GATHER[0]]
    assert recs[GATHER[1]]["status"] == "fail" and recs[GATHER[1]]["message"].startswith("positions: ")


def test_calibrate_judges_the_new_kind_and_catches_its_wrong_positions(toy):
    root, env = toy
    proc = _attnconf(root, {**env, "ATTNCONF_GOLDEN_DIR": str(root / "golden")}, "calibrate", "--seeds", "2",
                     "--family", "toy-gather", "--no-bundled", "--zoo", str(FIXTURE / "toy_gather_zoo"),
                     "--json", "gcal.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "gcal.json").read_text())
    rows = {(r["adapter"], r["family"]): r for r in doc["false_failures"]}
    assert rows[("toy-gather", "toy-gather")]["judged"] == 8 and rows[("toy-gather", "toy-gather")]["failed"] == 0
    assert doc["zoo"][0]["caught"], doc["zoo"]


def test_the_pytest_plugin_and_the_report_take_the_new_kind(toy):
    root, env = toy
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "-p",
                           "no:cacheprovider", "-k", "agreement", "-q", "--attnconf-adapter",
                           "toy_pkg.gather:WrongToyGatherAdapter", "--attnconf-golden-dir", "golden",
                           "--attnconf-dtype", "float32", "--attnconf-json", "gpytest.json"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert f"[toy-gather-wrong-float32-{GATHER[0]}]" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 1 and "positions: " in proc.stdout, proc.stdout[-3000:]
    if not (root / "gather.json").exists():
        test_run_judges_the_integer_output_bit_exactly(toy)
    proc = _attnconf(root, env, "report", "gather.json", "--html", "gather.html")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (root / "gather.html").read_text(encoding="utf-8")
    assert GATHER[1] in {r["case"] for r in embedded_records(html)} and "toy.gather.positions" in html
