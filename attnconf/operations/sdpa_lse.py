"""Scaled dot-product attention with its log-sum-exp (spec/sdpa.md, sdpa.lse.*): the registry entry."""
from __future__ import annotations

import importlib

from attnconf.operations import Operation
from attnconf.operations import sdpa as _sdpa

CLAUSES = _sdpa.BASE_CLAUSES + ("sdpa.lse.definition", "sdpa.lse.base", "sdpa.lse.dtype")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.lse import sdpa_lse

    out, lse = sdpa_lse(inputs["query"], inputs["key"], inputs["value"], attn_mask=inputs.get("attn_mask"),
                        **_sdpa._options(inputs, options), precision=precision, exact=exact)
    return {"output": out, "lse": lse}


def natural_scale(inputs, options):
    ref_sdpa = importlib.import_module("attnconf.reference.sdpa")  # the package attribute is the function
    ref_lse = importlib.import_module("attnconf.reference.lse")

    pb = ref_sdpa.prepare(inputs["query"], inputs["key"], inputs["value"],
                          attn_mask=inputs.get("attn_mask"), **_sdpa._options(inputs, options))
    return {"output": ref_sdpa.natural_scale(pb), "lse": ref_lse.natural_scale_lse(pb)}


def output_dtypes(output, dtype):
    """sdpa.lse.dtype: the LSE is float32 below float64 (kernels keep it so), float64 at float64."""
    if output == "lse":
        return "float64" if dtype == "float64" else "float32"
    return dtype


def call(adapter, x, options, dtype):
    """adapter.sdpa_lse on native inputs, with sdpa's unsupported-option rule (an sdpa.opt.*
    option reaches only an adapter whose Capabilities.sdpa_options lists it)."""
    from attnconf.errors import Unsupported

    used = _sdpa.used_options(x, options)
    declared = tuple(getattr(adapter.capabilities, "sdpa_options", ()))
    missing = [n for n in used if n not in declared]
    if missing:
        raise Unsupported(f"{adapter.name} does not support the sdpa option(s) {', '.join(missing)} "
                          f"(its Capabilities.sdpa_options: {', '.join(declared) or 'none'})")
    kwargs = {k: v for k, v in options.items() if k not in _sdpa.OPTION_NAMES or v is not None}
    kwargs.update({n: x[n] for n in _sdpa.OPTION_INPUTS if x.get(n) is not None})
    return adapter.sdpa_lse(x["query"], x["key"], x["value"], attn_mask=x.get("attn_mask"), **kwargs)


def bench_call(adapter, point, seed=0):
    arrays, _ = _sdpa.bench_inputs(point, seed)
    x = {k: adapter.from_numpy(v, point.dtype) for k, v in arrays.items()}
    return lambda: adapter.sdpa_lse(x["query"], x["key"], x["value"], is_causal=point.causal)


OPERATION = Operation(
    invariants=("attnconf.conformance.checks.invariants.lse",),
    profile=("attnconf.conformance.checks.profile.lse",),
    name="sdpa_lse", title="scaled dot-product attention with its log-sum-exp", spec_file="sdpa.md",
    inputs=("query", "key", "value"), optional_inputs=("attn_mask",) + _sdpa.OPTION_INPUTS,
    mask_inputs=("attn_mask",), index_inputs=_sdpa.INDEX_INPUTS,
    options=_sdpa.SDPA_OPTIONS + ("window", "softcap"), outputs=("output", "lse"), output_dtypes=output_dtypes,
    clauses=CLAUSES, dtype_clause="sdpa.lse.dtype",
    reference="attnconf.operations.sdpa_lse:compute", natural_scale="attnconf.operations.sdpa_lse:natural_scale",
    argument_scale=_sdpa.argument_scale,
    case_prefix="sdpa_lse", golden_file="sdpa_lse.npz",
    cases="attnconf.reference.lse_cases:sdpa_lse_cases", families="attnconf.reference.lse_cases:SDPA_LSE_FAMILIES",
    adapter_method="sdpa_lse", call=call, plugin_flag="--sdpa-lse", function_keywords=_sdpa.FUNCTION_KEYWORDS,
    function_signature="func(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False, "
                       "window=None, softcap=None, sinks=None, alibi_slopes=None, query_offset=None, "
                       "key_lengths=None, query_lengths=None) -> (output, lse)",
    work=_sdpa.work, work_unit="flop", bench_call=bench_call, bench_grid=_sdpa.bench_grid_to_2048,
    report={"plot": "attention", "length": ("query", -2), "label": "lse"},
)
