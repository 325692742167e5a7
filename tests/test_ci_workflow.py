"""The shipped CI workflow (.github/workflows/conformance.yml) runs tox.ini's framework envs as a
parallel matrix and merges their results with a valid `attnconf report` command.

Must not run tox or the workflow (CI does); checks the files against each other.
"""
from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import yaml

from attnconf.cli import build_parser
from attnconf.commands import report

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"


def _tox() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini", encoding="utf-8")
    return ini


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _env_list() -> list[str]:
    return [e.strip() for e in _tox()["tox"]["env_list"].replace("\n", ",").split(",") if e.strip()]


def test_the_workflow_is_valid_yaml_with_a_trigger_and_two_jobs():
    doc = _workflow()
    triggers = doc.get("on", doc.get(True))       # YAML 1.1 reads a bare `on` as true
    assert triggers and {"push", "pull_request"} <= set(triggers)
    assert set(doc["jobs"]) == {"framework", "report"}
    for job in doc["jobs"].values():
        assert job["runs-on"] and job["steps"]


def test_the_matrix_is_tox_env_list_but_the_report_env():
    envs = _env_list()
    assert "report" in envs
    matrix = _workflow()["jobs"]["framework"]["strategy"]["matrix"]["env"]
    assert matrix == [e for e in envs if e != "report"]
    ini = _tox()
    assert all(ini.has_section(f"testenv:{e}") for e in matrix)
    assert _workflow()["jobs"]["framework"]["strategy"]["fail-fast"] is False


def test_each_framework_job_runs_its_env_and_keeps_the_results_file_tox_writes():
    steps = _workflow()["jobs"]["framework"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert "tox -e ${{ matrix.env }}" in runs
    results = _tox()["testenv"]["results"]
    assert results.replace("{tox_root}{/}", "").replace("{/}", "/") == "reports/{env_name}.json"
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "reports/${{ matrix.env }}.json" and upload["if"] == "always()"


def test_the_merge_job_runs_a_valid_attnconf_report_on_every_results_file():
    job = _workflow()["jobs"]["report"]
    assert job["needs"] == "framework" and job["if"] == "always()"
    download = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact"))
    command = next(s["run"] for s in job["steps"] if "attnconf report" in s.get("run", ""))
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "attnconf"]
    args = build_parser().parse_args(argv[3:])
    assert args.func is report.run
    assert args.results == [download["with"]["path"]] and download["with"]["merge-multiple"] is True
    assert args.html.endswith(".html")
    kept = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert kept and kept[-1]["with"]["path"] == args.html


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    documented = [ln.strip() for ln in readme.splitlines() if "-m pytest" in ln and ln.startswith("python3 -m pip")]
    run = [ln.strip() for ln in ci.splitlines() if "-m pytest" in ln and not ln.lstrip().startswith("#")]
    assert len(documented) == 1 and run
    assert run[-1] == documented[0].replace("python3 -m", "python -m")
    assert "-n auto" in run[-1]     # the suite runs in parallel (pytest-xdist, a dev dependency)
