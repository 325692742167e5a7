"""Packaging: everything imports under `attnconf`, data files ship, a checkout works as installed."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources, which other
    # test processes (pytest-xdist workers) importing the checkout must never see half-written.
    source = tmp_path_factory.mktemp("source")
    for name in ("attnconf", "spec", "reference", "adapters", "conformance"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out), str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip()[-300:]}")
    (path,) = out.glob("attnconf-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel(wheel_file):
    with zipfile.ZipFile(wheel_file) as zf:
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
    "attnconf/conformance/known_bad/__init__.py", "attnconf/conformance/known_bad/_base.py",
])
def test_wheel_ships_code_and_data(wheel, member):
    assert member in wheel


def test_checkout_maps_its_folders_without_an_install():
    # -S: no site-packages, so no editable-install finder; only numpy's folder is added by hand.
    numpy_parent = str(Path(np.__file__).resolve().parents[1])
    code = (f"import sys; sys.path.append({numpy_parent!r}); import attnconf.conformance.judging.tolerance, "
            "attnconf.reference.sdpa, attnconf.spec; print(attnconf.spec.__file__)")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == ROOT / "spec"


@pytest.mark.slow
def test_installed_wheel_calibrates_outside_the_checkout(wheel_file, tmp_path):
    """The wheel's own copy, imported from a directory that is not the checkout, finds its zoo:
    `attnconf calibrate` once exited 2 there (its default zoo was the checkout's tests/)."""
    site, cwd = tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                           "--target", str(site), str(wheel_file)], capture_output=True, text=True)
    assert done.returncode == 0, f"pip install --target should succeed, but got: {done.stderr[-500:]}"
    # PYTHONPATH comes before site-packages, so the wheel's copy wins over this venv's editable one;
    # numpy and the rest still come from this venv.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import attnconf.conformance.known_bad as z, attnconf.cli as c; "
                            "print(z.__file__); print(c.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr[-500:]
    for line in where.stdout.split():
        assert Path(line).is_relative_to(site), f"the wheel's copy should be imported, but got {line}"
    run = subprocess.run([sys.executable, "-m", "attnconf", "calibrate", "--seeds", "2", "--no-bundled",
                          "--first-catch"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (f"calibrate from {cwd} should exit 0, but got {run.returncode}: "
                                 f"{(run.stdout + run.stderr)[-1500:]}")
    assert "targets met" in run.stdout and "known-bad implementations caught" in run.stdout, run.stdout[-1500:]
