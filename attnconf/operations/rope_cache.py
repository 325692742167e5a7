"""RoPE from given cos/sin caches (spec/rope.md, rope.cache.*): the registry entry.

ONNX RotaryEmbedding-23 semantics: cache rows indexed by per-batch int64 position_ids, half or
interleaved pairing, a rotary dimension with pass-through channels."""
from __future__ import annotations

from attnconf.operations import Operation

OPTIONS = ("rotary_dim", "layout")
INPUTS = ("x", "cos_cache", "sin_cache", "position_ids")
CLAUSES = ("rope.cache.inputs", "rope.cache.lookup", "rope.cache.rotation", "rope.cache.scale", "rope.cache.dtype")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.rope_cache import rope_cache

    return {"output": rope_cache(inputs["x"], inputs["cos_cache"], inputs["sin_cache"], inputs["position_ids"],
                                 **options, precision=precision, exact=exact)}


def natural_scale(inputs, options):
    from attnconf.reference.rope_cache import natural_scale as scale

    return {"output": scale(inputs["x"], inputs["cos_cache"], inputs["sin_cache"], inputs["position_ids"],
                            **options)}


def call(adapter, x, options, dtype):
    return adapter.rope_cache(x["x"], x["cos_cache"], x["sin_cache"], x["position_ids"], **options)


def work(shape, causal=False):
    """Bytes moved (perf.bytes): x read and the output written, the cache rows read, the ids."""
    from attnconf.dtypes import numpy_dtype

    itemsize = numpy_dtype(shape.get("dtype", "float64")).itemsize
    b, h, t, e = shape["B"], shape["H"], shape["L"], shape["E"]
    return 2.0 * b * h * t * e * itemsize + b * t * e * itemsize + 8.0 * b * t


OPERATION = Operation(
    invariants=("attnconf.conformance.checks.invariants.rope_cache",),
    profile=("attnconf.conformance.checks.profile.rope_cache",),
    name="rope_cache", title="cache-fed rotary embedding", spec_file="rope.md",
    inputs=INPUTS, index_inputs=("position_ids",), options=OPTIONS, outputs=("output",),
    clauses=CLAUSES, dtype_clause="rope.cache.dtype",
    reference="attnconf.operations.rope_cache:compute", natural_scale="attnconf.operations.rope_cache:natural_scale",
    case_prefix="rope_cache", golden_file="rope_cache.npz",
    cases="attnconf.reference.rope_cache_cases:rope_cache_cases",
    families="attnconf.reference.rope_cache_cases:FAMILIES",
    adapter_method="rope_cache", call=call, plugin_flag="--rope-cache",
    function_keywords=("rotary_dim", "layout"),
    function_signature="func(x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout='half')",
    work=work, work_unit="byte",
)
