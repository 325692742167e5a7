"""A registered operation's plug-in flag reaches every front end without an edit to attnconf:
`attnconf run --toy`, pytest's `--attnconf-toy`, the function adapter (generic call), the
registry's `functions=` / flag keywords, and the repro command. The toy operation is defined
here, outside the package, and registered for the test only."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from attnconf import operations
from attnconf.errors import Unsupported, UsageError


def _call(adapter, x, options, dtype):
    return adapter.toy_double(x["x"], factor=options.get("factor"))


TOY = operations.Operation(
    name="toy_double", title="toy doubling", inputs=("x",), options=("factor",),
    adapter_method="toy_double", call=_call, plugin_flag="--toy", function_keywords=("factor",),
    function_signature="func(x, *, factor=2.0)")


@pytest.fixture
def toy(monkeypatch):
    operations.operations()                                 # the bundled ones first
    monkeypatch.setitem(operations._REGISTRY, TOY.name, TOY)
    module = types.ModuleType("toy_plugin_module")
    module.double = lambda x: 2.0 * x
    module.scaled = lambda x, *, factor=2.0: factor * x
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_attnconf_run_gets_the_flag_of_a_registered_operation(toy):
    from attnconf.adapters import function
    from attnconf.cli import build_parser

    args = build_parser().parse_args(["run", "--toy", "toy_plugin_module:double", "--framework", "numpy"])
    assert function.parsed_targets(args) == {"toy_double": "toy_plugin_module:double"}
    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "--toy PKG.MOD:FUNC" in help_text and "a bare toy doubling function" in help_text


def test_the_bundled_flags_stay(toy):
    from attnconf.cli import build_parser

    args = build_parser().parse_args(["run", "--sdpa", "a:b", "--encoding", "c:d"])
    assert (args.sdpa, args.encoding, args.toy) == ("a:b", "c:d", None)


def test_a_function_of_a_registered_operation_is_called_generically(toy):
    from attnconf.adapters import registry
    from attnconf.conformance.results import repro

    specs = registry.resolve(toy="toy_plugin_module:double", framework="numpy")
    assert [(s.kind, s.operation) for s in specs] == [("function", "toy_double")]
    assert specs == registry.resolve(functions={"toy_double": "toy_plugin_module:double"}, framework="numpy")
    adapter = registry.instantiate(specs[0])
    assert adapter.capabilities.operations == ("toy_double",)
    x = adapter.from_numpy(np.arange(3.0), "float64")
    np.testing.assert_array_equal(adapter.to_numpy(TOY.call(adapter, {"x": x}, {}, "float64")), [0.0, 2.0, 4.0])
    with pytest.raises(Unsupported, match="does not accept the keyword 'factor'"):
        TOY.call(adapter, {"x": x}, {"factor": 3.0}, "float64")
    assert repro.adapter_args(adapter, specs[0]) == "--toy toy_plugin_module:double --framework numpy"


def test_a_keyword_the_function_accepts_is_passed(toy):
    from attnconf.adapters import registry

    adapter = registry.instantiate(registry.resolve(toy="toy_plugin_module:scaled", framework="numpy")[0])
    x = adapter.from_numpy(np.ones(2), "float64")
    np.testing.assert_array_equal(adapter.to_numpy(TOY.call(adapter, {"x": x}, {"factor": 3.0}, "float64")), [3.0, 3.0])


def test_a_flag_needs_a_framework_and_an_unknown_flag_keyword_is_refused(toy):
    from attnconf.adapters import registry

    with pytest.raises(UsageError, match="--toy toy_plugin_module:double needs --framework"):
        registry.resolve(toy="toy_plugin_module:double")
    flags = ", ".join(op.plugin_flag.lstrip("-") for op in operations.operations() if op.plugin_flag)
    with pytest.raises(UsageError, match=f"should be one of {flags}, but got 'tyo'"):
        registry.resolve(tyo="toy_plugin_module:double", framework="numpy")


def test_pytest_plugin_options_are_generated(toy):
    from attnconf.conformance import plugin

    seen = []

    class Group:
        def addoption(self, name, **kw):
            seen.append((name, kw.get("dest")))

    class Parser:
        def getgroup(self, *a):
            return Group()

    plugin.pytest_addoption(Parser())
    assert ("--attnconf-sdpa", "attnconf_sdpa") in seen and ("--attnconf-encoding", "attnconf_encoding") in seen
    assert ("--attnconf-toy", "attnconf_toy") in seen
