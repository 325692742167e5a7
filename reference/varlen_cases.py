"""The golden cases and calibration families of `sdpa_varlen` (spec section `varlen`).

For what: packed batches with sequences of different lengths, empty ones (no queries, no keys,
both), more sequences than query rows, padding after the last sequence, both causal alignments,
GQA, and the sdpa kernel options window, softcap and sinks per sequence. Inputs only: expected
values come from the reference (exact=True). cu_seqlens are int32 arrays, the kernels' dtype.
Must not: hold expected numbers; import a framework.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import cases as _cases

FAMILY = {"packed": "varlen-packed", "causal": "varlen-causal", "empty": "varlen-empty",
          "options": "varlen-options"}


def cu_seqlens(lengths) -> np.ndarray:
    """(B + 1,) int32 offsets of sequences of `lengths` packed end to end."""
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)


def varlen_case(case_id: str, q_lens, k_lens=None, *, H=2, Hkv=None, E=8, Ev=None, pad_q=0, pad_k=0,
                is_causal=False, alignment="bottom_right", scale=None, window=None, softcap=None,
                sinks=False, logits=None, family="", description="") -> _cases.Case:
    """One packed case: sequences with `q_lens` queries and `k_lens` keys (default: the same),
    `pad_q` / `pad_k` rows of padding after the last sequence, random golden-representable values."""
    k_lens = list(q_lens) if k_lens is None else list(k_lens)
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    seed = _cases._seed(case_id)
    rng = np.random.default_rng(seed)
    tq, tk = sum(q_lens) + pad_q, sum(k_lens) + pad_k
    q, k = rng.standard_normal((tq, H, E)), rng.standard_normal((tk, Hkv, E))
    if logits is not None:   # the largest |logit| near `logits` (sdpa.range), softcap cases
        factor = np.sqrt(logits * np.sqrt(E) / max(np.abs(q).max() * np.abs(k).max() * E ** 0.5, 1e-9))
        q, k = q * factor, k * factor
    inputs = {"query": _cases.representable(q), "key": _cases.representable(k),
              "value": _cases.representable(rng.standard_normal((tk, Hkv, Ev))),
              "cu_seqlens_q": cu_seqlens(q_lens), "cu_seqlens_k": cu_seqlens(k_lens)}
    options = {"is_causal": bool(is_causal), "causal_alignment": alignment, "scale": scale,
               "enable_gqa": Hkv != H, "max_seqlen_q": int(max(q_lens)), "max_seqlen_k": int(max(k_lens))}
    cited = ["varlen.sequence", "sdpa.scale.default" if scale is None else "sdpa.scale.explicit"]
    if Hkv != H:
        cited.append("sdpa.gqa")
    if is_causal:
        cited += ["varlen.causal", f"sdpa.causal.{alignment}"]
    if pad_q or pad_k:
        cited.append("varlen.padding")
    if window is not None:
        options["window"] = list(window)
        cited.append("sdpa.opt.window")
    if softcap is not None:
        options["softcap"] = float(softcap)
        cited.append("sdpa.opt.softcap")
    if sinks:
        inputs["sinks"] = _cases.representable(rng.standard_normal(H) * 2.0)
        cited.append("sdpa.opt.sinks")
    if any(lq > 0 and lk == 0 for lq, lk in zip(q_lens, k_lens)) or 0 in q_lens:
        cited.append("varlen.empty")
    return _cases._make_case(case_id, "sdpa_varlen", tuple(cited), inputs, options, seed, family, description)


def varlen_cases() -> list:
    v, f = varlen_case, FAMILY
    return [
        v("sdpa_varlen/three_seqs", [3, 5, 2], family=f["packed"],
          description="three sequences packed end to end, one call"),
        v("sdpa_varlen/lq_ne_lk", [2, 4, 1], [5, 4, 3], E=6, family=f["packed"]),
        v("sdpa_varlen/self_causal", [3, 5, 2], is_causal=True, family=f["causal"],
          description="packed self-attention (cu_seqlens_q = cu_seqlens_k): both alignments agree"),
        v("sdpa_varlen/causal_br", [2, 4, 1], [5, 4, 3], is_causal=True, family=f["causal"],
          description="bottom-right per sequence: query i of b sees keys j <= i + S_b - L_b"),
        v("sdpa_varlen/causal_tl", [2, 4, 3], [5, 4, 2], is_causal=True, alignment="top_left",
          family=f["causal"], description="top-left per sequence (the named alternative, asked for)"),
        v("sdpa_varlen/causal_gqa_h4_hkv2", [3, 1, 5], [4, 6, 5], H=4, Hkv=2, is_causal=True, E=4,
          family=f["causal"]),
        v("sdpa_varlen/empty_seqs", [0, 3, 2, 0, 1], [4, 0, 3, 2, 0], H=2, E=4, family=f["empty"],
          description="a sequence without queries, two without keys (fully masked: 0, LSE -inf)"),
        v("sdpa_varlen/total_q_lt_b", [0, 1, 0, 0, 1], [2, 3, 0, 1, 4], H=4, Hkv=2, E=4, is_causal=True,
          family=f["empty"], description="five sequences, two query rows (flash-attention #1619)"),
        v("sdpa_varlen/padding_after_last", [3, 2], [4, 3], pad_q=3, pad_k=5, E=4,
          family=f["packed"], description="rows after cu_seqlens[B]: output 0, LSE -inf; keys never read"),
        v("sdpa_varlen/window_causal", [5, 7], [8, 7], window=(2, 0), is_causal=True, E=4,
          family=f["options"]),
        v("sdpa_varlen/softcap", [4, 3], [6, 3], softcap=5.0, logits=30.0, family=f["options"]),
        v("sdpa_varlen/sinks_empty_keys", [3, 2, 2], [4, 0, 5], sinks=True, is_causal=True, E=4,
          family=f["options"], description="a finite sink: the keyless sequence gives 0, LSE = sink"),
        v("sdpa_varlen/ev_differs_scale", [3, 4], [3, 6], E=6, Ev=3, scale=0.5, family=f["packed"]),
    ]


# --- calibration families: (rng, i, case_id) -> Case -------------------------------------------
def _lengths(rng, b, lo, hi):
    return [int(x) for x in rng.integers(lo, hi + 1, b)]


def _fam_packed(rng, i, case_id):
    b = int(rng.integers(1, 5))
    lq = _lengths(rng, b, 1, 6)
    lk = lq if i % 2 == 0 else _lengths(rng, b, 1, 7)
    return varlen_case(case_id, lq, lk, H=2, Hkv=(2, 1)[i % 2], E=4, pad_q=i % 3, pad_k=(i // 3) % 3)


def _fam_causal(rng, i, case_id):
    b = int(rng.integers(2, 5))
    lq, lk = _lengths(rng, b, 1, 5), _lengths(rng, b, 1, 8)
    return varlen_case(case_id, lq, lk, H=2, E=4, is_causal=True,
                       alignment=("bottom_right", "top_left")[i % 2])


def _fam_empty(rng, i, case_id):
    b = int(rng.integers(2, 6))
    lq, lk = _lengths(rng, b, 0, 3), _lengths(rng, b, 0, 4)
    lq[i % b], lk[(i + 1) % b] = 0, 0
    if max(lq) == 0:
        lq[(i + 1) % b] = 1
    if max(lk) == 0:
        lk[i % b] = 2
    return varlen_case(case_id, lq, lk, H=2, Hkv=1, E=4, is_causal=bool(i % 2))


def _fam_options(rng, i, case_id):
    b = int(rng.integers(1, 4))
    lq, lk = _lengths(rng, b, 1, 6), _lengths(rng, b, 1, 8)
    kw = [dict(window=(int(rng.integers(0, 3)), 0), is_causal=True), dict(softcap=4.0, logits=12.0),
          dict(sinks=True, is_causal=bool(i % 2)), dict(window=(1, 1))][i % 4]
    return varlen_case(case_id, lq, lk, H=2, E=4, **kw)


FAMILIES = {FAMILY["packed"]: _fam_packed, FAMILY["causal"]: _fam_causal,
            FAMILY["empty"]: _fam_empty, FAMILY["options"]: _fam_options}
