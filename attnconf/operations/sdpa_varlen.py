"""Packed variable-length attention (spec/varlen.md): the registry entry of `sdpa_varlen`.

An adapter offers it as a method

    sdpa_varlen(query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *,
                is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False,
                **options) -> (output (total_q, H, Ev), lse (total_q, H))

(lse None where the implementation has no LSE: the output alone is judged), with `options` among window, softcap, sinks (sdpa.opt.*), passed only when a case sets them and
only to an adapter whose class attribute `varlen_options` lists them (else the case is
Unsupported: a skip). cu_seqlens arrive through adapter.index_from_numpy. Optional adapter
attributes read by the checks: `varlen_alignments` (the causal alignments it takes, default both;
() none), `varlen_self_attention` (True: it takes cu_seqlens_k = cu_seqlens_q only, so
the invariants draw such batches), `batch_invariant` (True: a sequence's rows are bitwise the same alone, inv.varlen.alone).
"""
from __future__ import annotations

from attnconf.operations import Operation

OPTION_NAMES = ("window", "softcap", "sinks")        # the sdpa.opt.* options a packed case may set
INDEX_INPUTS = ("cu_seqlens_q", "cu_seqlens_k")
OPTIONS = ("max_seqlen_q", "max_seqlen_k", "is_causal", "causal_alignment", "scale", "enable_gqa",
           "window", "softcap")
CLAUSES = ("varlen.layout", "varlen.sequence", "varlen.lse", "varlen.dtype", "sdpa.logits", "sdpa.softmax")


def _arguments(inputs, options):
    args = (inputs["query"], inputs["key"], inputs["value"], inputs["cu_seqlens_q"], inputs["cu_seqlens_k"])
    kw = dict(options)
    if inputs.get("sinks") is not None:
        kw["sinks"] = inputs["sinks"]
    if kw.get("window") is not None:
        kw["window"] = tuple(kw["window"])
    return args, kw


def output_dtypes(output: str, dtype: str) -> str:
    """varlen.dtype: the output in the case dtype; the LSE as sdpa.lse.dtype (float32 below float64)."""
    return "float64" if output == "lse" and dtype == "float64" else "float32" if output == "lse" else dtype


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.varlen import sdpa_varlen

    args, kw = _arguments(inputs, options)
    out, lse = sdpa_varlen(*args, **kw, precision=precision, exact=exact)
    return {"output": out, "lse": lse}


def natural_scale(inputs, options):
    from attnconf.reference.varlen import natural_scales

    args, kw = _arguments(inputs, options)
    out, lse = natural_scales(*args, **kw)
    return {"output": out, "lse": lse}


def call(adapter, x, options, dtype):
    """adapter.sdpa_varlen on native inputs; an option the adapter does not list in its
    `varlen_options` makes the case Unsupported (skip), as sdpa's unsupported-option rule."""
    from attnconf.errors import Unsupported

    kw = {k: v for k, v in options.items() if k not in OPTION_NAMES or v is not None}
    if x.get("sinks") is not None:
        kw["sinks"] = x["sinks"]
    declared = tuple(getattr(adapter, "varlen_options", ()))
    missing = [n for n in OPTION_NAMES if n in kw and n not in declared]
    if missing:
        raise Unsupported(f"{adapter.name} does not support the packed option(s) {', '.join(missing)} "
                          f"(its varlen_options: {', '.join(declared) or 'none'})")
    if kw.get("window") is not None:
        kw["window"] = tuple(kw["window"])
    lq, lk = kw.pop("max_seqlen_q", None), kw.pop("max_seqlen_k", None)
    return adapter.sdpa_varlen(x["query"], x["key"], x["value"], x["cu_seqlens_q"], x["cu_seqlens_k"],
                               lq, lk, **kw)


def argument_scale(case, positions=None):
    """max |scale · q·k| over the pairs of one sequence (keys of other sequences are never
    multiplied with a query): the logits a correct kernel rounds (tol.rule's argument term)."""
    import numpy as np

    q = np.asarray(case.inputs["query"], np.float64)
    k = np.asarray(case.inputs["key"], np.float64)
    cq = np.asarray(case.inputs["cu_seqlens_q"], np.int64)
    ck = np.asarray(case.inputs["cu_seqlens_k"], np.int64)
    if q.ndim != 3 or k.ndim != 3 or not q.shape[1] or not k.shape[1] or q.shape[1] % k.shape[1]:
        return None
    k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
    scale = case.options.get("scale")
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else float(scale)
    top = 0.0
    for b in range(min(cq.size, ck.size) - 1):
        qs, ks = q[cq[b]:cq[b + 1]], k[ck[b]:ck[b + 1]]
        if qs.size and ks.size:
            top = max(top, float(np.max(np.abs(np.einsum("lhe,she->hls", qs, ks)))))
    return top * abs(scale)


def work(shape, causal=False):
    """The sdpa count of the same sequences (perf.flops): 2·H·(E + Ev)·Σ_b L_b·S_b, halved when causal."""
    from attnconf.flops import sdpa_flops

    return sdpa_flops(shape["B"], shape["H"], shape["L"], shape["S"], shape["E"], shape.get("Ev"), causal=causal)


def bench_inputs(point, seed=0):
    """B sequences of L queries and S keys packed (total_q = B·L): the same work as sdpa's point."""
    import numpy as np

    rng = np.random.default_rng(seed)
    B, H, L, S, E = point.B, point.H, point.L, point.S, point.E
    return {"query": rng.standard_normal((B * L, H, E)), "key": rng.standard_normal((B * S, H, E)),
            "value": rng.standard_normal((B * S, H, E)),
            "cu_seqlens_q": (np.arange(B + 1) * L).astype(np.int32),
            "cu_seqlens_k": (np.arange(B + 1) * S).astype(np.int32)}


def bench_call(adapter, point, seed=0):
    arrays = bench_inputs(point, seed)
    x = {k: (adapter.index_from_numpy(v) if k in INDEX_INPUTS else adapter.from_numpy(v, point.dtype))
         for k, v in arrays.items()}
    return lambda: adapter.sdpa_varlen(x["query"], x["key"], x["value"], x["cu_seqlens_q"], x["cu_seqlens_k"],
                                       point.L, point.S, is_causal=point.causal)


def bench_grid(quick, Ls, dtypes, max_L, max_positions):
    """B = 4 sequences of L = S, up to L = 2048 (float32 and the asked dtypes): packed batches
    whose contiguous twin is sdpa's point (B, H, L, S, E)."""
    H = 2 if quick else 8
    Ls = [L for L in Ls if L <= max(min(max_L, 2048), Ls[0])]
    return [(dtype, 4, H, L, L, 64, causal) for dtype in dtypes for L in Ls for causal in (False, True)
            if not causal or dtype == "float32"]


OPERATION = Operation(
    profile=("attnconf.conformance.checks.profile.varlen",),
    invariants=("attnconf.conformance.checks.invariants.varlen",),
    name="sdpa_varlen", title="packed variable-length attention", spec_file="varlen.md",
    inputs=("query", "key", "value", "cu_seqlens_q", "cu_seqlens_k"), optional_inputs=("sinks",),
    index_inputs=INDEX_INPUTS, options=OPTIONS, outputs=("output", "lse"), optional_outputs=("lse",), output_dtypes=output_dtypes,
    clauses=CLAUSES,
    dtype_clause="varlen.dtype",
    reference="attnconf.operations.sdpa_varlen:compute", natural_scale="attnconf.operations.sdpa_varlen:natural_scale",
    argument_scale=argument_scale,
    case_prefix="sdpa_varlen", golden_file="sdpa_varlen.npz",
    cases="attnconf.reference.varlen_cases:varlen_cases", families="attnconf.reference.varlen_cases:FAMILIES",
    adapter_method="sdpa_varlen", call=call, plugin_flag="--sdpa-varlen",
    function_keywords=("is_causal", "causal_alignment", "scale", "enable_gqa") + OPTION_NAMES,
    function_signature="func(query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *, "
                       "is_causal=False, causal_alignment='bottom_right', scale=None, enable_gqa=False, "
                       "window=None, softcap=None, sinks=None) -> (output, lse)",
    work=work, work_unit="flop", bench_call=bench_call, bench_grid=bench_grid,
    report={"plot": "attention", "length": ("query", 0), "label": "varlen"},
)
