"""Every plug-in mistake is one line that says what to fix: malformed PKG.MOD:FUNC, missing module,
missing attribute, not callable, framework not installed, module raising at import, unknown
framework, unknown adapter name — in the API (UsageError/SetupError) and on the CLI (exit 2).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attnconf.adapters import registry
from attnconf.adapters.function import make_function_adapter
from attnconf.adapters.loading import check_framework
from attnconf.errors import SetupError, UsageError

EXAMPLES = Path(__file__).parent / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.mark.parametrize("target", ["example_numpy_sdpa", "example_numpy_sdpa:", ":sdpa", "a b:c",
                                    "mod:func:extra", "1mod:f", ""])
def test_malformed_target(target):
    with pytest.raises(UsageError, match=r"--sdpa should be PKG\.MOD:FUNC .*but got"):
        make_function_adapter(target, "numpy")


ERRORS = [
    ("no_such_module_attnconf:sdpa", "numpy", UsageError, "module 'no_such_module_attnconf' should be importable"),
    ("example_numpy_sdpa:nope", "numpy", UsageError, "should have an attribute 'nope', but it has none"),
    ("example_numpy_sdpa:NOT_CALLABLE", "numpy", UsageError, "should be callable, but got int"),
    ("example_broken:sdpa", "numpy", SetupError, "importing 'example_broken' raised RuntimeError: "
                                                 "example_broken cannot be imported"),
    ("example_numpy_sdpa:sdpa", "mxnet", UsageError, "--framework should be one of 'numpy', 'torch', 'jax', "
                                                     "'tensorflow', but got 'mxnet'"),
]


@pytest.mark.parametrize("target,framework,exc,message", ERRORS, ids=[e[3][:30] for e in ERRORS])
def test_loading_errors(target, framework, exc, message):
    with pytest.raises(exc) as info:
        make_function_adapter(target, framework)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_framework_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` fail as if jax were absent
    with pytest.raises(SetupError, match="--framework jax should be installed, but importing 'jax' failed"):
        check_framework("jax")
    with pytest.raises(SetupError, match="should be installed"):
        registry.resolve(sdpa="example_numpy_sdpa:sdpa", framework="jax")


def test_function_without_framework_and_class_that_is_not_an_adapter():
    with pytest.raises(UsageError, match="--sdpa example_numpy_sdpa:sdpa needs --framework"):
        registry.resolve(sdpa="example_numpy_sdpa:sdpa")
    with pytest.raises(UsageError, match="should be a subclass of attnconf.adapters.base.Adapter"):
        registry.resolve(adapter_classes=["example_numpy_sdpa:sdpa"])
    with pytest.raises(UsageError, match="--adapter should be PKG.MOD:CLASS"):
        registry.resolve(adapter_classes=["example_adapter"])


def test_unknown_adapter_name_lists_the_known_ones():
    with pytest.raises(UsageError) as info:
        registry.resolve(["jax-xxla"])
    assert "but got 'jax-xxla'" in str(info.value)
    for name in ("numpy-reference", "torch-math", "jax-xla", "keras-tf", "tf-sinusoidal"):
        assert name in str(info.value)


CLI = [
    (["run", "--adapter", "no-such-adapter"], "adapter should be one of numpy-reference"),
    (["run", "--sdpa", "example_broken:sdpa", "--framework", "numpy"], "raised RuntimeError"),
    (["run", "--sdpa", "example_numpy_sdpa:nope", "--framework", "numpy"], "should have an attribute 'nope'"),
    (["run", "--sdpa", "not-a-target", "--framework", "numpy"], "should be PKG.MOD:FUNC"),
    (["run", "--adapter", "example_numpy_sdpa:NOT_CALLABLE"], "should be a subclass"),
]


@pytest.mark.parametrize("argv,message", CLI, ids=[c[1][:25] for c in CLI])
def test_cli_errors_are_one_line_exit_2(argv, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "attnconf", *argv, "--json", str(tmp_path / "r.json")],
                          cwd=EXAMPLES, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnconf: ") and message in lines[0], proc.stderr
