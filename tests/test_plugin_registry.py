"""The pytest plugin collects from the operation registry: a registered operation with no module
of its own (a plug-in's) is collected by conformance/test_agreement.py, the bundled ones keep their
modules' test ids, and pytest judges a case as `attnconf run` does (one check loop)."""
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from attnconf import operations
from attnconf.conformance import plugin
from attnconf.errors import UsageError

FIXTURE = Path(__file__).parent / "fixtures" / "toy_operation"
TIMING = {"duration_s", "judge_s"}


def test_the_bundled_modules_keep_their_operations_and_the_agreement_module_takes_the_rest():
    assert plugin.named_operations() == {"sdpa": "test_sdpa.py", "sdpa_vjp": "test_gradients.py",
                                         "multi_head_attention": "test_mha.py",
                                         "sinusoidal_encoding": "test_encoding.py"}
    rest = plugin.module_operations(None)
    assert rest == tuple(n for n in operations.names() if n not in plugin.named_operations()), rest
    assert plugin.module_operations(types.SimpleNamespace(OPERATION="sdpa")) == ("sdpa",)


def test_a_module_naming_an_unregistered_operation_is_a_usage_error():
    with pytest.raises(UsageError, match=r"operation should be one of .*, but got 'no_such_op'"):
        plugin.module_operations(types.SimpleNamespace(OPERATION="no_such_op"))


def _pytest(cwd, env, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "-p",
                           "no:cacheprovider", "-k", "agreement", "-q", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bundled_ids_stay_in_their_modules(tmp_path):
    proc = _pytest(tmp_path, dict(os.environ), "--collect-only", "--attnconf-adapter", "numpy-reference",
                   "--attnconf-select", "enc/vaswani_interleaved_d16", "--attnconf-dtype", "float64")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_encoding.py::test_agreement[numpy-reference-float64-enc/vaswani_interleaved_d16]" in proc.stdout
    assert "test_agreement.py" not in proc.stdout, proc.stdout


def _records(path):
    out = {}
    for r in json.loads(Path(path).read_text(encoding="utf-8"))["results"]:
        metrics = {k: v for k, v in r["metrics"].items() if k not in TIMING}
        out[(r["adapter"], r["case"], r["dtype"])] = {**r, "metrics": metrics, "duration_s": None}
    return out


@pytest.mark.slow
def test_a_registered_operation_is_collected_and_judged_as_attnconf_run_does(tmp_path):
    dist = tmp_path / "site" / "toyop-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyop\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[attnconf.operations]\ntoy_axpy = toy_pkg.op:OPERATION\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURE), str(tmp_path / "site")])}
    adapters = ["toy_pkg.mod:ToyAdapter", "toy_pkg.mod:WrongToyAdapter"]
    gen = subprocess.run([sys.executable, "-m", "attnconf", "golden", "generate", "--golden-dir", "golden"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    proc = _pytest(tmp_path, env, *[a for x in adapters for a in ("--attnconf-adapter", x)],
                   "--attnconf-golden-dir", "golden", "--attnconf-dtype", "float64,float32",
                   "--attnconf-json", "pytest.json")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED test_agreement.py::test_agreement[toy-wrong-float32-toy/n1_alpha_neg]" in proc.stdout, proc.stdout
    assert "6 failed, 6 passed" in proc.stdout, proc.stdout[-1500:]
    run = subprocess.run([sys.executable, "-m", "attnconf", "run", *[a for x in adapters for a in ("--adapter", x)],
                          "--golden-dir", "golden", "--dtype", "float64,float32", "--no-checks",
                          "--json", "run.json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    by_pytest, by_run = _records(tmp_path / "pytest.json"), _records(tmp_path / "run.json")
    toy = {k: v for k, v in by_run.items() if k[1].startswith("toy/")}
    assert len(toy) == 12 and {k: by_pytest.get(k) for k in toy} == toy, (
        "pytest's toy records should be attnconf run's, but they differ")
