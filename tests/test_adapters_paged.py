"""The paged-attention adapters on real frameworks (spec/paged.md): onnx-gqa (onnxruntime's
GroupQueryAttention CPU kernel) and torch-flex-paged (FlexAttention's PagedAttention, eager).
Each agrees with the golden cases it can express, and the divergences shipped in
conformance/expectations/paged.json are pinned here with the measured behaviour. Expected values
are the reference's (the golden files) or the implementation's own other results.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.conformance.checks.invariants import Context
from attnconf.conformance.checks.invariants import paged as inv
from attnconf.conformance.judging import engine
from attnconf.errors import Unsupported
from attnconf.reference import golden
from bundled_adapters import bundled_or_skip

GQA_CASES = ("sdpa_paged/p1_decode_b2", "sdpa_paged/p16_partial_gqa_l3", "sdpa_paged/p256_l2",
             "sdpa_paged/p4_below_sentinel")


@pytest.fixture(scope="module")
def gqa():
    return bundled_or_skip("onnx-gqa")


@pytest.fixture(scope="module")
def flex():
    return bundled_or_skip("torch-flex-paged")


def _judge(adapter, case_id, dtype):
    case = golden.load_cases(case_id)[0]
    outputs = engine.compute_outputs(adapter, case, dtype)
    return engine.judge(case, dtype, outputs, adapter_name=adapter.name)


@pytest.mark.parametrize("case_id", GQA_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_onnx_gqa_agrees_on_the_cases_it_can_express(gqa, case_id, dtype):
    record = _judge(gqa, case_id, dtype)
    assert record["status"] == "pass", record["message"]


def test_onnx_gqa_local_window_size_w_is_the_window_w_minus_1_0(gqa):
    """onnxruntime 1.32 keeps w keys for local_window_size w (gqa_attention_base.h:
    seq_causal_length − local_window_size), so the adapter passes w = left + 1; w + 1 keys (the
    older releases' rule) would be the window (w, 0), which the output does not match."""
    from attnconf.reference.paged import sdpa_paged

    x = golden.load_cases("sdpa_paged/p16_partial_gqa_l3")[0].inputs     # 37 and 16 keys, L = 3
    q, kp, vp = (x[n].astype(np.float32) for n in ("query", "key_pages", "value_pages"))
    table, lengths = x["block_table"], x["cache_lengths"]
    got = inv.call(Context(gqa, "float32"), q, kp, vp, table, lengths, is_causal=True, window=(2, 0))
    want = sdpa_paged(q, kp, vp, table, lengths, is_causal=True, enable_gqa=True, window=(2, 0))
    wider = sdpa_paged(q, kp, vp, table, lengths, is_causal=True, enable_gqa=True, window=(3, 0))
    assert np.max(np.abs(got[0] - want[0])) < 1e-5
    assert np.max(np.abs(got[0] - wider[0])) > 1e-2


def test_onnx_gqa_cannot_hold_fewer_keys_than_queries(gqa):
    case = golden.load_cases("sdpa_paged/p5_empty_sequence")[0]
    with pytest.raises(Unsupported, match="K_b >= L"):
        engine.compute_outputs(gqa, case, "float32")


@pytest.mark.parametrize("prop", [inv.prop_garbage, inv.prop_capacity, inv.prop_contiguous, inv.prop_permute])
def test_onnx_gqa_ignores_garbage_and_placement(gqa, prop):
    for seed in (4, 5, 6, 7):     # NaN, +inf, −inf, 1e30
        prop(Context(gqa, "float32"), dict(inv._EDGE, seed=seed))


def test_flex_paged_agrees_on_a_golden_case(flex):
    record = _judge(flex, "sdpa_paged/p5_window_softcap_sinks_alibi", "float32")
    assert record["status"] == "pass", record["message"]


def test_flex_paged_nan_in_an_unused_value_slot_makes_every_output_nan(flex):
    """Pinned for conformance/expectations/paged.json: eager flex_attention's P·V runs over the whole
    page pool, 0·NaN = NaN; the same garbage in the keys, or finite garbage, changes nothing."""
    ctx = Context(flex, "float32")
    q, kp, vp, table, lengths = inv.arrays(dict(inv._EDGE, empty=False), "float32")
    base = inv.call(ctx, q, kp, vp, table, lengths, is_causal=True)
    unread = ~inv.read_slots(kp, table, lengths)
    assert unread.any()
    for target, fill, poisoned in (("value", np.nan, True), ("value", np.inf, True), ("value", 1e30, False),
                                   ("key", np.nan, False)):
        k2, v2 = kp.copy(), vp.copy()
        (v2 if target == "value" else k2)[unread] = fill
        out, lse = inv.call(ctx, q, k2, v2, table, lengths, is_causal=True)
        assert np.array_equal(lse, base[1])
        assert np.isnan(out).all() if poisoned else np.array_equal(out, base[0]), (target, fill)


# --- the chunk option on HF's and FlexAttention's masks (sdpa.opt.chunk) --------------------------
CHUNK_CASES = ("sdpa/opt_chunk_c4_l10", "sdpa/opt_chunk_c3_decode_p7", "sdpa/opt_chunk_c4_br_l3_s11")


@pytest.mark.parametrize("case_id", CHUNK_CASES)
def test_hf_chunked_causal_mask_agrees_and_is_float32_accurate_at_float64(case_id):
    """hf-eager builds Llama 4's mask with masking_utils.chunked_overlay: it conforms at float32;
    at float64 it is float32-accurate (its float32 softmax, conformance/expectations/paged.json)."""
    hf = bundled_or_skip("hf-eager")
    assert _judge(hf, case_id, "float32")["status"] == "pass"
    record = _judge(hf, case_id, "float64")
    case = golden.load_cases(case_id)[0]
    got = engine.compute_outputs(hf, case, "float64")["output"]
    assert record["status"] == "fail" and 1e-9 < np.max(np.abs(got - case.expected["output"])) < 1e-6


@pytest.mark.parametrize("case_id", CHUNK_CASES)
def test_flex_mask_mod_chunk_agrees(case_id):
    flex = bundled_or_skip("torch-flex")
    assert _judge(flex, case_id, "float64")["status"] == "pass"
