"""Plug-in paths 1 and 2 end to end: a bare function (NumPy, torch; sdpa and encoding) and an
Adapter class, each resolved from its `PKG.MOD:ATTR` string, round-tripped through the JSON spec
(as a worker process would), and run on golden cases against their expected values.
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
from attnconf.conformance.judging.engine import compute_outputs, judge
from attnconf.errors import Unsupported
from attnconf.reference.golden import load_cases

EXAMPLES = Path(__file__).parent / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _one(**kw):
    specs = registry.resolve(**kw)
    assert len(specs) == 1
    spec = registry.AdapterSpec.from_json(json.loads(json.dumps(specs[0].to_json())))
    assert spec == specs[0]
    return registry.instantiate(spec)


def _run(adapter, select, dtype="float64"):
    """{case id: status} over the golden cases matching `select`, judged by the engine."""
    statuses = {}
    for case in load_cases(select):
        try:
            outputs, error = compute_outputs(adapter, case, dtype), None
        except Unsupported as exc:
            outputs, error = None, exc
        statuses[case.id] = judge(case, dtype, outputs, adapter_name=adapter.name, error=error)["status"]
    return statuses


def test_numpy_function_passes_the_sdpa_golden_cases():
    adapter = _one(sdpa="example_numpy_sdpa:sdpa", framework="numpy")
    assert adapter.framework == "numpy" and adapter.name == "example_numpy_sdpa:sdpa"
    statuses = _run(adapter, "sdpa/*")
    assert statuses and {s for s in statuses.values()} <= {"pass", "skip"}
    # every keyword but the kernel options' is accepted, so only bottom-right causal cases
    # (top-left declared) and the option cases (sdpa.opt.*: no window= … keyword) may skip
    from attnconf.reference.golden import load_cases

    with_options = {c.id for c in load_cases("sdpa/*") if any(cl.startswith("sdpa.opt.") for cl in c.clauses)}
    options = [cid for cid in statuses if cid in with_options]
    assert options and all(statuses[cid] == "skip" for cid in options)
    skipped = [cid for cid, s in statuses.items() if s == "skip" and cid not in options]
    assert all("br" in cid or "bottom" in cid for cid in skipped), skipped
    assert statuses.keys() - set(skipped)


def test_torch_function_declares_bottom_right_and_misses_enable_gqa():
    adapter = _one(sdpa="example_torch_sdpa:sdpa", framework="torch")
    assert adapter.name == "example-torch-sdpa"  # from @declare(name=...)
    caps = adapter.capabilities
    assert caps.causal_alignments == ("bottom_right",) and not caps.gqa and caps.gradients
    statuses = _run(adapter, "sdpa/*", "float32")
    failed = {cid: s for cid, s in statuses.items() if s not in ("pass", "skip")}
    assert not failed
    gqa = [cid for cid in statuses if "gqa" in cid]
    assert gqa and all(statuses[cid] == "skip" for cid in gqa)
    vjp = _run(adapter, "sdpa_vjp/*", "float64")  # gradients through autograd
    assert "pass" in vjp.values() and not {s for s in vjp.values()} - {"pass", "skip"}


def test_encoding_function_with_and_without_dtype_keyword():
    adapter = _one(encoding="example_encoding:sinusoidal", framework="numpy")
    statuses = _run(adapter, "enc/*", "float32")
    interleaved_vaswani = [c.id for c in load_cases("enc/*") if c.options["layout"] == "interleaved"
                           and c.options["frequencies"] == "vaswani" and c.options["dim"] % 2 == 0]
    assert interleaved_vaswani and all(statuses[cid] == "pass" for cid in interleaved_vaswani)
    others = [c.id for c in load_cases("enc/*") if c.options["layout"] != "interleaved"]
    assert others and all(statuses[cid] == "skip" for cid in others)

    t2t = _one(encoding="example_encoding:concat_t2t", framework="numpy")
    assert t2t.capabilities.encoding_layouts == ("concat",)
    assert "pass" in _run(t2t, "enc/*t2t*", "float32").values()
    with pytest.raises(Unsupported, match="no dtype= keyword"):  # float32 only, so float64 is unsupported
        t2t.sinusoidal_encoding(4, 6, layout="concat", frequencies="t2t", dtype="float64")


def test_adapter_class_runs_the_golden_cases():
    adapter = _one(adapter_classes=["example_adapter:NumpyChunkedAdapter"])
    assert adapter.name == "example-numpy-chunked"
    statuses = _run(adapter, "sdpa/*")
    assert "pass" in statuses.values()
    assert not {s for s in statuses.values()} - {"pass", "skip"}, statuses


def test_missing_keyword_makes_only_the_cases_needing_it_unsupported():
    def bare(query, key, value):
        return query

    from attnconf.adapters.function import FunctionAdapter, accepted_keywords

    assert accepted_keywords(bare, ("attn_mask", "scale")) == frozenset()
    assert accepted_keywords(lambda q, k, v, **kw: q, ("attn_mask",)) == {"attn_mask"}
    cls = type("A", (FunctionAdapter,), dict(func=bare, target="x:bare", accepted=frozenset(), claims={}))
    q = np.zeros((1, 1, 2, 2))
    assert cls().sdpa(q, q, q) is q
    for kwargs, word in ((dict(attn_mask=np.ones((2, 2), bool)), "attn_mask"), (dict(scale=0.5), "scale"),
                         (dict(is_causal=True), "is_causal"), (dict(enable_gqa=True), "enable_gqa")):
        with pytest.raises(Unsupported, match=word):
            cls().sdpa(q, q, q, **kwargs)


def test_declarations_by_decorator_and_attributes():
    from attnconf.adapters.declare import declarations

    @declare(fully_masked="uniform", dtypes=("float32",))
    def f(query, key, value):
        return query

    def g(query, key, value):
        return query

    g.causal_alignment = "bottom_right"
    assert declarations(f) == {"fully_masked": "uniform", "dtypes": ("float32",)}
    assert declarations(g) == {"causal_alignment": "bottom_right"}
    with pytest.raises(ValueError, match="fully_masked should be one of"):
        declare(fully_masked="mean")
    with pytest.raises(TypeError, match="declared claim should be one of"):
        declare(colour="blue")


@pytest.mark.slow
def test_cli_run_with_a_bare_function(tmp_path):
    """`attnconf run --sdpa PKG.MOD:FUNC --framework numpy` from the folder holding the module."""
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "attnconf", "run", "--sdpa", "example_numpy_sdpa:sdpa", "--framework", "numpy",
           "--select", "sdpa/size_*", "--dtype", "float64", "--no-checks", "--json", str(out)]
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.run(cmd, cwd=EXAMPLES, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    records = json.loads(out.read_text())["results"]
    assert records and all(r["adapter"] == "example_numpy_sdpa:sdpa" for r in records)
    assert {r["status"] for r in records if r["check"] == "agreement"} == {"pass"}


@pytest.mark.parametrize("target,framework", [("example_jax_tf_sdpa:jax_sdpa", "jax"),
                                              ("example_jax_tf_sdpa:tf_sdpa", "tensorflow")])
def test_jax_and_tensorflow_functions_at_float64_and_float32(target, framework):
    adapter = _one(sdpa=target, framework=framework)
    for dtype in ("float64", "float32"):
        statuses = _run(adapter, "sdpa/size_*", dtype)
        assert statuses and set(statuses.values()) == {"pass"}, (dtype, statuses)
    vjp = _run(adapter, "sdpa_vjp/basic*", "float64")  # gradients through jax.vjp / GradientTape
    assert set(vjp.values()) == {"pass"}


def test_torch_function_gradients_of_window_softcap_and_sinks():
    """sdpa.opt.grad through a plug-in: autograd of a bare torch function gives dq, dk, dv and,
    with sinks, dsinks; the option cases it cannot express (ALiBi, lengths, masks) are skipped."""
    pytest.importorskip("torch")
    adapter = _one(sdpa="example_torch_sdpa_options:sdpa", framework="torch")
    assert {"window", "softcap", "sinks"} <= set(adapter.capabilities.sdpa_options)
    statuses = _run(adapter, "sdpa_vjp/opt_*", "float64")
    for cid in ("sdpa_vjp/opt_window_l2_r0_causal", "sdpa_vjp/opt_softcap_c5", "sdpa_vjp/opt_sinks_h3"):
        assert statuses[cid] == "pass", (cid, statuses[cid])
    assert not set(statuses.values()) - {"pass", "skip"}, statuses
