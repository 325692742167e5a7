"""The real rope_cache implementations (onnxruntime's two RotaryEmbedding kernels, HF's
apply_rotary_pos_emb with given caches) on the golden cases, and their divergences pinned
(shipped in conformance/expectations/rope_cache.json)."""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.conformance.judging import engine
from attnconf.conformance.execution.runner import load_cases
from bundled_adapters import bundled_or_skip

CASES = {c.id: c for c in load_cases(None, None) if c.operation == "rope_cache"}


def _status(adapter, case_id, dtype):
    case = CASES[case_id]
    try:
        out = engine.compute_outputs(adapter, case, dtype)
    except Exception as exc:  # noqa: BLE001 - the record's error
        return "error", str(exc)
    rec = engine.judge(case, dtype, out, adapter_name=adapter.name)
    return rec["status"], rec.get("message", "")


@pytest.mark.parametrize("name", ["onnx-rope", "ort-rope-contrib"])
def test_onnxruntime_kernels_pass_the_golden_cases(name):
    ad = bundled_or_skip(name)
    for case_id in CASES:
        if case_id == "rope_cache/fewer_rows_than_tokens":
            continue
        for dtype in ("float32", "float16"):
            assert _status(ad, case_id, dtype)[0] == "pass", (case_id, dtype)


@pytest.mark.parametrize("name", ["onnx-rope", "ort-rope-contrib"])
def test_onnxruntime_refuses_fewer_rows_than_tokens(name):
    """Pinned: sequence_length > max_sequence_length is ORT_NOT_IMPLEMENTED in onnxruntime's
    rotary_embedding_helper.h, even though every id lies in the cache."""
    status, message = _status(bundled_or_skip(name), "rope_cache/fewer_rows_than_tokens", "float32")
    assert status == "error" and "Updating cos_cache and sin_cache" in message


def test_hf_apply_rotary_pos_emb_with_caches():
    ad = bundled_or_skip("hf-rope")
    for case_id in ("rope_cache/half_b2_t5_e8_n16", "rope_cache/half_rotary4_e8",
                    "rope_cache/base_tables_decode_4090", "rope_cache/fewer_rows_than_tokens"):
        for dtype in ("float64", "float32", "bfloat16"):
            assert _status(ad, case_id, dtype)[0] == "pass", (case_id, dtype)
    status, message = _status(ad, "rope_cache/interleaved_b2_t5_e8_n16", "float32")
    assert "rotate_half" in message     # unsupported: half pairing only


def test_hf_base_tables_differ_at_float64_only_by_its_float32_angles():
    """Pinned: HF's rotary_embedding forms float32 angles at float64, so with float64 tables its
    rope_cache and its rotary_embedding differ by ~1e-8 relative (not by a pairing or a row)."""
    torch = pytest.importorskip("torch")
    from attnconf.reference.rope_cache_cases import base_tables

    ad = bundled_or_skip("hf-rope")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 2, 4, 8))
    pos = np.array([[0, 3, 9, 15]])
    cos, sin = base_tables(16, 8)
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    got = ad.rope_cache(t(x), t(cos), t(sin), t(pos), layout="half").numpy()
    base = ad.rotary_embedding(t(x), t(pos), layout="half").numpy()
    diff = np.max(np.abs(got - base))
    assert 1e-12 < diff < 1e-6
