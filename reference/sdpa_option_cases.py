"""The golden cases and calibration families of the sdpa kernel options (spec sdpa.opt.*).

For what: sliding windows, soft-capping, sinks, ALiBi slopes, decode steps and ragged lengths,
each alone and combined, as `sdpa` cases beside the catalogue's own (attnconf.reference.cases):
the sdpa registry entry names `sdpa_cases` and `FAMILIES` here, which extend the catalogue's.
Inputs only, like every case: expected values come from the reference (exact=True).
Must not: hold expected numbers; import a framework.

A case's option arrays are inputs (sinks and alibi_slopes floats exact in every dtype;
query_offset, key_lengths, query_lengths integers); window and softcap are options.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import cases as _cases
from attnconf.reference import sdpa_cases as _sdpa_cases

FAMILY = {"window": "sdpa-window", "softcap": "sdpa-softcap", "sinks": "sdpa-sinks",
          "alibi": "sdpa-alibi", "decode": "sdpa-decode", "ragged": "sdpa-ragged",
          "chunk": "sdpa-chunk"}


def alibi_slopes(heads: int) -> np.ndarray:
    """The ALiBi paper's geometric slopes 2^(−8(h+1)/H) for H a power of two, else the first H of
    the next power of two: here only so that the cases use realistic slopes; rounded to values
    exact in every dtype."""
    n = 1 << max(0, (heads - 1).bit_length())
    return _cases.representable(2.0 ** (-8.0 * np.arange(1, n + 1) / n)[:heads])


def option_case(case_id: str, clauses=(), *, family: str, window=None, softcap=None, sinks=None,
                alibi=None, query_offset=None, key_lengths=None, query_lengths=None, chunk=None,
                description: str = "", **sdpa_kw) -> _cases.Case:
    """An sdpa case (cases.sdpa_case with `sdpa_kw`) plus kernel options.

    sinks: None | "normal" (one finite sink per query head) | "one_neg_inf" (head 0's sink −∞);
    alibi: None | "h" (slopes (H,)) | "bh" (slopes (B, H), per batch); window: (left, right);
    query_offset / key_lengths / query_lengths: one integer per batch entry; chunk: the chunk size C.
    """
    base = _sdpa_cases.sdpa_case(case_id, family=family, description=description, **sdpa_kw)
    rng = np.random.default_rng(base.seed + 1)   # option values: their own stream, same seed rule
    B, H, L, _ = base.inputs["query"].shape
    inputs, options, cited = dict(base.inputs), dict(base.options), list(clauses)
    if window is not None:
        options["window"] = list(window)          # JSON form: a list (None stays null)
        cited.append("sdpa.opt.window")
    if chunk is not None:
        options["chunk"] = int(chunk)
        cited.append("sdpa.opt.chunk")
    if softcap is not None:
        options["softcap"] = float(softcap)
        cited.append("sdpa.opt.softcap")
    if sinks is not None:
        s = _cases.representable(rng.standard_normal(H) * 2.0)
        if sinks == "one_neg_inf":
            s[0] = -np.inf
        inputs["sinks"] = s
        cited.append("sdpa.opt.sinks")
    if alibi is not None:
        m = alibi_slopes(H)
        if alibi == "bh":   # per batch: the same slopes scaled by 2^b (exact)
            m = np.stack([m * 2.0 ** b for b in range(B)])
        inputs["alibi_slopes"] = m
        cited.append("sdpa.opt.alibi")
    for name, value, clause in (("query_offset", query_offset, "sdpa.opt.decode"),
                                ("key_lengths", key_lengths, "sdpa.opt.key_lengths"),
                                ("query_lengths", query_lengths, "sdpa.opt.query_lengths")):
        if value is not None:
            inputs[name] = np.asarray(value, dtype=np.int64)
            cited.append(clause)
    positioned = bool(window is not None or chunk is not None or alibi is not None or query_offset is not None or
                      options.get("is_causal"))
    aligned = options.get("causal_alignment") == "bottom_right" and (key_lengths or query_lengths)
    if (positioned or aligned) and (options.get("causal_alignment") == "bottom_right" or query_offset):
        cited.append("sdpa.opt.positions")  # p_i differs from i: where the positions show
    if _has_empty_rows(inputs, options):
        cited.append("sdpa.fully_masked")
    case = _cases._make_case(case_id, "sdpa", tuple(base.clauses) + tuple(cited), inputs, options,
                             base.seed, family, description)
    return case


def _has_empty_rows(inputs, options) -> bool:
    """Whether some valid row sees no key and has no finite sink (sdpa.fully_masked applies)."""
    import importlib

    from attnconf.choices import SDPA_OPTION_INPUTS

    ref = importlib.import_module("attnconf.reference.sdpa")  # the package attribute is the function
    present = {n: inputs[n] for n in SDPA_OPTION_INPUTS if inputs.get(n) is not None}
    pb = ref.prepare(inputs["query"], inputs["key"], inputs["value"], attn_mask=inputs.get("attn_mask"),
                     **dict(options, **present))
    if pb.allowed is None:
        return False
    empty = ~pb.allowed.any(axis=-1, keepdims=True)
    if pb.sinks is not None:
        empty = empty & np.isneginf(pb.sinks)
    if pb.padded is not None:
        empty = empty & ~pb.padded
    return bool(np.any(empty))


def option_cases() -> list:
    o = option_case
    f = FAMILY
    return [
        # sliding window (sdpa.opt.window), alone and with causal, GQA, masks, both alignments
        o("sdpa/opt_window_l2_r0_square", family=f["window"], window=(2, 0), H=2, L=9, S=9, E=8,
          description="window (2, 0) without is_causal: 3 keys, the diagonal and two before"),
        o("sdpa/opt_window_l3_r1_br_l5_s12", family=f["window"], window=(3, 1), L=5, S=12, E=6,
          alignment="bottom_right", description="non-causal window positioned at i + S - L"),
        o("sdpa/opt_window_l1_r2_tl_l7_s4", family=f["window"], window=(1, 2), L=7, S=4, E=6,
          description="top-left window, L > S: late rows see no key but their window's"),
        o("sdpa/opt_window_none_r1", family=f["window"], window=(None, 1), L=6, S=8, E=4),
        o("sdpa/opt_window_diagonal_l0_r0", family=f["window"], window=(0, 0), L=6, S=6, E=4),
        o("sdpa/opt_window_causal_gqa_mask_br", family=f["window"], window=(3, None), B=2, H=4, Hkv=2,
          L=7, S=10, E=8, is_causal=True, alignment="bottom_right", mask="bool",
          description="window + causal + GQA + mask, intersected"),
        o("sdpa/opt_window_causal_tl_float_mask", family=f["window"], window=(2, 5), H=2, L=8, S=8, E=4,
          is_causal=True, mask="float", mask_shape=(8, 8)),
        o("sdpa/opt_window_br_l8_s4_empty_rows", family=f["window"], window=(0, 0), L=8, S=4, E=4,
          alignment="bottom_right", description="rows at negative positions see no key: output 0"),
        # soft-capping (sdpa.opt.softcap)
        o("sdpa/opt_softcap_c5", family=f["softcap"], softcap=5.0, H=2, L=6, S=8, E=8, logits=30.0),
        o("sdpa/opt_softcap_c50_logits_1e4", family=f["softcap"], softcap=50.0, H=2, L=6, S=8, E=16,
          logits=1e4, description="Gemma 2's cap 50 on logits near 1e4"),
        o("sdpa/opt_softcap_c30_logits_neg_1e4", family=f["softcap"], softcap=30.0, L=5, S=9, E=16,
          logits=1e4, negative_logits=True),
        o("sdpa/opt_softcap_c2_mask_float", family=f["softcap"], softcap=2.0, H=2, L=5, S=7, E=8,
          logits=20.0, mask="float-inf", description="the cap comes before the mask: the mask is not capped"),
        o("sdpa/opt_softcap_alibi_causal_br", family=f["softcap"], softcap=3.0, alibi="h", H=4, L=5, S=9,
          E=8, logits=20.0, is_causal=True, alignment="bottom_right"),
        # sinks (sdpa.opt.sinks)
        o("sdpa/opt_sinks_h3", family=f["sinks"], sinks="normal", H=3, L=5, S=7, E=8),
        o("sdpa/opt_sinks_fully_masked_rows", family=f["sinks"], sinks="one_neg_inf", B=2, H=2, L=6, S=7,
          E=4, mask="bool", fully_masked_rows=5,
          description="rows with no visible key: 0 with a sink (head 1), fully masked without (head 0, −inf sink)"),
        o("sdpa/opt_sinks_window_gqa", family=f["sinks"], sinks="normal", window=(3, 0), H=4, Hkv=2,
          L=8, S=8, E=4, is_causal=True, description="gpt-oss: sliding window, GQA, sinks"),
        # ALiBi slopes (sdpa.opt.alibi)
        o("sdpa/opt_alibi_h4_noncausal", family=f["alibi"], alibi="h", H=4, L=5, S=9, E=8),
        o("sdpa/opt_alibi_bh_causal_br", family=f["alibi"], alibi="bh", B=2, H=2, L=4, S=9, E=8,
          is_causal=True, alignment="bottom_right"),
        o("sdpa/opt_alibi_br_noncausal_l3_s10", family=f["alibi"], alibi="h", H=2, L=3, S=10, E=4,
          alignment="bottom_right", description="bias −m·|i + S − L − j| on both sides of the diagonal"),
        # KV-cache decode (sdpa.opt.decode), L = 1 and L = 4, past lengths up to 4096
        o("sdpa/opt_decode_l1_p63", family=f["decode"], query_offset=[63], L=1, S=64, E=8, H=2,
          is_causal=True),
        o("sdpa/opt_decode_l4_p4096", family=f["decode"], query_offset=[4096], L=4, S=4100, E=8,
          is_causal=True, description="a 4-query chunk after 4096 cached tokens"),
        o("sdpa/opt_decode_l1_p4095_window_sinks_alibi", family=f["decode"], query_offset=[4095],
          window=(127, 0), sinks="normal", alibi="h", H=2, L=1, S=4096, E=8, is_causal=True,
          description="gpt-oss-like decode step: window 128, sinks, ALiBi"),
        o("sdpa/opt_decode_l4_b2_ragged_cache", family=f["decode"], query_offset=[5, 9], key_lengths=[9, 13],
          B=2, H=2, L=4, S=13, E=4, is_causal=True,
          description="per-sequence past lengths in a padded cache"),
        # ragged lengths (sdpa.opt.key_lengths, sdpa.opt.query_lengths)
        o("sdpa/opt_key_lengths_b3", family=f["ragged"], key_lengths=[8, 3, 1], B=3, H=2, L=5, S=8, E=4),
        o("sdpa/opt_key_lengths_zero", family=f["ragged"], key_lengths=[0, 5], B=2, L=3, S=6, E=4,
          description="a sequence without keys: fully-masked rows, output 0"),
        o("sdpa/opt_query_lengths_b2", family=f["ragged"], query_lengths=[6, 2], B=2, H=2, L=6, S=7, E=4,
          description="padded query rows: output 0"),
        o("sdpa/opt_ragged_both_causal_br", family=f["ragged"], query_lengths=[5, 3, 1], key_lengths=[9, 4, 2],
          B=3, L=5, S=9, E=4, is_causal=True, alignment="bottom_right",
          description="FlashAttention varlen: each sequence's last valid query at its last valid key"),
        # everything together
        o("sdpa/opt_combined_all", family=f["window"], window=(4, 1), softcap=4.0, sinks="normal", alibi="h",
          key_lengths=[10, 7], query_lengths=[6, 4], B=2, H=4, Hkv=2, L=6, S=10, E=8, logits=15.0,
          is_causal=True, alignment="bottom_right", mask="bool", mask_shape=(2, 1, 1, 10)),
    ] + chunk_cases()


def chunk_cases() -> list:
    """Chunked local attention (sdpa.opt.chunk, Llama 4's attention_chunk_size, FlashAttention-3's
    attention_chunk): partial chunks, a decode step inside a chunk, bottom-right positions, chunk
    1 (the diagonal), C >= S (the causal rule), and chunk beside a sliding window and GQA."""
    o, f = option_case, FAMILY["chunk"]
    return [
        o("sdpa/opt_chunk_c4_l10", family=f, chunk=4, H=2, L=10, S=10, E=8,
          description="chunks [0, 4), [4, 8), [8, 10): a partial last chunk"),
        o("sdpa/opt_chunk_c3_decode_p7", family=f, chunk=3, query_offset=[7], L=2, S=9, E=4, H=2,
          description="decode at positions 7, 8: chunk [6, 9) only, not the window of 3 keys"),
        o("sdpa/opt_chunk_c4_br_l3_s11", family=f, chunk=4, L=3, S=11, E=4, alignment="bottom_right",
          description="positions 8, 9, 10 (bottom-right): the chunk [8, 12) starts at the first query"),
        o("sdpa/opt_chunk_c1_diagonal", family=f, chunk=1, L=5, S=5, E=4,
          description="chunk 1: each query sees itself alone"),
        o("sdpa/opt_chunk_c16_ge_s_causal", family=f, chunk=16, L=6, S=6, E=4, is_causal=True,
          description="C >= S: the causal rule"),
        o("sdpa/opt_chunk_c5_window_gqa_b2", family=f, chunk=5, window=(2, 0), B=2, H=4, Hkv=2, L=4, S=12,
          E=4, query_offset=[8, 3], key_lengths=[12, 7], is_causal=True,
          description="chunk and a sliding window intersected, per-sequence offsets"),
    ]


def square_cases() -> list:
    """Cases every common restriction fits: L = S, H = Hkv, no mask or a boolean one, exact in
    float32/float16/bfloat16 alike. Many real kernels take only these (FlashAttention-style
    training kernels and windowed-attention libraries are square-only; many have no GQA, no float
    mask, no float64), so each clause, and each pair of options the cases above combine only at
    L != S, has a case here: a restricted implementation is still judged on every clause it claims.
    Bottom-right alignment shows at L = S only through ragged lengths (its own case)."""
    o = option_case
    f = FAMILY
    return [
        # catalogue clauses otherwise met only at L != S or with a float mask
        o("sdpa/square_scale_explicit", family="sdpa-mask", H=2, L=6, S=6, E=8, scale=0.4),
        o("sdpa/square_mask_bool_b11s_scale", family="sdpa-mask", B=2, H=2, L=5, S=5, E=4, scale=0.8,
          mask="bool", mask_shape=(2, 1, 1, 5), description="key padding mask, broadcast, explicit scale"),
        o("sdpa/square_mask_bool_ls_causal", family="sdpa-mask", H=2, L=6, S=6, E=4, mask="bool",
          mask_shape=(6, 6), is_causal=True),
        # window x key_lengths: rows whose window holds only padding keys see no key (output 0;
        # a kernel that averages the values of such a row fails here)
        o("sdpa/square_window_key_lengths_causal", family=f["window"], window=(2, 0), key_lengths=[3, 8],
          B=2, H=2, L=8, S=8, E=4, is_causal=True,
          description="batch 0, rows 5-7: the window (i-2..i) holds only padding keys (j >= 3)"),
        o("sdpa/square_window_key_lengths_noncausal", family=f["window"], window=(1, 1), key_lengths=[2, 6],
          B=2, L=6, S=6, E=4, description="rows 4-5 of batch 0: window i-1..i+1 past the 2 valid keys"),
        o("sdpa/square_window_query_lengths_mask_bool", family=f["window"], window=(2, 1), query_lengths=[5, 3],
          B=2, H=2, L=6, S=6, E=4, mask="bool", mask_shape=(2, 1, 1, 6)),
        o("sdpa/square_window_softcap_causal", family=f["softcap"], window=(3, 0), softcap=4.0, H=2, L=8, S=8,
          E=8, logits=20.0, is_causal=True),
        # options met only at L != S before
        o("sdpa/square_softcap_c5", family=f["softcap"], softcap=5.0, H=2, L=7, S=7, E=8, logits=30.0),
        o("sdpa/square_softcap_mask_bool", family=f["softcap"], softcap=2.0, H=2, L=6, S=6, E=8, logits=20.0,
          mask="bool", mask_shape=(6, 6)),
        o("sdpa/square_sinks_causal", family=f["sinks"], sinks="normal", H=2, L=6, S=6, E=4, is_causal=True),
        o("sdpa/square_sinks_key_lengths", family=f["sinks"], sinks="one_neg_inf", key_lengths=[0, 4], B=2,
          H=2, L=5, S=5, E=4,
          description="a sequence without keys: 0 with a finite sink (head 1), fully masked without (head 0)"),
        o("sdpa/square_alibi_causal", family=f["alibi"], alibi="h", H=4, L=6, S=6, E=8, is_causal=True),
        o("sdpa/square_alibi_key_lengths", family=f["alibi"], alibi="bh", key_lengths=[6, 3], B=2, H=2, L=6,
          S=6, E=4),
        o("sdpa/square_decode_offset", family=f["decode"], query_offset=[2, 0], B=2, H=2, L=5, S=5, E=4,
          is_causal=True, description="queries at positions i + 2 (batch 0) and i (batch 1): j <= p_i"),
        o("sdpa/square_key_lengths_b3", family=f["ragged"], key_lengths=[6, 2, 0], B=3, H=2, L=6, S=6, E=4),
        o("sdpa/square_key_lengths_causal_tl", family=f["ragged"], key_lengths=[3, 6], B=2, H=2, L=6, S=6, E=4,
          is_causal=True, description="top-left: j <= i and j < K_b (ONNX's nonpad frontier differs)"),
        o("sdpa/square_key_lengths_causal_br", family=f["ragged"], key_lengths=[3, 6], B=2, H=2, L=6, S=6, E=4,
          is_causal=True, alignment="bottom_right",
          description="bottom-right: j <= i + K_b - L, rows i < L - K_b see no key"),
        o("sdpa/square_query_lengths_causal", family=f["ragged"], query_lengths=[6, 3], B=2, H=2, L=6, S=6,
          E=4, is_causal=True),
        o("sdpa/square_ragged_both_causal_tl", family=f["ragged"], query_lengths=[4, 2], key_lengths=[8, 5],
          B=2, L=8, S=8, E=4, is_causal=True),
        o("sdpa/square_ragged_both_causal_br", family=f["ragged"], query_lengths=[4, 2], key_lengths=[8, 5],
          B=2, L=8, S=8, E=4, is_causal=True, alignment="bottom_right",
          description="each sequence's last valid query at its last valid key: positions 4.. and 3.."),
        o("sdpa/square_window_sinks_alibi_causal", family=f["window"], window=(3, 0), sinks="normal",
          alibi="h", H=2, L=8, S=8, E=4, is_causal=True, description="gpt-oss-like prefill without GQA"),
        o("sdpa/square_combined_all", family=f["window"], window=(3, 1), softcap=4.0, sinks="normal", alibi="h",
          key_lengths=[8, 5], query_lengths=[7, 4], B=2, H=2, L=8, S=8, E=8, logits=15.0, is_causal=True,
          mask="bool", mask_shape=(2, 1, 1, 8)),
    ]


def sdpa_cases() -> list:
    """The sdpa golden catalogue: the catalogue's own cases, then the kernel options', then the
    square ones every common restriction fits."""
    return _sdpa_cases.sdpa_cases() + option_cases() + square_cases()


# --- random families (calibration) -------------------------------------------------------------
# Shapes from a small pool (JAX compiles per shape); options cycle with i.
_POOL = [dict(B=1, H=2, L=4, S=6, E=4), dict(B=2, H=2, L=5, S=5, E=8), dict(B=1, H=4, Hkv=2, L=3, S=7, E=4),
         dict(B=2, H=1, L=6, S=4, E=4)]
_ALIGN = ("top_left", "bottom_right")


def _fam_window(i):
    kw = dict(_POOL[i % 4], window=[(2, 0), (1, 1), (None, 0), (0, 2)][(i // 4) % 4],
              alignment=_ALIGN[(i // 2) % 2], is_causal=bool((i // 8) % 2))
    return kw


def _fam_softcap(i):
    return dict(_POOL[i % 4], softcap=(1.0, 5.0, 50.0)[(i // 4) % 3], logits=(3.0, 30.0, 1e3)[i % 3],
                mask=(None, "float-inf")[(i // 2) % 2])


def _fam_sinks(i):
    kw = dict(_POOL[i % 4], sinks=("normal", "one_neg_inf")[(i // 4) % 2], is_causal=bool(i % 2))
    if (i // 8) % 2:
        kw.update(mask="bool", fully_masked_rows=1)
    return kw


def _fam_alibi(i):
    return dict(_POOL[i % 4], alibi=("h", "bh")[(i // 4) % 2], alignment=_ALIGN[(i // 2) % 2],
                is_causal=bool((i // 8) % 2))


def _fam_decode(i):
    L = (1, 2, 4)[i % 3]
    past = (0, 3, 17, 100)[(i // 3) % 4]
    return dict(B=1, H=2, L=L, S=past + L, E=4, query_offset=[past], is_causal=True,
                window=(None, (8, 0))[(i // 12) % 2])


def _fam_ragged(i):
    B, L, S = 2, 4, 6
    rng = np.random.default_rng(i)
    kw = dict(B=B, H=2, L=L, S=S, E=4, alignment=_ALIGN[i % 2], is_causal=bool((i // 2) % 2))
    if (i // 4) % 3 != 1:
        kw["key_lengths"] = [int(x) for x in rng.integers(1, S + 1, B)]
    if (i // 4) % 3 != 0:
        kw["query_lengths"] = [int(x) for x in rng.integers(1, L + 1, B)]
    return kw


def _fam_chunk(i):
    L = (1, 3, 6)[i % 3]
    past = (0, 5, 11)[(i // 3) % 3]
    return dict(B=(1, 2)[i % 2], H=2, L=L, S=past + L, E=4, query_offset=[past] * (1, 2)[i % 2],
                chunk=(2, 3, 4, 8)[(i // 2) % 4], window=(None, (2, 0))[(i // 9) % 2])


def _family(name, make_kw):
    def build(rng, i, case_id):
        return option_case(case_id, family=name, **make_kw(i))
    return build


OPTION_FAMILIES = {
    FAMILY["window"]: _family(FAMILY["window"], _fam_window),
    FAMILY["softcap"]: _family(FAMILY["softcap"], _fam_softcap),
    FAMILY["sinks"]: _family(FAMILY["sinks"], _fam_sinks),
    FAMILY["alibi"]: _family(FAMILY["alibi"], _fam_alibi),
    FAMILY["decode"]: _family(FAMILY["decode"], _fam_decode),
    FAMILY["ragged"]: _family(FAMILY["ragged"], _fam_ragged),
    FAMILY["chunk"]: _family(FAMILY["chunk"], _fam_chunk),
}
# what the sdpa entry's `families` names: the catalogue's families, then the options'
FAMILIES = {**_sdpa_cases.SDPA_FAMILIES, **OPTION_FAMILIES}
