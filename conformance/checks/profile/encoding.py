"""Profile aspects of sinusoidal encodings (enc.*): layout/frequency variants and offsets.
Named by the registry entry attnconf/operations/encoding.py (`profile=`); run by checks.profile."""
from __future__ import annotations

from attnconf.conformance.checks.profile import Aspect, _Declined, _declinable, _fmt, _probe, judge_table, match
from attnconf.errors import declined_message


def _dtype_probe_encoding(adapter, dt):
    return adapter.sinusoidal_encoding(4, 4, dtype=dt)


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------
_VARIANTS = [(lay, fr) for lay in ("interleaved", "concat", "cos_first") for fr in ("vaswani", "t2t")]


def _ref_table(n, dim, **opts):
    from attnconf import reference

    return reference.compute("sinusoidal_encoding", {}, dict(num_positions=n, dim=dim, **opts))["output"]


def _run_table(adapter, dtype, n, dim, **opts):
    return _probe(adapter, lambda: adapter.sinusoidal_encoding(n, dim, dtype=dtype, **opts))


def _encoding_variants(adapter, dtype):
    caps, seen, evidence = adapter.capabilities, {}, []
    for lay in caps.encoding_layouts:
        for fr in caps.encoding_frequencies:
            key = f"{lay}/{fr}"
            try:
                out, how = _run_table(adapter, dtype, 64, 8, layout=lay, frequencies=fr)
            except _Declined as exc:    # this variant only: the others are still probed
                seen[key] = declined_message(str(exc))
                evidence.append(f"{key}: {seen[key]}")
                continue
            if out is None:
                seen[key] = "rejects"
                evidence.append(f"{key}: {how}")
                continue
            cands = {f"{a}/{b}": _ref_table(64, 8, layout=a, frequencies=b) for a, b in _VARIANTS}
            value, _ = match(out, {key: cands.pop(key), **cands}, 1.0)
            seen[key] = value
            evidence.append(f"{key} -> {value}")
    return {"value": seen, "evidence": "requested -> detected (64 positions, d=8): " + "; ".join(evidence)}


@_declinable
def _encoding_offset(adapter, dtype):
    lay, fr = adapter.capabilities.encoding_layouts[0], adapter.capabilities.encoding_frequencies[0]
    out, how = _run_table(adapter, dtype, 8, 8, offset=5, layout=lay, frequencies=fr)
    if out is None:
        return {"value": "rejects", "evidence": f"offset=5: {how}"}
    cands = {name: _ref_table(8, 8, offset=o, layout=lay, frequencies=fr)
             for name, o in (("supported", 5), ("ignored", 0), ("off_by_one_up", 6), ("off_by_one_down", 4))}
    value, dist = match(out, cands, 1.0)
    return {"value": value, "evidence": f"offset=5 ({lay}/{fr}): distance to {_fmt(dist)}"}


def _variant_ids(caps):
    variants = _VARIANTS if caps is None else [(lay, fr) for lay in caps.encoding_layouts for fr in caps.encoding_frequencies]
    return [f"{lay}/{fr}" for lay, fr in variants]


def _judge_variants(adapter, found):
    def wrong(key, got):
        lay, fr = key.split("/")
        return f"asked for layout {lay!r} with {fr!r} frequencies, the table matches {got!r}"

    return judge_table(adapter, found, clause=lambda key: f"enc.layout.{key.split('/')[0]}",
                       also=lambda key: (f"enc.frequencies.{key.split('/')[1]}",), wrong=wrong)


ASPECTS = (
    Aspect("encoding_variants", "sinusoidal_encoding", _encoding_variants, judge=_judge_variants, ids=_variant_ids),
    Aspect("encoding_offset", "sinusoidal_encoding", _encoding_offset, "enc.positions", "supported", ("rejects",)),
)

OUTPUT_DTYPE = _dtype_probe_encoding
