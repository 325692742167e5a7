"""Plug-in path 3: the `attnconf.adapters` entry point group.

The example package (tests/examples/entrypoint_pkg) is really installed — built by pip into a
throwaway target folder, never into the shared environment — and found by importlib.metadata
through its real dist-info. A broken plug-in is a real dist-info whose module raises at import.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attnconf.adapters import registry
from attnconf.conformance.judging.engine import compute_outputs
from attnconf.errors import UsageError
from attnconf.reference.golden import load_cases

PKG = Path(__file__).parent / "examples" / "entrypoint_pkg"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Target folder holding the example package installed by pip (no index, no build isolation)."""
    root = tmp_path_factory.mktemp("ep")
    source, target = root / "src", root / "site"
    shutil.copytree(PKG, source)  # pip's build writes egg-info/build folders next to the sources
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--no-build-isolation", "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"pip could not build the example package here: {proc.stderr.strip()[-300:]}")
    return target


@pytest.fixture
def on_path(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    return installed


def _write_broken_dist(folder: Path):
    """A real installed-distribution layout whose entry point module raises at import."""
    dist = folder / "attnconf_broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: attnconf-broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[attnconf.adapters]\nbroken-plugin = attnconf_broken_plugin:Adapter\n")
    (folder / "attnconf_broken_plugin.py").write_text("raise ImportError('needs libfoo.so (on purpose)')\n")


def test_installed_entry_point_is_discovered_and_runs(on_path):
    rows = {r["name"]: r for r in registry.discover()}
    row = rows["example-plugin"]
    assert row["available"] and row["source"] == "entry point" and row["framework"] == "numpy"
    specs = registry.resolve(["example-plugin"])
    assert specs[0].kind == "class" and specs[0].target == "attnconf_example_plugin:ExamplePluginAdapter"
    adapter = registry.instantiate(specs[0].to_json())  # as a worker would, from JSON
    case = next(c for c in load_cases("enc/*") if c.options["layout"] == "interleaved")
    out = compute_outputs(adapter, case, "float64")["output"]
    assert abs(out - case.expected["output"]).max() < 1e-15


def test_broken_entry_point_is_listed_unavailable_with_the_reason(tmp_path, monkeypatch):
    _write_broken_dist(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = {r["name"]: r for r in registry.discover()}
    row = rows["broken-plugin"]
    assert row["available"] is False
    assert "ImportError" in row["reason"] and "libfoo" in row["reason"] and "\n" not in row["reason"]
    assert rows["numpy-reference"]["available"]  # one broken plug-in does not break the listing
    with pytest.raises(Exception, match="libfoo"):
        registry.resolve(["broken-plugin"])


def test_unknown_adapter_name_lists_the_known_ones(on_path):
    with pytest.raises(UsageError) as info:
        registry.resolve(["torch-maths"])
    message = str(info.value)
    assert "'torch-maths'" in message and "torch-math" in message and "example-plugin" in message


@pytest.mark.slow
def test_cli_adapters_json_lists_the_entry_point(installed, tmp_path):
    _write_broken_dist(tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed), str(tmp_path)]))
    proc = subprocess.run([sys.executable, "-m", "attnconf", "adapters", "--json"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    for row in rows.values():
        assert {"name", "framework", "available", "version", "reason"} <= row.keys()
    assert rows["example-plugin"]["available"] is True
    assert rows["broken-plugin"]["available"] is False
    from attnconf.commands.adapters import format_table  # the table prints these same rows

    table = format_table(list(rows.values()))
    assert "example-plugin" in table and "no: entry point broken-plugin" in table
