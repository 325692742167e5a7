"""ONNX's own eight RotaryEmbedding backend cases, expressed as rope_cache cases and judged against
the reference (spec rope.cache.*).

The installed onnx wheel ships the backend cases' generators (onnx/backend/test/case/node/
rotaryembedding.py, what onnx.backend.test.case.node.collect_testcases runs) rather than the
data/node/test_rotary_embedding* folders of the source tree: each generator draws inputs and
computes ONNX's expected output with onnx.reference. The test maps each case to rope_cache — the
4-D input is already (B, H, T, E); the 3-D one (B, T, H·E) with num_heads is split into heads;
caches without position_ids ((B, T, r/2), already gathered) become (B·T, r/2) tables read at rows
b·T + t (spec rope.cache.lookup) — and requires ONNX's float32 output to be within the rope_cache
tolerance of the exact value, while the other pairing is not.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from attnconf import reference as R  # noqa: E402
from attnconf.conformance.judging import tolerance as T  # noqa: E402


def _cases():
    """The RotaryEmbedding cases of the installed onnx: importing its generator module runs them
    (onnx's case metaclass calls every export_*), which is what collect_testcases does for every
    operator; here for this one only (seconds instead of tens of seconds)."""
    import importlib

    import onnx.backend.test.case.node as node_cases

    importlib.import_module("onnx.backend.test.case.node.rotaryembedding")
    return sorted((c for c in node_cases._NodeTestCases
                   if c.name.startswith("test_rotary_embedding") and not c.name.endswith("_expanded")),
                  key=lambda c: c.name)


CASES = _cases()


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def express(case):
    """(inputs, options, to_onnx): the rope_cache form of an ONNX RotaryEmbedding backend case."""
    node = case.model.graph.node[0]
    att = _attrs(node)
    arrays = case.data_sets[0][0]
    x, cos, sin = arrays[0], arrays[1], arrays[2]
    pos = arrays[3] if len(arrays) > 3 else None
    back = lambda y: y                                              # noqa: E731
    if x.ndim == 3:                                                 # (B, T, H·E) with num_heads
        b, t, d = x.shape
        h = att["num_heads"]
        x = x.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)
        back = lambda y: y.transpose(0, 2, 1, 3).reshape(b, t, d)   # noqa: E731
    b, _, t, _ = x.shape
    if pos is None:                                                 # caches already gathered
        cos, sin = cos.reshape(b * t, -1), sin.reshape(b * t, -1)
        pos = np.arange(b * t).reshape(b, t)
    options = {"rotary_dim": att.get("rotary_embedding_dim") or None,
               "layout": "interleaved" if att.get("interleaved", 0) else "half"}
    inputs = {"x": x.astype(np.float64), "cos_cache": cos.astype(np.float64),
              "sin_cache": sin.astype(np.float64), "position_ids": pos.astype(np.int64)}
    return inputs, options, back


def test_all_eight_cases_are_found():
    assert len(CASES) == 8, [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_expected_output_agrees_with_the_reference(case):
    inputs, options, back = express(case)
    expected_onnx = case.data_sets[0][1][0]
    exact = back(R.compute("rope_cache", inputs, options, exact=True)["output"])
    scale = back(R.natural_scales("rope_cache", inputs, options)["output"])
    rule = T.rule_for("rope_cache", "float32")
    err = T.ulp_errors(expected_onnx, exact, scale, "float32")
    assert err.max() <= rule.floor_ulps, (case.name, float(err.max()))
    # and the test can fail: the other pairing is far off
    other = dict(options, layout="half" if options["layout"] == "interleaved" else "interleaved")
    wrong = back(R.compute("rope_cache", inputs, other, exact=True)["output"])
    assert T.ulp_errors(wrong, exact, scale, "float32").max() > 1e4
