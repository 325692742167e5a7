"""Profile aspects of ALiBi (alibi.*): the slope rule for a head count that is not a power of two,
the form of the causal bias (causal | row_constant | symmetric | sign_flipped) and the alignment
when L ≠ S. Named by the registry entry attnconf/operations/alibi_slopes.py (`profile=`, for both
ALiBi operations); run by checks.profile."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import (Aspect, _alternative, _declinable, _fmt, _named, _probe,
                                                 judge_table, match)


def _ref(name, **options):
    from attnconf import reference

    return reference.compute(name, {}, options, exact=True)["output"]


def _dtype_probe(adapter, dt):
    return adapter.alibi_slopes(4, dtype=dt)


@_declinable
def _slopes(adapter, dtype):
    """12 heads: the paper's 8 + 4 odd slopes of 16, or 2^(−8k/12) for every k, compared in log2."""
    out, how = _probe(adapter, lambda: adapter.alibi_slopes(12, max_bias=8.0, dtype=dtype))
    if out is None:
        return {"value": "rejects", "evidence": f"alibi_slopes(12): {how}"}
    naive = np.exp2(-8.0 * np.arange(1, 13) / 12)
    with np.errstate(divide="ignore", invalid="ignore"):
        value, dist = match(np.log2(np.abs(out)), {"paper": np.log2(_ref("alibi_slopes", num_heads=12, max_bias=8.0)),
                                                   _named("alibi_slopes", "naive_slopes"): np.log2(naive)}, 1.0)
    return {"value": value, "evidence": f"alibi_slopes(12), log2 distance to {_fmt(dist)}"}


def _bias_opts(H, L, S, mode, alignment):
    return dict(num_heads=H, query_length=L, key_length=S, max_bias=8.0, mode=mode, alignment=alignment)


def _run_bias(adapter, dtype, **opts):
    o = dict(opts)
    return _probe(adapter, lambda: adapter.alibi_bias(o.pop("num_heads"), o.pop("query_length"),
                                                      o.pop("key_length"), dtype=dtype, **o))


@_declinable
def _causal_form(adapter, dtype):
    """mode="causal" at L = S = 6, 4 heads: −m·(i − j), or the row-constant m·j (any bias a per-row
    constant away: BLOOM's m·j, keras-hub's m·(j − S + 1)), −m·|i − j|, or +m·(i − j)."""
    if "causal" not in adapter.capabilities.alibi_modes:
        return {"value": "rejects", "evidence": f"declares alibi_modes {adapter.capabilities.alibi_modes}"}
    align = (adapter.capabilities.alibi_alignments or ("bottom_right",))[0]
    opts = _bias_opts(4, 6, 6, "causal", align)
    out, how = _run_bias(adapter, dtype, **opts)
    if out is None:
        return {"value": "rejects", "evidence": f"causal bias (H=4, L=S=6): {how}"}
    causal = _ref("alibi_bias", **opts)
    cands = {"causal": causal, _named("alibi_causal_form", "symmetric"): _ref("alibi_bias", **dict(opts, mode="symmetric")),
             _named("alibi_causal_form", "sign_flipped"): -causal}
    scale = float(np.abs(causal).max())
    value, dist = match(out, cands, scale)
    if value == "other" and out.shape == causal.shape:
        shifted = out - causal                   # a per-row constant: the same softmax, not the same bias
        row_const = float(np.max(np.abs(shifted - shifted[..., :1])))
        dist["row_constant"] = row_const
        if row_const <= 1e-2 * scale:
            value = _named("alibi_causal_form", "row_constant")
    return {"value": value, "evidence": f"mode causal, H=4, L=S=6: distance to {_fmt(dist)}"}


@_declinable
def _alignment(adapter, dtype):
    """Each claimed alignment asked for at L = 3, S = 8, matched against both."""
    caps, seen, evidence = adapter.capabilities, {}, []
    mode = next((m for m in ("causal", "symmetric") if m in caps.alibi_modes), None)
    if mode is None:
        return {"value": {}, "evidence": f"no alignment-dependent mode among alibi_modes {caps.alibi_modes}"}
    for align in caps.alibi_alignments:
        other = "top_left" if align == "bottom_right" else "bottom_right"
        opts = _bias_opts(4, 3, 8, mode, align)
        out, how = _run_bias(adapter, dtype, **opts)
        if out is None:
            seen[align], _ = "rejects", evidence.append(f"{align}: {how}")
            continue
        cands = {align: _ref("alibi_bias", **opts),
                 _alternative(f"alibi.align.{align}", other): _ref("alibi_bias", **dict(opts, alignment=other))}
        seen[align], dist = match(out, cands, float(np.abs(cands[align]).max()))
        evidence.append(f"{align} -> {seen[align]} ({_fmt(dist)})")
    return {"value": seen, "evidence": f"requested -> detected (mode {mode}, L=3, S=8): " + "; ".join(evidence)}


def _judge_alignment(adapter, found):
    return judge_table(adapter, found, clause=lambda key: f"alibi.align.{key}",
                       wrong=lambda key, got: f"alibi.align.{key}: asked for {key}, the bias is aligned {got} "
                                              f"({found['evidence']})")


ASPECTS = (
    Aspect("alibi_slopes", "alibi_slopes", _slopes, "alibi.slopes", "paper", ("rejects",)),
    Aspect("alibi_causal_form", "alibi_bias", _causal_form, "alibi.bias", "causal", ("rejects",)),
    Aspect("alibi_alignment", "alibi_bias", _alignment, judge=_judge_alignment,
           ids=lambda caps: caps.alibi_alignments if caps is not None else ("top_left", "bottom_right")),
)

OUTPUT_DTYPE = _dtype_probe
