"""Attention over a paged KV cache (spec/paged.md, paged.*): the registry entry.

The reference gathers each sequence's keys from its pages and evaluates reference.lse.sdpa_lse
on the contiguous sequence (reference/paged.py); the outputs are (output, lse).
"""
from __future__ import annotations

from attnconf.operations import Operation
from attnconf.operations.sdpa_lse import output_dtypes

INPUTS = ("query", "key_pages", "value_pages", "block_table", "cache_lengths")
INDEX_INPUTS = ("block_table", "cache_lengths")
FLOAT_OPTION_INPUTS = ("sinks", "alibi_slopes")
OPTIONS = ("is_causal", "scale", "enable_gqa", "window", "softcap", "chunk")
# the sdpa.opt.* options a case may set, checked against Capabilities.sdpa_options as sdpa does
KERNEL_OPTIONS = ("window", "softcap", "chunk", "sinks", "alibi_slopes")
CLAUSES = ("paged.layout", "sdpa.logits", "sdpa.softmax", "sdpa.output", "paged.lse", "paged.dtype")


def _arguments(inputs, options):
    args = [inputs[n] for n in INPUTS]
    kw = dict(options, **{n: inputs[n] for n in FLOAT_OPTION_INPUTS if inputs.get(n) is not None})
    return args, kw


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.paged import sdpa_paged

    args, kw = _arguments(inputs, options)
    out, lse = sdpa_paged(*args, **kw, precision=precision, exact=exact)
    return {"output": out, "lse": lse}


def _problem(inputs, options):
    """The gathered contiguous problem as reference.sdpa prepares it (paged.gather)."""
    import importlib

    from attnconf.reference import paged

    _sdpa = importlib.import_module("attnconf.reference.sdpa")    # the package attribute is the function
    args, kw = _arguments(inputs, options)
    k, v, lengths = paged.contiguous(*args)
    return _sdpa, _sdpa.prepare(args[0], k, v, key_lengths=lengths, causal_alignment="bottom_right", **kw)


def natural_scale(inputs, options):
    """output: Σ_j p_ij |v_j| (tol.metric, as sdpa); lse: max(1, |lse_i|, max_j |s_ij|) over the
    visible keys, the magnitude a correct kernel rounds when it forms the logits and their
    log-sum-exp (spec/paged.md paged.lse); 1 for a row without keys."""
    import numpy as np

    _sdpa, pb = _problem(inputs, options)
    s = _sdpa.logits_plain(pb, _sdpa.Arith(None))
    with np.errstate(invalid="ignore"):
        big = np.max(np.where(np.isfinite(s), np.abs(s), 0.0), axis=-1)
    lse = compute(inputs, options)["lse"]
    lse_scale = np.maximum(np.maximum(big, np.where(np.isfinite(lse), np.abs(lse), 0.0)), 1.0)
    return {"output": _sdpa.natural_scale(pb), "lse": lse_scale}


def argument_scale(case, positions=None):
    """max |scale·q·k| over the gathered keys (tol.rule's argument term), plus ALiBi's largest
    bias; None without keys."""
    import numpy as np

    _sdpa, pb = _problem(case.inputs, case.options)
    s = np.matmul(pb.q, np.swapaxes(pb.k, -1, -2)) * pb.scale
    if pb.allowed is not None:
        s = np.where(pb.allowed, s, 0.0)
    if not s.size:
        return None
    arg = float(np.max(np.abs(s)))
    if pb.bias is not None:
        arg += float(np.max(np.abs(np.where(pb.allowed, pb.bias, 0.0) if pb.allowed is not None else pb.bias)))
    return arg


def used_options(x, options) -> tuple:
    return tuple(n for n in KERNEL_OPTIONS if options.get(n) is not None or x.get(n) is not None)


def call(adapter, x, options, dtype):
    """adapter.sdpa_paged on native inputs: (output, lse). The unsupported-option rule of sdpa:
    window, softcap, chunk, sinks and alibi_slopes only when the case sets them, and only to an
    adapter whose Capabilities.sdpa_options lists them; otherwise the case is Unsupported."""
    from attnconf.errors import Unsupported

    used = used_options(x, options)
    declared = tuple(getattr(adapter.capabilities, "sdpa_options", ()))
    missing = [n for n in used if n not in declared]
    if missing:
        raise Unsupported(f"{adapter.name} does not support the sdpa option(s) {', '.join(missing)} "
                          f"with sdpa_paged (its Capabilities.sdpa_options: {', '.join(declared) or 'none'})")
    kwargs = {k: v for k, v in options.items() if v is not None or k not in KERNEL_OPTIONS}
    kwargs.update({n: x[n] for n in FLOAT_OPTION_INPUTS if x.get(n) is not None})
    return adapter.sdpa_paged(*(x[n] for n in INPUTS), **kwargs)


def work(shape, causal=False):
    """As sdpa on the gathered sequences (perf.flops)."""
    from attnconf.flops import sdpa_flops

    return sdpa_flops(shape["B"], shape["H"], shape["L"], shape["S"], shape["E"], shape.get("Ev"), causal=causal)


OPERATION = Operation(
    name="sdpa_paged", title="attention over a paged KV cache", spec_file="paged.md",
    inputs=INPUTS, optional_inputs=FLOAT_OPTION_INPUTS, index_inputs=INDEX_INPUTS,
    options=OPTIONS, outputs=("output", "lse"), output_dtypes=output_dtypes, clauses=CLAUSES, dtype_clause="paged.dtype",
    reference="attnconf.operations.sdpa_paged:compute", natural_scale="attnconf.operations.sdpa_paged:natural_scale",
    argument_scale=argument_scale,
    case_prefix="sdpa_paged", golden_file="sdpa_paged.npz",
    cases="attnconf.reference.paged_cases:paged_cases", families="attnconf.reference.paged_cases:FAMILIES",
    invariants=("attnconf.conformance.checks.invariants.paged",),
    profile=("attnconf.conformance.checks.profile.paged",),
    adapter_method="sdpa_paged", call=call, plugin_flag="--sdpa-paged",
    function_keywords=OPTIONS + FLOAT_OPTION_INPUTS,
    function_signature="func(query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False, "
                       "scale=None, enable_gqa=False, window=None, softcap=None, chunk=None, sinks=None, "
                       "alibi_slopes=None) -> (output, lse)",
    work=work, work_unit="flop",
    report={"plot": "attention", "length": ("query", -2), "label": "paged"},
)
