"""A bare RoPE function (`--rope PKG.MOD:FUNC`, docs/plugins.md): the worked example runs through
`attnconf run` with exit 0; its declared layout and scaling rules, and the keywords it lacks,
make the other cases unsupported (skipped with the reason), never passed or failed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnconf.adapters import declare, registry
from attnconf.errors import Unsupported

EXAMPLES = Path(__file__).parent / "examples"


def test_the_worked_example_runs_with_exit_0(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "attnconf", "run", "--rope", "example_rope:rope",
                           "--framework", "numpy", "--select", "rope/*", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = json.loads(out.read_text())["results"]
    statuses = {r["status"] for r in records}
    assert "pass" in statuses and statuses <= {"pass", "skip"}
    reasons = {r["message"] for r in records if r["status"] == "skip"}
    # the planner's reasons (conformance/plan.py), in the capability the declaration sets
    assert reasons and all("declares rope_layouts=('interleaved',)" in m or "declares rope_scaling=('linear',)" in m
                           for m in reasons), reasons
    assert {r["adapter"] for r in records} == {"example-rope"}


@pytest.fixture()
def _examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _adapter(target):
    return registry.instantiate(registry.resolve(rope=target, framework="numpy")[0])


@pytest.mark.usefixtures("_examples_on_path")
def test_claims_become_capabilities_and_missing_keywords_unsupported():
    x, pos = np.random.default_rng(0).standard_normal((1, 2, 4, 8)), np.arange(4)
    full = _adapter("example_rope:rope")
    assert full.capabilities.rope_layouts == ("interleaved",)
    assert full.capabilities.rope_scaling == ("linear",)
    assert full.rotary_embedding(x, pos, rotary_dim=4, base=500.0).shape == x.shape
    fixed = _adapter("example_rope:rope_fixed")
    assert fixed.capabilities.rope_scaling == ()
    np.testing.assert_array_equal(fixed.rotary_embedding(x, pos, rotary_dim=8, layout="interleaved"),
                                  full.rotary_embedding(x, pos))      # rotary_dim = E needs no keyword
    for kwargs, why in [({"base": 500.0}, "'base'"), ({"rotary_dim": 4}, "'rotary_dim'"),
                        ({"scaling": {"rope_type": "linear", "factor": 2.0}}, "'scaling'"),
                        ({"layout": "half"}, "rope_layout='interleaved'")]:
        with pytest.raises(Unsupported, match=why):
            fixed.rotary_embedding(x, pos, **kwargs)
    with pytest.raises(Unsupported, match="the case needs 'yarn'"):
        full.rotary_embedding(x, pos, scaling={"rope_type": "yarn", "factor": 2.0,
                                               "original_max_position_embeddings": 4})


def test_declare_checks_the_rope_claims():
    with pytest.raises(ValueError, match="rope_layout"):
        declare(rope_layout="rotate_half")
    with pytest.raises(ValueError, match="rope_scaling entry"):
        declare(rope_scaling=("ntk",))
    assert declare(rope_layout="half", rope_scaling=("yarn",))(lambda x, p: x).__attnconf__ == {
        "rope_layout": "half", "rope_scaling": ("yarn",)}


def test_docs_show_the_example_as_it_is():
    doc = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = doc[doc.index("# example_rope.py\n"):]
    block = block[:block.index("```")]
    source = (EXAMPLES / "example_rope.py").read_text(encoding="utf-8")
    code = [line for line in block.splitlines()[1:] if line.strip()]
    assert code and all(line in source for line in code)
