"""Profile aspects of packed variable-length attention (spec section `varlen`): what an empty
sequence gives (output and LSE: 0 and −∞, NaN, or something else) and which causal alignment is
applied inside packed sequences (bottom-right per sequence, top-left per sequence, or the causal
rule over the packed axis). Named by the sdpa_varlen registry entry (`profile=`); run by the
core, attnconf.conformance.checks.profile.

Candidates are the reference (attnconf.reference.compute) with the alternative's options, or a
float64 NumPy evaluation of the alternative (the `global` causal rule).
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _fmt, _named, _probe, match


def _arrays(seed, lq, lk, h=2, e=4):
    rng = np.random.default_rng(seed)
    q = np.round(rng.uniform(-1, 1, (sum(lq), h, e)), 3)
    k = np.round(rng.uniform(-1, 1, (sum(lk), h, e)), 3)
    v = np.round(rng.uniform(-1, 1, (sum(lk), h, e)) + 1.5, 3)
    cq = np.concatenate([[0], np.cumsum(lq)]).astype(np.int32)
    ck = np.concatenate([[0], np.cumsum(lk)]).astype(np.int32)
    return q, k, v, cq, ck


def _run(adapter, dtype, q, k, v, cq, ck, **kw):
    """(output, lse) float64 of one probe call, or (None, None, outcome)."""
    box = {}

    def call():
        out, lse = adapter.sdpa_varlen(*(adapter.from_numpy(a, dtype) for a in (q, k, v)),
                                       adapter.index_from_numpy(cq), adapter.index_from_numpy(ck),
                                       int(np.diff(cq).max()), int(np.diff(ck).max()), **kw)
        box["lse"] = None if lse is None else np.asarray(adapter.to_numpy(lse)).astype(np.float64)
        return out

    out, how = _probe(adapter, call)
    return out, box.get("lse"), how


def _ref(q, k, v, cq, ck, **kw):
    from attnconf import reference

    res = reference.compute("sdpa_varlen", {"query": q, "key": k, "value": v, "cu_seqlens_q": cq,
                                            "cu_seqlens_k": ck}, kw)
    return res["output"], res["lse"]


def _unsupported(adapter):
    if "sdpa_varlen" not in adapter.capabilities.operations:
        return {"value": "unsupported", "evidence": "no sdpa_varlen"}
    return None


# --- an empty sequence ---------------------------------------------------------------------------
@_declinable
def _empty(adapter, dtype):
    if (no := _unsupported(adapter)):
        return no
    lq, lk = [2, 3, 1], [3, 0, 2]          # sequence 1: three queries, no key
    q, k, v, cq, ck = _arrays(41, lq, lk)
    out, lse, how = _run(adapter, dtype, q, k, v, cq, ck)
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": how}
    rows = slice(int(cq[1]), int(cq[2]))
    got_o, got_l = out[rows], (None if lse is None else lse[rows])
    if np.all(got_o == 0) and (got_l is None or np.all(np.isneginf(got_l))):   # no LSE: the output decides
        value = "zero"
    elif np.isnan(got_o).any() or (got_l is not None and np.isnan(got_l).any()):
        value = _named("varlen_empty", "nan")
    else:
        value = "other"
    lse_txt = "none" if got_l is None else np.array2string(got_l[0], precision=3)
    return {"value": value, "evidence": f"lengths {lq}/{lk}: sequence 1's output row 0 "
                                        f"{np.array2string(got_o[0, 0], precision=3)}, lse {lse_txt}"}


# --- the causal alignment inside packed sequences ------------------------------------------------
def _global_causal(q, k, v):
    """The causal rule on the packed axis (j <= i over all rows), one sequence: `global`."""
    s = np.einsum("lhe,she->hls", q, k) / np.sqrt(q.shape[-1])
    s = np.where(np.arange(k.shape[0])[None, None, :] <= np.arange(q.shape[0])[None, :, None], s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("hls,she->lhe", p, v)


@_declinable
def _causal(adapter, dtype):
    if (no := _unsupported(adapter)):
        return no
    lq, lk = [2, 3], [5, 4]                 # L_b < S_b in both: the alignments differ in every row
    q, k, v, cq, ck = _arrays(43, lq, lk)
    out, _, how = _run(adapter, dtype, q, k, v, cq, ck, is_causal=True)
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error",
                "evidence": f"is_causal with the default alignment: {how}"}
    cands = {"bottom_right": _ref(q, k, v, cq, ck, is_causal=True)[0],
             _named("varlen_causal", "top_left"): _ref(q, k, v, cq, ck, is_causal=True,
                                                       causal_alignment="top_left")[0],
             _named("varlen_causal", "global"): _global_causal(q, k, v)}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"is_causal, lengths {lq}/{lk}: distance to {_fmt(dist)}"}


def _output_dtype(adapter, dtype):
    q, k, v, cq, ck = _arrays(1, [2], [2], h=1, e=2)
    out, _ = adapter.sdpa_varlen(*(adapter.from_numpy(a, dtype) for a in (q, k, v)),
                                 adapter.index_from_numpy(cq), adapter.index_from_numpy(ck), 2, 2)
    return out


_U = ("unsupported",)
ASPECTS = (
    Aspect("varlen_empty", "sdpa_varlen", _empty, "varlen.empty", "zero", _U),
    Aspect("varlen_causal", "sdpa_varlen", _causal, "varlen.causal", "bottom_right", _U),
)
OUTPUT_DTYPE = _output_dtype
