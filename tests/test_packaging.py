"""Packaging: everything imports under `attnconf`, data files ship, a checkout works as installed."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out), str(ROOT)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip()[-300:]}")
    (path,) = out.glob("attnconf-*.whl")
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def test_wheel_puts_everything_under_attnconf(wheel):
    top = {name.split("/")[0] for name in wheel}
    assert {t for t in top if not t.endswith(".dist-info")} == {"attnconf"}


@pytest.mark.parametrize("member", [
    "attnconf/spec/index.json", "attnconf/spec/sdpa.md", "attnconf/spec/results.schema.json",
    "attnconf/reference/golden/manifest.json", "attnconf/reference/golden/sdpa.npz",
    "attnconf/conformance/report/templates/report.html.j2",
    "attnconf/conformance/expectations/jax.json", "attnconf/conformance/bench/run.py",
    "attnconf/adapters/pytorch.py", "attnconf/commands/run.py",
])
def test_wheel_ships_code_and_data(wheel, member):
    assert member in wheel


def test_checkout_maps_its_folders_without_an_install():
    # -S: no site-packages, so no editable-install finder; only numpy's folder is added by hand.
    numpy_parent = str(Path(np.__file__).resolve().parents[1])
    code = (f"import sys; sys.path.append({numpy_parent!r}); import attnconf.conformance.tolerance, "
            "attnconf.reference.sdpa, attnconf.spec; print(attnconf.spec.__file__)")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == ROOT / "spec"
