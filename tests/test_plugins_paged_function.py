"""The `--sdpa-paged` bare-function path end to end: tests/examples/example_paged.py resolved from
its `PKG.MOD:ATTR` string, round-tripped through the JSON spec, run on the paged golden cases; the
keywords it lacks (window, softcap, chunk, sinks, alibi_slopes) make exactly the cases that set
them unsupported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnconf.adapters import registry
from attnconf.conformance.judging.engine import compute_outputs, judge
from attnconf.errors import Unsupported
from attnconf.reference.golden import load_cases

EXAMPLES = Path(__file__).parent / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_paged_function_passes_and_skips_only_the_option_cases(dtype):
    spec, = registry.resolve(functions={"sdpa_paged": "example_paged:sdpa_paged"}, framework="numpy")
    adapter = registry.instantiate(registry.AdapterSpec.from_json(json.loads(json.dumps(spec.to_json()))))
    assert adapter.capabilities.operations[0] == "sdpa_paged" and adapter.capabilities.sdpa_options == ()
    statuses = {}
    for case in load_cases("sdpa_paged/*"):
        try:
            outputs, error = compute_outputs(adapter, case, dtype), None
        except Unsupported as exc:
            outputs, error = None, exc
        statuses[case.id] = judge(case, dtype, outputs, adapter_name=adapter.name, error=error)["status"]
    options = {c.id for c in load_cases("sdpa_paged/*")
               if any(n in c.options for n in ("window", "softcap", "chunk")) or "sinks" in c.inputs}
    assert options and all(statuses[c] == "skip" for c in options)
    assert all(s == "pass" for c, s in statuses.items() if c not in options), statuses
