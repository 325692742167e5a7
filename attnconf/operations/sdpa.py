"""Scaled dot-product attention (spec/sdpa.md): the registry entry."""
from __future__ import annotations

import importlib

# The kernel options of spec/sdpa_options.md (sdpa.opt.*), in the adapter signature's order. window
# softcap and chunk travel as case options (JSON); the others as case inputs: sinks and alibi_slopes in
# the case dtype, query_offset/key_lengths/query_lengths as integers (adapter.index_from_numpy).
from attnconf.choices import SDPA_INDEX_INPUTS as INDEX_INPUTS, SDPA_OPTION_INPUTS as OPTION_INPUTS
from attnconf.choices import SDPA_OPTION_NAMES as OPTION_NAMES
from attnconf.operations import Operation

SDPA_OPTIONS = ("is_causal", "causal_alignment", "scale", "enable_gqa", "fully_masked")
FUNCTION_KEYWORDS = ("attn_mask", "is_causal", "scale", "enable_gqa") + OPTION_NAMES
BASE_CLAUSES = ("sdpa.layout", "sdpa.logits", "sdpa.softmax", "sdpa.output", "sdpa.dtype")


def _options(inputs, options) -> dict:
    """The case's keyword options plus its option inputs that are present (sdpa.opt.*)."""
    return dict(options, **{n: inputs[n] for n in OPTION_INPUTS if inputs.get(n) is not None})


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.sdpa import sdpa

    return {"output": sdpa(inputs["query"], inputs["key"], inputs["value"],
                           attn_mask=inputs.get("attn_mask"), **_options(inputs, options),
                           precision=precision, exact=exact)}


def natural_scale(inputs, options):
    _sdpa = importlib.import_module("attnconf.reference.sdpa")  # the package attribute is the function

    pb = _sdpa.prepare(inputs["query"], inputs["key"], inputs["value"],
                       attn_mask=inputs.get("attn_mask"), **_options(inputs, options))
    return {"output": _sdpa.natural_scale(pb)}


def used_options(x, options) -> tuple:
    """The sdpa.opt.* options a case sets (not None), in OPTION_NAMES order."""
    return tuple(n for n in OPTION_NAMES if options.get(n) is not None or x.get(n) is not None)


def call(adapter, x, options, dtype):
    """adapter.sdpa on native inputs. The unsupported-option rule: an option of sdpa.opt.* is
    passed only when the case sets it, and only to an adapter whose Capabilities.sdpa_options
    lists it; otherwise the case is Unsupported (skip), whatever the adapter's signature."""
    from attnconf.errors import Unsupported

    used = used_options(x, options)
    declared = tuple(getattr(adapter.capabilities, "sdpa_options", ()))
    missing = [n for n in used if n not in declared]
    if missing:
        raise Unsupported(f"{adapter.name} does not support the sdpa option(s) {', '.join(missing)} "
                          f"(its Capabilities.sdpa_options: {', '.join(declared) or 'none'})")
    kwargs = {k: v for k, v in options.items() if k not in OPTION_NAMES or v is not None}
    kwargs.update({n: x[n] for n in OPTION_INPUTS if x.get(n) is not None})
    return adapter.sdpa(x["query"], x["key"], x["value"], attn_mask=x.get("attn_mask"), **kwargs)


def case_claims(caps, case) -> str:
    """The claim of Capabilities that `case` needs and `caps` does not make ("" if none): the
    mask kind (mask_kinds), a mask with is_causal (mask_and_causal), causal alignment
    (causal_alignments), grouped heads (gqa), Ev != E (value_dim_differs), an explicit scale
    (explicit_scale), fully-masked rows under another policy than zero (fully_masked) and the
    kernel options it sets (sdpa_options). The planner skips such a
    case before the implementation is called."""
    x, o = case.inputs, case.options
    mask = x.get("attn_mask")
    if mask is not None:
        kind = "bool" if str(getattr(mask, "dtype", "")) == "bool" else "float"
        if kind not in caps.mask_kinds:
            return f"declares mask_kinds={tuple(caps.mask_kinds)!r}, the case has a {kind} mask"
        if o.get("is_causal") and not caps.mask_and_causal:
            return "declares mask_and_causal=False, the case has a mask together with is_causal"
    if o.get("is_causal") and not caps.causal_alignments:
        return "takes no is_causal, the case is causal"
    q, k, v = x.get("query"), x.get("key"), x.get("value")
    if q is not None and k is not None and q.ndim >= 3 and k.ndim >= 3 and q.shape[-3] != k.shape[-3] \
            and not caps.gqa:
        return "declares no GQA (gqa=False), the case has fewer key/value heads than query heads"
    if q is not None and v is not None and v.shape[-1] != q.shape[-1] and not caps.value_dim_differs:
        return "declares value_dim_differs=False, the case has Ev != E"
    if o.get("scale") is not None and not caps.explicit_scale:
        return "declares explicit_scale=False, the case sets an explicit scale"
    if "sdpa.fully_masked" in getattr(case, "clauses", ()) and caps.fully_masked != "zero":
        # the canonical zero is what the goldens hold; the declared alternative is the profile's to check
        return f"declares fully_masked={caps.fully_masked!r}, the case has fully-masked rows"
    missing = [n for n in used_options(x, o) if n not in tuple(getattr(caps, "sdpa_options", ()) or ())]
    if missing:
        return f"does not declare the sdpa option(s) {', '.join(missing)} (Capabilities.sdpa_options)"
    return ""


def argument_scale(case, positions=None):
    """max |scale * q.k| over the case (GQA heads mapped as sdpa.gqa): the logits a correct
    kernel rounds (tol.rule's argument term); None when the shapes give no logits."""
    import numpy as np

    q = np.asarray(case.inputs["query"], dtype=np.float64)
    k = np.asarray(case.inputs["key"], dtype=np.float64)
    if q.size == 0 or k.size == 0:
        return None
    if k.shape[1] != q.shape[1] and k.shape[1] and q.shape[1] % k.shape[1] == 0:
        k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
    scale = case.options.get("scale")
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else float(scale)
    try:
        arg = float(np.max(np.abs(q @ np.swapaxes(k, -1, -2)))) * abs(scale)
    except ValueError:  # shapes the reference rejects: no argument term
        return None
    # a soft-cap (sdpa.opt.softcap) leaves this term as it is: c·tanh(s/c) passes the rounding
    # error of a product, ~eps·max|s| for every logit of the case, on undamped where s/c is small
    slopes = case.inputs.get("alibi_slopes")
    if slopes is not None:  # the bias m·|p − j| is rounded too (sdpa.opt.alibi): its largest value
        arg += float(np.max(np.abs(slopes))) * (q.shape[2] + k.shape[2] + _largest(case, "query_offset"))
    return arg


def _largest(case, name) -> int:
    import numpy as np

    value = case.inputs.get(name)
    return 0 if value is None else int(np.max(value))


def work(shape, causal=False):
    """2·B·H·L·S·E + 2·B·H·L·S·Ev, halved when causal (perf.flops)."""
    from attnconf.flops import sdpa_flops

    return sdpa_flops(shape["B"], shape["H"], shape["L"], shape["S"], shape["E"], shape.get("Ev"), causal=causal)


def bench_inputs(point, seed=0):
    """query, key, value of the point's shapes: NumPy float64, standard normal (perf.flops)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    B, H, L, S, E = point.B, point.H, point.L, point.S, point.E
    return {"query": rng.standard_normal((B, H, L, E)), "key": rng.standard_normal((B, H, S, E)),
            "value": rng.standard_normal((B, H, S, E))}, rng


def bench_call(adapter, point, seed=0):
    arrays, _ = bench_inputs(point, seed)
    x = {k: adapter.from_numpy(v, point.dtype) for k, v in arrays.items()}
    return lambda: adapter.sdpa(x["query"], x["key"], x["value"], is_causal=point.causal)


def bench_grid(quick, Ls, dtypes, max_L, max_positions, *, longest=None):
    """The scaling series L = S doubling (E = 64, H = 2 with --quick, else 8) in each dtype, up to
    `longest` (None: every L); sdpa's own adds the causal series and, without --quick, E = 128
    and H = 1, 16 at L = min(1024, max_L), in float32."""
    H = 2 if quick else 8
    Ls = [L for L in Ls if longest is None or L <= max(min(max_L, longest), Ls[0])]
    points = []
    for dtype in dtypes:
        points += [(dtype, 1, H, L, L, 64, False) for L in Ls]
        if longest is None and dtype == "float32":
            points += [(dtype, 1, H, L, L, 64, True) for L in Ls]      # causal halves the work
            if not quick:
                mid = min(1024, max_L)
                points += [(dtype, 1, H, mid, mid, 128, False)] + [(dtype, 1, h, mid, mid, 64, False)
                                                                     for h in (1, 16)]
    return points


def bench_grid_to_2048(quick, Ls, dtypes, max_L, max_positions):
    """bench_grid's scaling series only, up to L = 2048: the costlier operations."""
    return bench_grid(quick, Ls, dtypes, max_L, max_positions, longest=2048)


OPERATION = Operation(
    profile=("attnconf.conformance.checks.profile.sdpa", "attnconf.conformance.checks.profile.sdpa_options"),
    invariants=("attnconf.conformance.checks.invariants.sdpa", "attnconf.conformance.checks.invariants.sdpa_options"),
    name="sdpa", title="scaled dot-product attention", spec_file="sdpa.md",
    inputs=("query", "key", "value"), optional_inputs=("attn_mask",) + OPTION_INPUTS, mask_inputs=("attn_mask",),
    index_inputs=INDEX_INPUTS,
    options=SDPA_OPTIONS + ("window", "softcap", "chunk"), outputs=("output",), clauses=BASE_CLAUSES, dtype_clause="sdpa.dtype",
    reference="attnconf.operations.sdpa:compute", natural_scale="attnconf.operations.sdpa:natural_scale",
    argument_scale=argument_scale,
    case_prefix="sdpa", golden_file="sdpa.npz",
    # the catalogue's sdpa cases and families, then the kernel options' (sdpa.opt.*)
    cases="attnconf.reference.sdpa_option_cases:sdpa_cases",
    families="attnconf.reference.sdpa_option_cases:FAMILIES",
    case_claims=case_claims,
    adapter_method="sdpa", call=call, plugin_flag="--sdpa", function_keywords=FUNCTION_KEYWORDS,
    function_signature="func(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False, "
                       "window=None, softcap=None, sinks=None, alibi_slopes=None, query_offset=None, "
                       "key_lengths=None, query_lengths=None, chunk=None)",
    function_gradient="sdpa_vjp",
    work=work, work_unit="flop", bench_call=bench_call, bench_grid=bench_grid,
    report={"plot": "attention", "length": ("query", -2), "headline": True},
)
