"""Calibration as a gate (issue 15): a short `attnconf calibrate` — every case family, a few seeds,
every importable bundled adapter, the whole known-bad zoo — must give zero false failures and
catch every known-bad implementation. The full figure (200 seeds) is in docs/calibration.md;
this keeps a change that breaks it from landing. About a minute on a 2-core machine."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attnconf.adapters import registry
from attnconf.conformance import calibration, known_bad

# Options cycle with the seed in steps of 4 (calibration's families), so 8 seeds meet each
# family's shapes twice and most option combinations once.
SEEDS = 8


@pytest.mark.slow
def test_short_calibration_has_no_false_failure_and_catches_every_known_bad(tmp_path):
    out = tmp_path / "calibration.json"
    done = subprocess.run([sys.executable, "-m", "attnconf", "calibrate", "--seeds", str(SEEDS), "--first-catch",
                           "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    text = done.stdout
    assert out.is_file(), f"calibrate should write {out}, but it exited {done.returncode}: {done.stderr[-1500:]}"
    doc = json.loads(out.read_text())
    assert doc["families"] == list(calibration.family_names()), f"every family should be judged, but got {doc['families']}"
    covered = doc["bundled_judged"] + [r["adapter"] for r in doc["bundled_not_judged"]]
    assert sorted(covered) == sorted(n for n in registry.BUNDLED if n != "numpy-reference"), (
        f"every bundled adapter should be judged or named with its reason, but got {covered}")
    assert all(r["reason"] for r in doc["bundled_not_judged"]), doc["bundled_not_judged"]
    failing = [f"{r['adapter']} {r['family']}: {r['failed']}/{r['judged']} {r['examples'][:1]}"
               for r in doc["false_failures"] if r["failed"]]
    assert doc["false_failure_total"] == 0, (f"false failures should be 0, but got {doc['false_failure_total']}:\n"
                                             + "\n".join(failing))
    names = sorted(cls.name for cls in known_bad.all_known_bad())
    assert sorted(z["name"] for z in doc["zoo"]) == names, "calibration should run the whole known-bad zoo"
    assert doc["missed"] == [], f"every known-bad implementation should be caught, but got missed {doc['missed']}"
    assert doc["zoo_control_failures"] == [], f"the zoo's control should pass, but got {doc['zoo_control_failures']}"
    assert done.returncode == 0 and "targets met" in text, f"calibrate should exit 0, but got {done.returncode}:\n{text[-2000:]}"
    assert "correct implementations judged: numpy-reference" in text, text[:2000]
