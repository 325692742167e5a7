"""The golden cases and calibration families of the position-bias and position-id operations.

ALiBi (spec/alibi.md), T5 buckets / T5 bias / Shaw index (spec/relative_position.md), learned
position ids and their lookup (spec/position_ids.md), and the SDPA cases whose float mask IS an
ALiBi or a T5 bias (alibi.attention, relpos.attention; reached from reference/cases.py's SDPA
catalogue). Inputs only: expected values and scales come from the reference
(attnconf.reference.golden); nothing here is a hand-made number. Sizes stay small: every case
runs once per adapter (integer operations) or once per dtype.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference.cases import Case, _make_case, _normal, _seed, representable


# --- ALiBi -------------------------------------------------------------------------------------

def alibi_slopes_case(case_id, *, num_heads, max_bias=8.0, family="alibi", description="") -> Case:
    return _make_case(case_id, "alibi_slopes", (), {}, {"num_heads": num_heads, "max_bias": max_bias},
                      _seed(case_id), family, description)


def alibi_slopes_cases() -> list[Case]:
    c = alibi_slopes_case
    return [
        c("alibi/slopes_h1", num_heads=1),
        c("alibi/slopes_h8", num_heads=8, description="powers of two: 2^-1 … 2^-8"),
        c("alibi/slopes_h12", num_heads=12, description="not a power of two: 8 slopes, then 4 odd ones of 16"),
        c("alibi/slopes_h3", num_heads=3),
        c("alibi/slopes_h20", num_heads=20),
        c("alibi/slopes_h32", num_heads=32),
        c("alibi/slopes_h112", num_heads=112, description="BLOOM-176B's head count"),
        c("alibi/slopes_h6_max_bias_16", num_heads=6, max_bias=16.0, description="MPT alibi_bias_max 16"),
    ]


def alibi_bias_case(case_id, *, H, L, S, mode, alignment, max_bias=8.0, family="alibi",
                    description="") -> Case:
    clauses = [{"causal": "alibi.bias", "symmetric": "alibi.bias.symmetric",
                "row_constant": "alibi.bias.row_constant"}[mode]]
    if mode != "row_constant":
        clauses.append(f"alibi.align.{alignment}")
    options = {"num_heads": H, "query_length": L, "key_length": S, "max_bias": max_bias,
               "mode": mode, "alignment": alignment}
    return _make_case(case_id, "alibi_bias", clauses, {}, options, _seed(case_id), family, description)


def alibi_bias_cases() -> list[Case]:
    c = alibi_bias_case
    return [
        c("alibi/causal_h4_l8", H=4, L=8, S=8, mode="causal", alignment="bottom_right"),
        c("alibi/causal_br_h8_l3_s10", H=8, L=3, S=10, mode="causal", alignment="bottom_right",
          description="FlashAttention's alignment: query i at key i + 7"),
        c("alibi/causal_tl_h8_l3_s10", H=8, L=3, S=10, mode="causal", alignment="top_left"),
        c("alibi/causal_br_l6_s3", H=2, L=6, S=3, mode="causal", alignment="bottom_right",
          description="L > S: i' = i − 3"),
        c("alibi/decode_h16_s2048", H=16, L=1, S=2048, mode="causal", alignment="bottom_right",
          description="one decode step: distances up to 2047"),
        c("alibi/symmetric_h12_l16", H=12, L=16, S=16, mode="symmetric", alignment="bottom_right",
          description="MPT bidirectional, 12 heads (not a power of two)"),
        c("alibi/symmetric_br_h4_l4_s12", H=4, L=4, S=12, mode="symmetric", alignment="bottom_right"),
        c("alibi/symmetric_tl_h4_l4_s12", H=4, L=4, S=12, mode="symmetric", alignment="top_left"),
        c("alibi/row_constant_h6_l5_s7", H=6, L=5, S=7, mode="row_constant", alignment="bottom_right",
          description="fairseq / BLOOM: m·j"),
    ]


def _fam_alibi_slopes(rng, i, case_id):
    return alibi_slopes_case(case_id, num_heads=int(rng.integers(1, 80)),
                             max_bias=float([8.0, 8.0, 16.0, 4.0][i % 4]))


# (mode, alignment) in draw order: the forms real code implements come first (the causal
# bottom-right bias of FlashAttention / keras-hub, BLOOM's row-constant one), so that a short
# calibration (--seeds 2) already judges the bundled adapters on the form each one takes
_ALIBI_FORMS = (("causal", "bottom_right"), ("row_constant", "bottom_right"), ("symmetric", "top_left"),
                ("causal", "top_left"), ("symmetric", "bottom_right"), ("row_constant", "top_left"))


def _fam_alibi_bias(rng, i, case_id):
    L, S = int(rng.integers(1, 12)), int(rng.integers(1, 40))
    mode, alignment = _ALIBI_FORMS[i % len(_ALIBI_FORMS)]
    return alibi_bias_case(case_id, H=int(rng.integers(1, 20)), L=L, S=S, mode=mode, alignment=alignment)


ALIBI_SLOPES_FAMILIES = {"alibi-slopes": _fam_alibi_slopes}
ALIBI_BIAS_FAMILIES = {"alibi-bias": _fam_alibi_bias}


# --- T5 buckets and bias, Shaw index -----------------------------------------------------------

def _bucket_options(L, S, bidirectional, num_buckets, max_distance, query_offset):
    return {"query_length": L, "key_length": S, "bidirectional": bidirectional,
            "num_buckets": num_buckets, "max_distance": max_distance, "query_offset": query_offset}


def _bucket_clauses(bidirectional):
    return ["relpos.bucket.bidirectional" if bidirectional else "relpos.bucket.causal"]


def bucket_case(case_id, *, L, S, bidirectional, num_buckets=32, max_distance=128, query_offset=0,
                family="relpos", description="") -> Case:
    options = _bucket_options(L, S, bidirectional, num_buckets, max_distance, query_offset)
    return _make_case(case_id, "relative_position_bucket", _bucket_clauses(bidirectional), {}, options,
                      _seed(case_id), family, description)


def bucket_cases() -> list[Case]:
    c = bucket_case
    return [
        c("relpos/bucket_t5_bidir_l32", L=32, S=32, bidirectional=True),
        c("relpos/bucket_t5_bidir_offset100_s200", L=8, S=200, bidirectional=True, query_offset=100,
          description="rel from −107 to 99: past max_distance on neither side, every log bucket"),
        c("relpos/bucket_t5_causal_l40", L=40, S=40, bidirectional=False),
        c("relpos/bucket_t5_causal_decode_s300", L=1, S=300, bidirectional=False, query_offset=299,
          description="a decode step at past length 299: distances past max_distance share bucket 31"),
        c("relpos/bucket_exact_boundary_causal_nb48_d81", L=64, S=4, bidirectional=False, num_buckets=48,
          max_distance=81, description="n = 36 and 54 sit exactly on bucket boundaries (1.5 = (81/24)^(1/3)): "
                                       "a float32 log can land one bucket low"),
        c("relpos/bucket_exact_boundary_bidir_nb96_d81", L=60, S=60, bidirectional=True, num_buckets=96,
          max_distance=81, description="the same boundaries on both sides of the diagonal"),
        c("relpos/bucket_nb8_d16_bidir", L=24, S=24, bidirectional=True, num_buckets=8, max_distance=16),
        c("relpos/bucket_nb10_d20_causal_odd", L=30, S=6, bidirectional=False, num_buckets=10, max_distance=20,
          query_offset=3),
        c("relpos/bucket_nb33_bidir_odd", L=20, S=70, bidirectional=True, num_buckets=33, max_distance=64,
          description="an odd bucket count: halved to 16"),
    ]


def bias_case(case_id, *, H, L, S, bidirectional, num_buckets=32, max_distance=128, query_offset=0,
              std=1.0, family="relpos-bias", description="") -> Case:
    rng = np.random.default_rng(_seed(case_id))
    table = _normal(rng, (num_buckets, H), std)
    options = _bucket_options(L, S, bidirectional, num_buckets, max_distance, query_offset)
    return _make_case(case_id, "relative_position_bias", _bucket_clauses(bidirectional), {"table": table},
                      options, _seed(case_id), family, description)


def bias_cases() -> list[Case]:
    c = bias_case
    return [
        c("relpos/bias_t5_bidir_h4_l16", H=4, L=16, S=16, bidirectional=True),
        c("relpos/bias_t5_bidir_h2_l12_s150", H=2, L=12, S=150, bidirectional=True, query_offset=3),
        c("relpos/bias_t5_causal_decode_h8_s200", H=8, L=1, S=200, bidirectional=False, query_offset=199,
          description="T5 decoder, one step at past length 199"),
        c("relpos/bias_exact_boundary_causal_h2", H=2, L=64, S=2, bidirectional=False, num_buckets=48,
          max_distance=81),
        c("relpos/bias_large_entries_h3", H=3, L=8, S=8, bidirectional=True, num_buckets=8, max_distance=16,
          std=300.0, description="entries up to ~10^3: still an exact lookup"),
    ]


def index_case(case_id, *, L, S, K, alignment, family="relpos-index", description="") -> Case:
    options = {"query_length": L, "key_length": S, "max_relative_position": K, "alignment": alignment}
    return _make_case(case_id, "relative_position_index", [f"relpos.index.align.{alignment}"], {}, options,
                      _seed(case_id), family, description)


def index_cases() -> list[Case]:
    c = index_case
    return [
        c("relpos/index_k2_l6", L=6, S=6, K=2, alignment="top_left"),
        c("relpos/index_k4_tl_l3_s10", L=3, S=10, K=4, alignment="top_left"),
        c("relpos/index_k4_br_l3_s10", L=3, S=10, K=4, alignment="bottom_right",
          description="tensor2tensor: the last 3 queries on the last keys"),
        c("relpos/index_k16_unclipped_l8", L=8, S=8, K=16, alignment="top_left"),
        c("relpos/index_k3_br_l10_s4", L=10, S=4, K=3, alignment="bottom_right", description="L > S"),
        c("relpos/index_k1_tl_l5_s7", L=5, S=7, K=1, alignment="top_left"),
    ]


def _fam_bucket(rng, i, case_id):
    nb = [32, 32, 8, 48, 96, 10][i % 6]
    bidir = bool(i % 2) if nb not in (10,) else False
    return bucket_case(case_id, L=int(rng.integers(1, 40)), S=int(rng.integers(1, 160)), bidirectional=bidir,
                       num_buckets=nb, max_distance={32: 128, 8: 16, 48: 81, 96: 81, 10: 20}[nb],
                       query_offset=int(rng.integers(0, 64)) if i % 3 == 0 else 0)


def _fam_bias(rng, i, case_id):
    bidir = bool(i % 2)
    return bias_case(case_id, H=int(rng.integers(1, 6)), L=int(rng.integers(1, 24)), S=int(rng.integers(1, 140)),
                     bidirectional=bidir, query_offset=int(rng.integers(0, 32)) if i % 3 == 0 else 0)


def _fam_index(rng, i, case_id):
    return index_case(case_id, L=int(rng.integers(1, 16)), S=int(rng.integers(1, 24)), K=int(rng.integers(1, 8)),
                      alignment=("top_left", "bottom_right")[i % 2])


BUCKET_FAMILIES = {"relpos-bucket": _fam_bucket}
BIAS_FAMILIES = {"relpos-bias": _fam_bias}
INDEX_FAMILIES = {"relpos-index": _fam_index}


# --- position ids and the lookup -----------------------------------------------------------------

def _padded(lengths, width, *, left) -> np.ndarray:
    """(B, width) 0/1 mask with `lengths[b]` real tokens, padded on the left or the right."""
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    for b, n in enumerate(lengths):
        if left:
            mask[b, width - n:] = 1
        else:
            mask[b, :n] = 1
    return mask


def position_id_case(case_id, *, mask, scheme, past_length=0, padding_idx=1, family="posids",
                     description="") -> Case:
    options = {"scheme": scheme, "past_length": past_length, "padding_idx": padding_idx}
    return _make_case(case_id, "position_ids", [f"posids.ids.{scheme}"],
                      {"attention_mask": np.asarray(mask, dtype=np.int64)}, options, _seed(case_id),
                      family, description)


def position_id_cases() -> list[Case]:
    c = position_id_case
    left = _padded([8, 5, 1], 8, left=True)
    right = _padded([8, 5, 1], 8, left=False)
    past_pad = np.concatenate([_padded([6, 3], 6, left=True), np.ones((2, 2), np.int64)], axis=1)
    return [
        c("posids/arange_b3_t8", mask=right, scheme="arange", description="BERT: the mask changes nothing"),
        c("posids/past_p5_t3", mask=np.ones((2, 8), np.int64), scheme="past", past_length=5),
        c("posids/past_decode_p100", mask=np.ones((1, 101), np.int64), scheme="past", past_length=100,
          description="GPT-2, one decode step at past length 100"),
        c("posids/roberta_right_pad", mask=right, scheme="roberta"),
        c("posids/roberta_left_pad", mask=left, scheme="roberta",
          description="left padding: the first real token still reads row padding_idx + 1"),
        c("posids/roberta_past_p4_t3", mask=np.concatenate([np.ones((2, 4), np.int64),
                                                             _padded([3, 2], 3, left=False)], axis=1),
          scheme="roberta", past_length=4, description="HF adds past_length to the cumulative sum"),
        c("posids/roberta_padding_idx0", mask=left, scheme="roberta", padding_idx=0),
        c("posids/opt_left_pad", mask=left, scheme="opt", description="OPT: pads read row 1, real tokens 2, 3, …"),
        c("posids/opt_past_left_padded_p6_t2", mask=past_pad, scheme="opt", past_length=6,
          description="padding inside the cached past: positions count real tokens only"),
    ]


def embedding_case(case_id, *, N, D, ids, std=1.0, family="posids-lookup", description="") -> Case:
    rng = np.random.default_rng(_seed(case_id))
    table = _normal(rng, (N, D), std)
    return _make_case(case_id, "position_embedding", (), {"table": table,
                      "position_ids": np.asarray(ids, dtype=np.int64)}, {}, _seed(case_id), family, description)


def embedding_cases() -> list[Case]:
    c = embedding_case
    rng = np.random.default_rng(_seed("posids/lookup"))
    return [
        c("posids/lookup_n32_d8", N=32, D=8, ids=[[0, 1, 2, 3, 31, 30], [5, 5, 5, 0, 0, 1]],
          description="first and last rows, repeated ids"),
        c("posids/lookup_roberta_rows", N=514, D=4, ids=[[1, 1, 2, 3, 4, 513], [2, 3, 4, 5, 1, 1]],
          description="RoBERTa's 514 rows: padding row 1 and the last row"),
        c("posids/lookup_random_b3_t16", N=64, D=16, ids=rng.integers(0, 64, (3, 16))),
        c("posids/lookup_large_entries", N=8, D=8, ids=[[7, 6, 5, 4, 3, 2, 1, 0]], std=1000.0),
    ]


def _fam_position_ids(rng, i, case_id):
    scheme = ("roberta", "opt", "past", "arange")[i % 4]     # the mask-dependent schemes first
    B, T = int(rng.integers(1, 4)), int(rng.integers(1, 12))
    P = int(rng.integers(0, 8)) if i % 2 else 0
    mask = _padded(rng.integers(1, P + T + 1, B).tolist(), P + T, left=bool((i // 4) % 2))
    if scheme == "roberta":
        mask[:, :P] = 1   # HF's RoBERTa has no mask of the past: a cached past is all tokens
    return position_id_case(case_id, mask=mask, scheme=scheme, past_length=P, padding_idx=int(rng.integers(0, 3)))


def _fam_embedding(rng, i, case_id):
    N, D = int(rng.integers(1, 80)), int(rng.integers(1, 12))
    return embedding_case(case_id, N=N, D=D, ids=rng.integers(0, N, (int(rng.integers(1, 4)), int(rng.integers(1, 10)))))


POSITION_ID_FAMILIES = {"posids": _fam_position_ids}
EMBEDDING_FAMILIES = {"posids-lookup": _fam_embedding}


# --- SDPA whose float mask is an ALiBi or a T5 bias (alibi.attention, relpos.attention) ----------

def _with_mask(bias):
    def tweak(inputs, rng):
        inputs["attn_mask"] = representable(bias)
    return tweak


def sdpa_bias_cases() -> list[Case]:
    """Large slopes × long S (biases to −127.5) and a T5 table up to ~±2^9: a kernel adding the
    bias below its logits' precision shows. Every ALiBi entry m·d (m a power of two, d < 256) and
    every table entry is a golden value, so the mask IS the bias at every dtype."""
    from attnconf.reference.alibi import alibi_bias
    from attnconf.reference.sdpa_cases import sdpa_case
    from attnconf.reference.relative_position import relative_position_bias

    causal = alibi_bias(8, 8, 256, mode="causal", alignment="bottom_right", exact=True)
    causal[:, np.arange(256)[None, :] > np.arange(8)[:, None] + 248] = -np.inf   # and the causal mask
    symmetric = alibi_bias(8, 4, 256, mode="symmetric", alignment="bottom_right", exact=True)
    table = _normal(np.random.default_rng(_seed("sdpa/t5_bias_table")), (32, 4), 128.0)
    t5 = relative_position_bias(table, 16, 160, bidirectional=True)
    return [
        sdpa_case("sdpa/alibi_causal_br_h8_s256", ["alibi.attention"],
                  H=8, L=8, S=256, E=8, mask="float", mask_shape=(1, 8, 8, 256), tweak=_with_mask(causal[None]),
                  description="attn_mask = alibi_bias(8, 8, 256, causal, bottom_right), −inf where j > i + 248 "
                              "(BLOOM/MPT fold the causal mask into the bias: no is_causal)"),
        sdpa_case("sdpa/alibi_symmetric_h8_s256", ["alibi.attention"],
                  H=8, L=4, S=256, E=8, mask="float", mask_shape=(1, 8, 4, 256), tweak=_with_mask(symmetric[None]),
                  description="FlashAttention-style −m·|i + S − L − j|, no causal mask"),
        sdpa_case("sdpa/t5_bias_h4_s160", ["relpos.attention"],
                  H=4, L=16, S=160, E=8, mask="float", mask_shape=(1, 4, 16, 160), scale=1.0,
                  tweak=_with_mask(t5[None]), description="T5: the bias added to unscaled logits"),
    ]
