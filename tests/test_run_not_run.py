"""Nothing is left out silently, and usage answers come before any framework import: the run lists
every bundled adapter it did not run (reason + command) in its summary and results file;
availability, `attnconf adapters` and usage errors use package metadata only; provenance names
every library an implementation runs on; adapters sharing a worker run in one thread.

Must not test the adapters' numerics (tests/test_adapters_* do).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from attnconf.adapters import registry
from attnconf.adapters.base import module_found
from attnconf.conformance.execution import runner

FRAMEWORKS = ("torch", "jax", "tensorflow", "keras", "transformers", "onnxruntime", "keras_hub")


def _python(code: str) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started


IMPORTED = f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"


def test_default_run_leaves_out_only_what_not_run_names_with_reason_and_command():
    specs = registry.resolve()
    ran = {s.target for s in specs}
    rows = {r["adapter"]: r for r in registry.not_run(specs)}
    assert set(rows) == set(registry.BUNDLED) - ran       # every bundled adapter: run or listed
    for name in registry.OPT_IN:
        if name in rows and registry._bundled_class(name)().quick_status()[0]:
            assert rows[name]["reason"].startswith("opt-in") and rows[name]["command"] == f"attnconf run --adapter {name}"
    for row in rows.values():
        assert row["reason"] and row["command"].startswith(("attnconf run", "python3 -m pip", "tox -e"))
    if "torch-efficient" in rows:  # GPU-only on a CPU machine: says so, and how to run it on a GPU
        assert "CUDA" in rows["torch-efficient"]["reason"]
        assert rows["torch-efficient"]["command"].endswith("--device cuda")


def test_named_adapters_list_the_rest_as_not_named():
    specs = registry.resolve(["numpy-reference"])
    rows = registry.not_run(specs, default_run=False)
    assert "numpy-reference" not in {r["adapter"] for r in rows}
    assert {"not named with --adapter"} <= {r["reason"] for r in rows}


def test_a_missing_library_is_not_installed_with_the_install_command():
    # sys.modules[name] = None is Python's own import block: find_spec then finds nothing.
    code = ("import sys; sys.modules['transformers'] = None; sys.modules['keras_hub'] = None\n"
            "from attnconf.adapters import registry\n"
            "rows = {r['adapter']: r for r in registry.not_run(registry.resolve())}\n"
            "print(rows['hf-rope']['reason']); print(rows['hf-rope']['command'])\n"
            "print(rows['keras-hub-sine']['command']); print(rows['keras-hub-rope-jax']['command'])\n")
    rc, out, err, _ = _python(code)
    assert rc == 0, err[-2000:]
    reason, command, hub, hub_jax = out.strip().splitlines()[-4:]
    assert reason == "not installed: transformers is not installed"
    assert command == 'python3 -m pip install -c constraints.txt ".[hf]" && attnconf run --adapter hf-rope'
    assert hub == "tox -e keras-hub" and hub_jax == "tox -e keras-hub-jax"


def test_module_found_does_not_import():
    rc, out, err, _ = _python("import sys\nfrom attnconf.adapters.base import module_found\n"
                              "assert module_found('numpy') and not module_found('no_such_module_xyz')\n"
                              "module_found('torch'); module_found('tensorflow'); module_found('jax')\n" + IMPORTED)
    assert rc == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == "[]"
    assert not module_found("no_such_module_xyz")


@pytest.mark.parametrize("argv,message", [
    (["run", "--select", "no-such-case-anywhere"], "matches none"),
    (["run", "--adapter", "torch-mth"], "did you mean 'torch-math'?"),
    (["run", "--dtype", "flaot32"], "did you mean 'float32'?"),
    (["run", "--adapter", "torch-efficient"], "needs a CUDA device"),
])
def test_usage_errors_come_before_any_framework_import(argv, message, tmp_path):
    argv = argv + ["--json", str(tmp_path / "r.json")]
    code = ("import sys, contextlib, io\nfrom attnconf.cli import main\nerr = io.StringIO()\n"
            f"with contextlib.redirect_stderr(err):\n    rc = main({argv!r})\n"
            "print(rc); print(err.getvalue().strip())\n" + IMPORTED)
    rc, out, err, seconds = _python(code)
    assert rc == 0, err[-2000:]
    lines = out.strip().splitlines()
    assert lines[0] == "2" and message in lines[1] and "\n" not in lines[1]
    assert lines[-1] == "[]", f"a framework was imported before the usage error: {lines[-1]}"


def test_adapters_listing_imports_no_framework_and_shows_opt_in():
    code = ("import sys, contextlib, io\nfrom attnconf.cli import main\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n    main(['adapters'])\n"
            "sys.stderr.write(out.getvalue())\n" + IMPORTED)
    rc, out, err, _ = _python(code)
    assert rc == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == "[]"
    table = {line.split()[0]: line for line in err.splitlines()[1:] if line.strip()}
    assert "default run" in err.splitlines()[0]
    for name in registry.OPT_IN:
        assert "opt-in" in table[name]


def test_summary_lists_what_was_not_run():
    doc = {"adapters": [{"name": "numpy-reference"}], "results": [], "not_run": [
        {"adapter": "torch-flex", "reason": "opt-in: slow", "command": "attnconf run --adapter torch-flex"},
        {"adapter": "hf-rope", "reason": "not installed: transformers is not installed",
         "command": 'python3 -m pip install -c constraints.txt ".[hf]" && attnconf run --adapter hf-rope'}]}
    text = runner.summary(doc, 1.0)
    assert "not run (2 bundled adapters)" in text
    assert "torch-flex: opt-in: slow; run it: attnconf run --adapter torch-flex" in text
    assert 'hf-rope: not installed: transformers is not installed; run it: python3 -m pip' in text


def test_a_run_writes_not_run_and_the_libraries_of_its_adapters(tmp_path):
    if not (module_found("onnx") and module_found("onnxruntime")):
        pytest.skip("onnx/onnxruntime not installed")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "attnconf", "run", "--adapter", "onnx-attention", "--select",
                           "sdpa/causal_tl_sq", "--dtype", "float32", "--no-checks", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert {"onnx", "onnxruntime"} <= set(doc["environment"]["frameworks"])
    assert doc["adapters"][0]["libraries"].keys() == {"onnx", "onnxruntime"}
    left = {r["adapter"] for r in doc["not_run"]}
    assert left == set(registry.BUNDLED) - {"onnx-attention"}
    assert "other bundled adapters were not named" in proc.stdout


def test_adapters_sharing_a_worker_run_in_one_thread():
    names = ["torch-math", "numpy-reference", "torch-flash", "torch-sinusoidal", "onnx-attention", "hf-rope"]
    work = [(registry.AdapterSpec("bundled", n, registry._bundled_class(n).framework), registry._bundled_class(n)())
            for n in names]
    seen: dict[str, set] = {}
    import threading

    def one(spec, adapter, ex):
        seen.setdefault(spec.framework + ("+hf" if spec.target.startswith("hf-") else ""), set()).add(
            threading.get_ident())

    class NoExecutor:
        def close(self):
            pass

    config = runner.RunConfig(specs=[s for s, _ in work], jobs=2)
    runner._run_parallel(config, work, one, NoExecutor(), NoExecutor)
    assert all(len(threads) == 1 for threads in seen.values()), seen
    assert set(seen) == {"torch", "numpy", "onnxruntime", "torch+hf"}


def test_run_help_says_what_the_default_set_is(capsys):
    from attnconf.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    import re

    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))   # argparse wraps at hyphens
    assert "Without --adapter: every bundled adapter installed here" in text
    assert all(name in text for name in registry.OPT_IN)


def test_bundled_adapters_of_one_framework_share_a_worker_and_a_crash_costs_one_call():
    from attnconf.conformance.execution.isolation import WorkerExecutor

    ex = WorkerExecutor()
    try:
        spec = lambda name: registry.AdapterSpec("bundled", name, registry._bundled_class(name).framework)
        _, math_worker = ex._worker_of(spec("torch-math"))
        _, flash_worker = ex._worker_of(spec("torch-flash"))
        _, hf_worker = ex._worker_of(spec("hf-rope"))
        assert math_worker is flash_worker          # torch imported once for both rows
        assert hf_worker is not math_worker         # HF rows: a worker of their own
        crashed = math_worker.call("os:abort", (), timeout=60)
        assert crashed.status == "crash" and "SIGABRT" in crashed.message
        after = flash_worker.call("math:sqrt", (4.0,), timeout=60)   # the next call: a fresh worker
        assert after.status == "ok" and after.outputs == 2.0 and flash_worker.starts == 2
    finally:
        ex.close()
