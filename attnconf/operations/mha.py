"""The multi-head attention layer (spec/mha.md): the registry entry."""
from __future__ import annotations

import importlib

from attnconf.operations import Operation

WEIGHT_NAMES = ("wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.mha import multi_head_attention

    weights = {n: inputs[n] for n in WEIGHT_NAMES if n in inputs}
    return {"output": multi_head_attention(inputs["query_input"], inputs.get("key_value_input"), weights,
                                           attn_mask=inputs.get("attn_mask"), **options,
                                           precision=precision, exact=exact)}


def natural_scale(inputs, options):
    ref_mha = importlib.import_module("attnconf.reference.mha")

    weights = {n: inputs[n] for n in WEIGHT_NAMES if n in inputs}
    return {"output": ref_mha.natural_scale(inputs["query_input"], inputs.get("key_value_input"), weights,
                                            attn_mask=inputs.get("attn_mask"), **options)}


def call(adapter, x, options, dtype):
    weights = {k: x[k] for k in WEIGHT_NAMES if k in x}
    return adapter.multi_head_attention(x["query_input"], x.get("key_value_input", x["query_input"]),
                                        weights, attn_mask=x.get("attn_mask"), **options)


def work(shape, causal=False):
    """Attention plus projections (perf.flops), self-attention with D = H·E."""
    from attnconf.flops import mha_flops

    return mha_flops(shape["B"], shape["L"], shape["S"], shape["D"], shape["D"], shape["H"], shape["H"],
                     shape["E"], shape["E"], causal=causal)


def bench_call(adapter, point, seed=0):
    """Self-attention with D = H·E, weights scaled by 1/sqrt(D), no biases."""
    import numpy as np

    rng = np.random.default_rng(seed)
    D = point.H * point.E
    x = adapter.from_numpy(rng.standard_normal((point.B, point.L, D)), point.dtype)
    w = 1.0 / np.sqrt(D)
    weights = {k: adapter.from_numpy(rng.standard_normal((D, D)) * w, point.dtype) for k in ("wq", "wk", "wv", "wo")}
    return lambda: adapter.multi_head_attention(x, x, weights, num_heads=point.H, is_causal=point.causal)


def bench_grid(quick, Ls, dtypes, max_L, max_positions):
    from attnconf.operations import sdpa

    return sdpa.bench_grid_to_2048(quick, Ls, dtypes, max_L, max_positions)


OPERATION = Operation(
    profile=("attnconf.conformance.checks.profile.mha",),
    invariants=("attnconf.conformance.checks.invariants.mha",),
    name="multi_head_attention", title="multi-head attention layer", spec_file="mha.md",
    inputs=("query_input", "wq", "wk", "wv", "wo"),
    optional_inputs=("key_value_input", "bq", "bk", "bv", "bo", "attn_mask"), mask_inputs=("attn_mask",),
    options=("num_heads", "num_kv_heads", "is_causal"), outputs=("output",),
    clauses=("mha.weights", "mha.projection", "mha.heads", "mha.output"), dtype_clause="mha.output",
    reference="attnconf.operations.mha:compute", natural_scale="attnconf.operations.mha:natural_scale",
    case_prefix="mha", golden_file="mha.npz",
    cases="attnconf.reference.mha_cases:mha_cases", families="attnconf.reference.mha_cases:MHA_FAMILIES",
    adapter_method="multi_head_attention", call=call,
    work=work, work_unit="flop", bench_call=bench_call, bench_grid=bench_grid,
    report={"plot": "attention", "length": ("query_input", 1), "label": "mha"},
)
