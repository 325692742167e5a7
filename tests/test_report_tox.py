"""tox.ini stays a working conformance matrix: each framework env installs its extra under the
constraints and writes reports/<env>.json with adapters that exist and belong to its framework;
the report env comes after them and reads the folder; `tox -m conformance` names them all.

Static checks only (running tox installs frameworks: minutes); the real runs are described in
the report helper's notes and are what `tox -m conformance` does.
"""
from __future__ import annotations

import configparser
import importlib
import shlex
from pathlib import Path

import pytest

from attnconf.adapters.registry import BUNDLED

ROOT = Path(__file__).resolve().parents[1]
# env -> (the framework of its adapters, its extras)
FRAMEWORK_ENVS = {"reference": ("numpy", ""), "torch": ("torch", "torch"), "jax": ("jax", "jax"),
                  "tensorflow": ("tensorflow", "tensorflow"), "hf": ("torch", "torch, hf"),
                  "keras-hub": ("tensorflow", "tensorflow"), "keras-hub-jax": ("jax", "jax, tensorflow"),
                  "onnx": ("onnxruntime", "onnx")}
GPU_ONLY = ("torch-efficient", "torch-cudnn", "jax-cudnn")


@pytest.fixture(scope="module")
def tox():
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(ROOT / "tox.ini")
    return cp


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.replace(",", "\n").splitlines() if v.strip()]


def _command(tox, env: str) -> list[str]:
    return shlex.split(tox[f"testenv:{env}"]["commands"].replace("\\\n", " "))


def test_conformance_label_runs_every_framework_env_then_the_report(tox):
    labels = {}
    for line in tox["tox"]["labels"].strip().splitlines():
        name, _, envs = line.partition("=")
        labels[name.strip()] = _list(envs)
    assert labels["conformance"] == [*FRAMEWORK_ENVS, "report"]
    assert set(FRAMEWORK_ENVS) <= set(_list(tox["testenv:report"]["depends"]))


def test_every_install_is_constrained(tox):
    cmd = tox["testenv"]["install_command"]
    assert "-c {tox_root}{/}constraints.txt" in cmd and "{packages}" in cmd
    assert "torch==" in (ROOT / "constraints.txt").read_text()


@pytest.mark.parametrize("env", FRAMEWORK_ENVS)
def test_framework_env_writes_its_results_with_its_own_adapters(tox, env):
    framework, extras = FRAMEWORK_ENVS[env]
    section = tox[f"testenv:{env}"]
    if framework != "numpy":
        assert section["extras"].strip() == extras
    cmd = _command(tox, env)
    assert cmd[:2] == ["attnconf", "run"]
    assert cmd[cmd.index("--json") + 1] == "{[testenv]results}"
    assert tox["testenv"]["results"] == "{tox_root}{/}reports{/}{env_name}.json"
    names = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--adapter"]
    assert names
    for name in names:
        assert name in BUNDLED, f"tox env {env} names unknown adapter {name}"
        module, _, cls = BUNDLED[name].partition(":")
        assert getattr(importlib.import_module(module), cls).framework == framework, name


def test_every_cpu_adapter_of_the_default_run_has_a_framework_env(tox):
    from attnconf.adapters.registry import OPT_IN

    named = {a for env in FRAMEWORK_ENVS for i, a in enumerate(_command(tox, env)) if i and _command(tox, env)[i - 1] == "--adapter"}
    missing = set(BUNDLED) - named - set(GPU_ONLY) - set(OPT_IN)
    assert not missing, f"bundled adapters no tox env runs: {sorted(missing)}"


def test_report_env_reads_the_reports_folder(tox):
    cmd = _command(tox, "report")
    assert cmd[:2] == ["attnconf", "report"]
    assert "{tox_root}{/}reports" in cmd
    assert cmd[cmd.index("--html") + 1] == "{tox_root}{/}reports{/}index.html"
