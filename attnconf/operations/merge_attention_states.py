"""Merging attention states (spec/sdpa.md, sdpa.merge.*): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.merge import merge_attention_states

    out, lse = merge_attention_states(inputs["outputs"], inputs["lses"], precision=precision, exact=exact)
    return {"output": out, "lse": lse}


def natural_scale(inputs, options):
    from attnconf.reference.merge import natural_scales

    out, lse = natural_scales(inputs["outputs"], inputs["lses"])
    return {"output": out, "lse": lse}


def output_dtypes(output, dtype):
    """sdpa.merge.dtype: the merged LSE is float32 below float64."""
    if output == "lse":
        return "float64" if dtype == "float64" else "float32"
    return dtype


def argument_scale(case, positions=None):
    """N · max |lse_n| over the case's finite LSEs (tol.rule's argument term): a merger that carries
    a running LSE (two states at a time, as ring attention's does) rounds it at each of its N
    steps, and a weight exp(lse_n − lse) then moves by ~|lse|·u each time; None when every state
    is empty."""
    import numpy as np

    lses = np.asarray(case.inputs["lses"], dtype=np.float64)
    finite = lses[np.isfinite(lses)]
    return float(lses.shape[0] * np.abs(finite).max()) if finite.size else None


def call(adapter, x, options, dtype):
    """adapter.merge_attention_states on native inputs. The LSEs arrive in the case dtype (golden
    values are exact in every dtype); an adapter hands them to its kernel as float32 below float64."""
    return adapter.merge_attention_states(x["outputs"], x["lses"])


OPERATION = Operation(
    invariants=("attnconf.conformance.checks.invariants.merge",),
    profile=("attnconf.conformance.checks.profile.merge",),
    name="merge_attention_states", title="merging attention states (output, lse)", spec_file="sdpa.md",
    inputs=("outputs", "lses"), outputs=("output", "lse"), output_dtypes=output_dtypes,
    clauses=("sdpa.merge.definition", "sdpa.merge.dtype"), dtype_clause="sdpa.merge.dtype",
    reference="attnconf.operations.merge_attention_states:compute",
    natural_scale="attnconf.operations.merge_attention_states:natural_scale", argument_scale=argument_scale,
    case_prefix="merge", golden_file="merge_attention_states.npz",
    cases="attnconf.reference.merge_cases:merge_cases", families="attnconf.reference.merge_cases:MERGE_FAMILIES",
    adapter_method="merge_attention_states", call=call, plugin_flag="--merge-states",
    function_keywords=(),
    function_signature="func(outputs, lses) -> (output, lse); outputs (N, B, H, L, Ev), lses (N, B, H, L)",
)
