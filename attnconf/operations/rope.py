"""Rotary position embeddings (spec/rope.md): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation

OPTIONS = ("base", "rotary_dim", "scaling", "layout")
# rope.scaling.*: the rope_type values of a `scaling` dict (HF transformers' names)
from attnconf.choices import ROPE_TYPES  # noqa: F401
BASE_CLAUSES = ("rope.inputs", "rope.positions", "rope.frequencies", "rope.rotation", "rope.target",
                "rope.scale", "rope.dtype")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.rope import rotary_embedding

    return {"output": rotary_embedding(inputs["x"], inputs["positions"], **options,
                                       precision=precision, exact=exact)}


def natural_scale(inputs, options):
    """rope.scale: the pair's norm (times the YaRN attention factor); |x| where x passes through."""
    from attnconf.reference.rope import natural_scale as scale

    return {"output": scale(inputs["x"], inputs["positions"], **options)}


def call(adapter, x, options, dtype):
    return adapter.rotary_embedding(x["x"], x["positions"], **options)


def case_claims(caps, case) -> str:
    """The claim the case needs that `caps` does not make: its pairing layout (rope_layouts),
    its scaling's rope_type (rope_scaling)."""
    layout = case.options.get("layout")
    if layout is not None and layout not in caps.rope_layouts:
        return f"declares rope_layouts={tuple(caps.rope_layouts)!r}, the case needs layout={layout!r}"
    scaling = case.options.get("scaling")
    kind = scaling.get("rope_type") if isinstance(scaling, dict) else None
    if kind is not None and kind not in caps.rope_scaling:
        return f"declares rope_scaling={tuple(caps.rope_scaling)!r}, the case needs rope_type={kind!r}"
    return ""


def positions(case):
    """The position of each token row T (the per-position baseline, tol.rule); with per-batch
    positions (B, T) the largest over the batch, whose angle bounds the row's baseline error."""
    import numpy as np

    pos = np.asarray(case.inputs["positions"]).reshape(-1, case.inputs["x"].shape[2])
    return pos.max(axis=0).astype(np.float64)


def argument_scale(case, positions=None):
    """|θ| = p·ω_i of every output channel (0 where channels pass through): the angle a correct
    implementation rounds (tol.rule's argument term), broadcastable to the output."""
    from attnconf.reference.rope import angles

    return angles(case.inputs["x"].shape, case.inputs["positions"], **case.options)


def work(shape, causal=False):
    """Bytes moved (perf.bytes): x read and the output written, 2·B·H·T·E·itemsize(dtype), plus
    the positions read, T·8 (int64, whatever integer type an implementation takes)."""
    from attnconf.dtypes import numpy_dtype

    itemsize = numpy_dtype(shape.get("dtype", "float64")).itemsize
    return 2.0 * shape["B"] * shape["H"] * shape["L"] * shape["E"] * itemsize + 8.0 * shape["L"]


def bench_call(adapter, point, seed=0):
    """x (B, H, T, E) standard normal in the point's dtype, positions 0 … T−1, default options."""
    import numpy as np

    x = np.random.default_rng(seed).standard_normal((point.B, point.H, point.L, point.E))
    x, pos = adapter.from_numpy(x, point.dtype), adapter.index_from_numpy(np.arange(point.L))
    return lambda: adapter.rotary_embedding(x, pos)


def bench_grid(quick, Ls, dtypes, max_L, max_positions):
    """T doubling over the sweep's Ls at B = 1, H = 32, E = 128 (Llama's query shape; --quick:
    H = 8, E = 64), in each dtype; --max-L 8192 reaches the reference's target 3 shape."""
    H, E = (8, 64) if quick else (32, 128)
    return [(dtype, 1, H, T, T, E, False) for dtype in dtypes for T in Ls]


OPERATION = Operation(
    profile=("attnconf.conformance.checks.profile.rope",),
    invariants=("attnconf.conformance.checks.invariants.rope",),
    name="rotary_embedding", title="rotary position embedding", spec_file="rope.md",
    inputs=("x", "positions"), index_inputs=("positions",), options=OPTIONS, outputs=("output",),
    case_claims=case_claims,
    clauses=BASE_CLAUSES, dtype_clause="rope.dtype",
    reference="attnconf.operations.rope:compute", natural_scale="attnconf.operations.rope:natural_scale",
    positions=positions, argument_scale=argument_scale,
    case_prefix="rope", golden_file="rope.npz",
    cases="attnconf.reference.rope_cases:rope_cases", families="attnconf.reference.rope_cases:ROPE_FAMILIES",
    adapter_method="rotary_embedding", call=call, plugin_flag="--rope",
    function_keywords=("base", "rotary_dim", "scaling"),
    function_signature="func(x, positions, *, base=10000.0, rotary_dim=None, scaling=None)",
    work=work, work_unit="byte", bench_call=bench_call, bench_grid=bench_grid,
)
