"""Every bundled adapter on every golden case at float64 and float32, judged by the suite's rule.

Conformance failures that are real framework behaviour are findings, not test failures: each is
explained by one named finding below (a predicate on adapter, dtype and case). The test fails when
a failure is unexplained (an adapter or framework regression) and when a finding explains nothing
any more (the framework changed: update the finding, and docs/plugins.md / the report).
"""
from __future__ import annotations

import pytest

from attnconf import operations as op_registry
from attnconf.adapters import registry
from attnconf.conformance.judging.engine import compute_outputs, judge
from attnconf.reference.golden import load_cases

BAD = ("fail", "error", "crash")


def _fully_masked(case) -> bool:
    # golden cases with at least one fully-masked query row (by construction, named so)
    return "fully_masked" in case.id or case.id.endswith("mask_bool_causal_tl")


# name -> (adapters, dtypes, predicate(case), what the framework does)
FINDINGS = {
    "jax-float32-softmax": (("jax-xla",), ("float64",), lambda c: c.operation in ("sdpa", "sdpa_vjp"),
                            "jax.nn.dot_product_attention computes the softmax in float32 for float64 inputs"),
    "keras-float32-scale": (("keras-tf", "keras-tf-mha"), ("float64",), lambda c: True,
                            "Keras rounds the scale to float32 for float64 inputs"),
    "uniform-fully-masked": (("jax-xla", "keras-tf"), ("float64", "float32"), _fully_masked,
                             "fully-masked rows give mean(V) (bool mask) or NaN (-inf bias), not 0"),
    "keras-mqa": (("keras-tf",), ("float64", "float32"), lambda c: "/mqa_" in c.id,
                  "keras.ops.dot_product_attention (TF) raises for one key/value head"),
    "torch-flash-3d-mask": (("torch-flash",), ("float64", "float32"), lambda c: c.id.endswith("_hls"),
                            "the CPU flash kernel has no kernel for a (H, L, S) mask"),
    "keras-hub-float32-frequency": (("keras-hub-sine",), ("float64",), lambda c: c.operation == "sinusoidal_encoding",
                                    "SinePositionEncoding forms 1/max_wavelength in float32: float64 tables are float32-accurate"),
    "subnormal-gradient-flushed": (("jax-xla", "keras-tf"), ("float32",), lambda c: c.id == "sdpa_vjp/logits_1e3",
                                   "a float32 gradient that is subnormal comes back as 0"),
    "rope-float32-angles": (("hf-rope", "keras-hub-rope", "keras-hub-rope-jax"), ("float64",),
                            lambda c: c.operation == "rotary_embedding",
                            "HF and keras-hub form RoPE angles in float32: float64 outputs are float32-accurate"),
    "keras-hub-dynamic-is-linear": (("keras-hub-rope", "keras-hub-rope-jax"), ("float32",),
                                    lambda c: c.id.startswith("rope/dynamic_"),
                                    "keras-hub's rope_type dynamic is linear scaling by f^(r/(r-2)) at every length"),
    # issue 14's adapters (pinned in tests/test_adapters_sdpa_options_findings.py)
    "hf-eager-float32-softmax": (("hf-eager",), ("float64",), lambda c: c.operation == "sdpa",
                                 "Gemma 2's eager_attention_forward computes its softmax in float32"),
    "hf-finfo-min-empty-rows": (("hf-eager",), ("float64", "float32"),
                                lambda c: "sdpa.fully_masked" in c.clauses,
                                "eager_mask's finite finfo.min: rows with no visible key give mean(V) or NaN"),
    "hf-sinks-no-key-mean": (("hf-eager-sinks",), ("float64", "float32"),
                             lambda c: c.id == "sdpa/square_sinks_key_lengths",
                             "a sequence with no valid key and a -inf sink gives mean(V): finite finfo.min mask"),
    "hf-sdpa-single-query": (("hf-sdpa",), ("float64", "float32"), lambda c: c.id == "sdpa/causal_tl_l1_s33",
                             "sdpa_mask skips the mask for q_length == 1: one top-left query sees every key"),
    "ort-mask-needs-l-rows": (("onnx-attention",), ("float32",),
                              lambda c: "attn_mask" in c.inputs and (c.inputs["attn_mask"].ndim < 2 or
                                        c.inputs["attn_mask"].shape[-2] != c.inputs["query"].shape[-2]),
                              "onnxruntime's CPU Attention refuses a mask without the query rows"),
    "flex-lse-sink-nan": (("torch-flex",), ("float64", "float32"),
                          lambda c: c.id in ("sdpa/opt_sinks_fully_masked_rows", "sdpa_lse/sinks_fully_masked_rows",
                                             "sdpa/square_sinks_key_lengths"),
                          "the LSE sink recipe gives NaN for a row with no visible key and a -inf sink"),
    "jax-option-empty-rows": (("jax-xla",), ("float64", "float32"),
                              lambda c: "sdpa.fully_masked" in c.clauses and any(
                                  cl.startswith("sdpa.opt.") for cl in c.clauses),
                              "local_window_size / key_value_seq_lengths rows with no key give mean(V)"),
    # issue 20's adapters (pinned in tests/test_lse_adapters.py)
    "flash-cpu-empty-row-lse-zero": (("torch-flash-lse",), ("float64", "float32"),
                                     lambda c: c.operation == "sdpa_lse" and "sdpa.lse.empty" in c.clauses,
                                     "the CPU flash op returns logsumexp 0, not -inf, for a row with no visible key"),
    "sdpa-merger-empty-nan": (("torch-cp-merge",), ("float64", "float32"),
                              lambda c: c.id in ("merge/empty_states_garbage", "merge/all_empty_rows"),
                              "_SDPAMerger gives NaN for two empty states and when the first state is empty"),
    # issue 20's rope_cache adapters (pinned in tests/test_rope_cache_adapters.py)
    "ort-rope-fewer-rows": (("onnx-rope", "ort-rope-contrib"), ("float32",),
                            lambda c: c.id == "rope_cache/fewer_rows_than_tokens",
                            "onnxruntime refuses a cache with fewer rows than tokens (ORT_NOT_IMPLEMENTED)"),
    # issue 21's packed adapters (pinned in tests/test_varlen_adapters.py)
    "jax-varlen-float32-softmax": (("jax-varlen",), ("float64",), lambda c: c.operation == "sdpa_varlen",
                                   "jax.nn.dot_product_attention computes the softmax in float32 for float64 inputs"),
    "pallas-lse-base2": (("jax-pallas-segments",), ("float32",), lambda c: c.operation == "sdpa_varlen",
                         "the Pallas GPU flash kernel's LSE residual is m + log2(l): base 2"),
    # issue 13's adapters (pinned in tests/test_adapters_position_findings.py)
    "t5-float32-log": (("hf-t5-bias",), ("int64", "float64", "float32"), lambda c: "exact_boundary" in c.id,
                       "T5's _relative_position_bucket truncates a float32 log: one bucket low at n = 54"),
    "bloom-float32-slopes": (("hf-bloom-alibi",), ("float64",), lambda c: c.operation == "alibi_slopes",
                             "BLOOM's slopes are float32 powers of a float32 base, cast to float64"),
    "keras-hub-alibi-last-row": (("keras-hub-alibi", "keras-hub-alibi-jax"), ("float64", "float32"),
                                 lambda c: c.id.startswith("alibi/causal_"),
                                 "AlibiBias adds the last row's bias m·(j - S + 1) to every query row"),
    "speecht5-index-sign": (("hf-speecht5-relpos",), ("int64",), lambda c: c.operation == "relative_position_index",
                            "SpeechT5 indexes by clip(i - j, -K, K - 1) + K: the other sign, 2K rows"),
}
ADAPTERS = [n for n in registry.BUNDLED if n != "numpy-reference"]


def _explain(name, dtype, case):
    return [f for f, (adapters, dtypes, pred, _) in FINDINGS.items()
            if name in adapters and dtype in dtypes and pred(case)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ADAPTERS)
def test_bundled_adapter_on_golden_cases(name):
    adapter = registry.instantiate(registry.AdapterSpec("bundled", name))
    available, reason = adapter.is_available()
    if not available:
        pytest.skip(reason)
    operations = set(adapter.capabilities.operations)
    unexplained, used, ran = [], set(), 0
    for case in load_cases():
        if case.operation not in operations:
            continue
        for dtype in op_registry.get(case.operation).case_dtypes(("float64", "float32")):  # int64: once
            try:
                outputs, error = compute_outputs(adapter, case, dtype), None
            except Exception as exc:  # Unsupported -> skip, anything else -> error, both judged
                outputs, error = None, exc
            record = judge(case, dtype, outputs, adapter_name=name, error=error)
            ran += record["status"] == "pass"
            if record["status"] in BAD:
                found = _explain(name, dtype, case)
                used.update(found)
                if not found:
                    unexplained.append(f"{case.id} [{dtype}] {record['status']}: {record['message'][:200]}")
    # an adapter whose every case is a named finding (hf-speecht5-relpos: the other sign) still ran
    assert ran or used, f"{name} passed no golden case at all"
    assert not unexplained, "\n".join(unexplained)
    stale = [f for f, (adapters, *_rest) in FINDINGS.items() if name in adapters and f not in used]
    assert not stale, f"findings that no longer happen for {name}: {stale}"
