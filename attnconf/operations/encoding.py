"""Sinusoidal positional encodings (spec/encoding.md): the registry entry."""
from __future__ import annotations

import importlib

from attnconf.operations import Operation

OPTIONS = ("num_positions", "dim", "base", "offset", "layout", "frequencies")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.encoding import sinusoidal_encoding

    return {"output": sinusoidal_encoding(**options, precision=precision, exact=exact)}


def natural_scale(inputs, options):
    """1 for every element (tol.metric: an encoding's values are bounded by 1)."""
    import numpy as np

    ref_enc = importlib.import_module("attnconf.reference.encoding")

    n, d, _, _ = ref_enc.check_options(options.get("num_positions"), options.get("dim"),
                                       options.get("base", 10000.0), options.get("offset", 0),
                                       options.get("layout", "interleaved"),
                                       options.get("frequencies", "vaswani"), False, None)
    return {"output": np.ones((n, d))}


def call(adapter, x, options, dtype):
    opts = dict(options)
    return adapter.sinusoidal_encoding(opts.pop("num_positions"), opts.pop("dim"), dtype=dtype, **opts)


def case_claims(caps, case) -> str:
    """The claim the case needs that `caps` does not make: its layout (encoding_layouts), its
    frequencies (encoding_frequencies), a nonzero offset (encoding_offset), a base other than
    10000 (encoding_base)."""
    o = case.options
    for option, claim in (("layout", "encoding_layouts"), ("frequencies", "encoding_frequencies")):
        value = o.get(option)
        if value is not None and value not in getattr(caps, claim):
            return f"declares {claim}={tuple(getattr(caps, claim))!r}, the case needs {option}={value!r}"
    if o.get("offset", 0) and not caps.encoding_offset:
        return "declares encoding_offset=False, the case starts at a nonzero offset"
    if float(o.get("base", 10000.0)) != 10000.0 and not caps.encoding_base:
        return "declares encoding_base=False, the case uses a base other than 10000"
    return ""


def positions(case):
    """Positions offset + t of each output row (the per-position baseline, tol.rule)."""
    import numpy as np

    n = int(case.options.get("num_positions", case.expected["output"].shape[-2]))
    return float(case.options.get("offset", 0)) + np.arange(n, dtype=np.float64)


def argument_scale(case, positions=None):
    """The angle p·ω_0 = p of each row (ω_0 = 1 for every frequency family)."""
    return None if positions is None else positions[:, None]


def work(shape, causal=False):
    """Encodings are reported in table entries (num_positions · dim) per second."""
    return float(shape["L"]) * shape["E"]


def bench_call(adapter, point, seed=0):
    return lambda: adapter.sinusoidal_encoding(point.L, point.E, dtype=point.dtype)


def bench_grid(quick, Ls, dtypes, max_L, max_positions):
    """Tables of 1000, 10 000, … positions up to max_positions, dim 512 (--quick: 64), float32."""
    points, n = [], 1000
    while n <= max_positions:
        points.append(("float32", 1, 1, n, n, 64 if quick else 512, False))
        n *= 10
    return points


OPERATION = Operation(
    profile=("attnconf.conformance.checks.profile.encoding",),
    invariants=("attnconf.conformance.checks.invariants.encoding",),
    name="sinusoidal_encoding", title="sinusoidal positional encoding", spec_file="encoding.md",
    inputs=(), options=OPTIONS, outputs=("output",), case_claims=case_claims,
    clauses=("enc.positions", "enc.target", "enc.dtype"), dtype_clause="enc.dtype",
    reference="attnconf.operations.encoding:compute", natural_scale="attnconf.operations.encoding:natural_scale",
    positions=positions, argument_scale=argument_scale,
    case_prefix="enc", golden_file="encoding.npz",
    cases="attnconf.reference.encoding_cases:encoding_cases", families="attnconf.reference.encoding_cases:ENCODING_FAMILIES",
    adapter_method="sinusoidal_encoding", call=call, plugin_flag="--encoding",
    function_keywords=("base", "offset", "dtype"),
    function_signature="func(num_positions, dim, *, base=10000.0, offset=0[, dtype=...])",
    work=work, work_unit="entry", bench_call=bench_call, bench_grid=bench_grid,
    report={"plot": "encoding"},
)
