"""ALiBi bias (spec/alibi.md, alibi.bias*, alibi.align.*): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation

OPTIONS = ("num_heads", "query_length", "key_length", "max_bias", "mode", "alignment")
from attnconf.choices import ALIBI_ALIGNMENTS as ALIGNMENTS, ALIBI_MODES as MODES  # noqa: F401 (alibi.bias*, alibi.align.*)


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.alibi import alibi_bias

    return {"output": alibi_bias(**options, precision=precision, exact=exact)}


def natural_scale(inputs, options):
    """alibi.target: |m_h|·max(|d|, 1), the element's own magnitude (1 slope where d = 0)."""
    import numpy as np

    from attnconf.reference.alibi import alibi_slopes, distances

    m = alibi_slopes(options["num_heads"], max_bias=options.get("max_bias", 8.0), exact=True)
    d = distances(options["query_length"], options["key_length"], mode=options.get("mode", "causal"),
                  alignment=options.get("alignment", "bottom_right"))
    return {"output": np.abs(m)[:, None, None] * np.maximum(np.abs(d), 1)[None].astype(np.float64)}


def call(adapter, x, options, dtype):
    opts = dict(options)
    return adapter.alibi_bias(opts.pop("num_heads"), opts.pop("query_length"), opts.pop("key_length"),
                              dtype=dtype, **opts)


def argument_scale(case, positions=None):
    """The power k of each head's slope, (H, 1, 1) (alibi_slopes.argument_scale)."""
    from attnconf.operations.alibi_slopes import argument_scale as slopes

    return slopes(case)[:, None, None]


# its invariants and profile aspects live in its family's modules, named once by alibi_slopes.py
OPERATION = Operation(
    name="alibi_bias", title="ALiBi linear bias", spec_file="alibi.md",
    inputs=(), options=OPTIONS, outputs=("output",),
    clauses=("alibi.inputs", "alibi.slopes", "alibi.target", "alibi.dtype"), dtype_clause="alibi.dtype",
    reference="attnconf.operations.alibi_bias:compute",
    natural_scale="attnconf.operations.alibi_bias:natural_scale",
    argument_scale=argument_scale,
    case_prefix="alibi", golden_file="alibi_bias.npz",
    cases="attnconf.reference.position_cases:alibi_bias_cases",
    families="attnconf.reference.position_cases:ALIBI_BIAS_FAMILIES",
    adapter_method="alibi_bias", call=call, plugin_flag="--alibi-bias",
    function_keywords=("max_bias", "mode", "alignment", "dtype"),
    function_signature=("func(num_heads, query_length, key_length, *, max_bias=8.0, mode='causal', "
                        "alignment='bottom_right'[, dtype=...])"),
)
