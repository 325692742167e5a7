"""The golden cases and calibration families of `sdpa_lse` (spec sdpa.lse.*).

For what: (output, lse) cases covering what the log-sum-exp must get right — plain rows, GQA
(flash-attention #648), fully-masked rows (−∞), padded query rows, soft-capping, sinks (the sink
in the denominator), ALiBi, windows, decode offsets, key lengths and large logits — built with
the sdpa case builders (reference/sdpa_cases.py, sdpa_option_cases.py) under their own ids and
seeds. Inputs only: expected values come from the reference (exact=True).
Must not: hold expected numbers; import a framework.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import cases as _cases
from attnconf.reference import sdpa_option_cases as _opt

FAMILY = {"basic": "lse", "masked": "lse-masked", "options": "lse-options"}


def lse_case(case_id: str, *, family: str, description: str = "", **kw) -> _cases.Case:
    """An sdpa_lse case: sdpa_option_cases.option_case's inputs (seeded by `case_id`), citing the
    sdpa.lse.* clauses its rows exercise."""
    base = _opt.option_case(case_id, family=family, description=description, **kw)
    cited = list(base.clauses)
    if "sinks" in base.inputs:
        cited.append("sdpa.lse.sinks")
    if "query_lengths" in base.inputs:
        cited.append("sdpa.lse.padded")
    if "sdpa.fully_masked" in cited:
        cited.append("sdpa.lse.empty")
    return _cases._make_case(case_id, "sdpa_lse", tuple(cited), base.inputs, base.options, base.seed,
                             family, description)


def sdpa_lse_cases() -> list:
    c, f = lse_case, FAMILY
    return [
        c("sdpa_lse/basic_h2_l5_s7", family=f["basic"], H=2, L=5, S=7, E=8),
        c("sdpa_lse/scale_explicit_ev3", family=f["basic"], L=4, S=9, E=6, Ev=3, scale=0.35),
        c("sdpa_lse/gqa_h4_hkv2_causal_br", family=f["basic"], B=2, H=4, Hkv=2, L=5, S=8, E=4, is_causal=True,
          alignment="bottom_right", description="per query head, keys shared by two heads (flash-attention #648)"),
        c("sdpa_lse/logits_1e3", family=f["basic"], H=2, L=4, S=6, E=16, logits=1e3,
          description="LSE near 1e3: a base-2 or unscaled LSE is off by hundreds"),
        c("sdpa_lse/fully_masked_rows_bool", family=f["masked"], B=2, H=2, L=5, S=6, E=4, mask="bool",
          fully_masked_rows=3, description="rows with no visible key: LSE −∞"),
        c("sdpa_lse/float_mask_inf_rows", family=f["masked"], H=2, L=6, S=5, E=4, mask="float-inf",
          fully_masked_rows=2, description="a float mask of −∞ over whole rows: LSE −∞"),
        c("sdpa_lse/key_lengths_zero", family=f["masked"], key_lengths=[0, 5], B=2, L=3, S=6, E=4,
          description="a sequence without keys: every row's LSE −∞"),
        c("sdpa_lse/query_lengths_padded", family=f["masked"], query_lengths=[6, 2], B=2, H=2, L=6, S=7, E=4,
          description="padded query rows: output 0, LSE −∞"),
        c("sdpa_lse/softcap_c5", family=f["options"], softcap=5.0, H=2, L=5, S=8, E=8, logits=30.0),
        c("sdpa_lse/sinks_h3", family=f["options"], sinks="normal", H=3, L=5, S=7, E=8,
          description="the sink's exp in the denominator"),
        c("sdpa_lse/sinks_fully_masked_rows", family=f["options"], sinks="one_neg_inf", B=2, H=2, L=6, S=7, E=4,
          mask="bool", fully_masked_rows=5, description="no visible key: LSE = the sink (head 1), −∞ (head 0)"),
        c("sdpa_lse/alibi_causal_br", family=f["options"], alibi="h", H=4, L=4, S=9, E=8, is_causal=True,
          alignment="bottom_right"),
        c("sdpa_lse/window_sinks_gqa", family=f["options"], window=(3, 0), sinks="normal", H=4, Hkv=2, L=8, S=8,
          E=4, is_causal=True, description="gpt-oss: sliding window, GQA, sinks"),
        c("sdpa_lse/decode_l1_p63", family=f["options"], query_offset=[63], L=1, S=64, E=8, H=2, is_causal=True),
        c("sdpa_lse/decode_l4_b2_ragged_cache", family=f["options"], query_offset=[5, 9], key_lengths=[9, 13],
          B=2, H=2, L=4, S=13, E=4, is_causal=True),
        c("sdpa_lse/combined_all", family=f["options"], window=(4, 1), softcap=4.0, sinks="normal", alibi="h",
          key_lengths=[10, 7], query_lengths=[6, 4], B=2, H=4, Hkv=2, L=6, S=10, E=8, logits=15.0,
          is_causal=True, alignment="bottom_right"),
    ]


# --- random families (calibration): small shapes, options cycling with i --------------------
_POOL = [dict(B=1, H=2, L=4, S=6, E=4), dict(B=2, H=2, L=5, S=5, E=8), dict(B=1, H=4, Hkv=2, L=3, S=7, E=4),
         dict(B=2, H=1, L=6, S=4, E=4)]


def _fam_basic(i):
    return dict(_POOL[i % 4], is_causal=bool((i // 4) % 2), scale=(None, 0.35)[(i // 2) % 2],
                logits=(None, 40.0, 300.0)[(i // 8) % 3],
                alignment=("top_left", "bottom_right")[(i // 3) % 2])


def _fam_masked(i):
    kw = dict(_POOL[i % 4], mask=("bool", "float-inf")[(i // 4) % 2])
    kw["fully_masked_rows"] = 1 + (i // 8) % 2
    if (i // 2) % 3 == 2:
        kw = dict(_POOL[i % 4], key_lengths=[0] + [3] * (kw["B"] - 1))
    return kw


def _fam_options(i):
    kw = dict(_POOL[i % 4])
    kind = i % 5
    if kind == 0:
        kw.update(sinks=("normal", "one_neg_inf")[(i // 5) % 2], mask="bool", fully_masked_rows=1)
    elif kind == 1:
        kw.update(softcap=(2.0, 20.0)[(i // 5) % 2], logits=30.0)
    elif kind == 2:
        kw.update(alibi="h", is_causal=True)
    elif kind == 3:
        kw.update(window=(2, 0), is_causal=True, sinks="normal")
    else:
        past = (3, 17)[(i // 5) % 2]
        kw = dict(B=1, H=2, L=2, S=past + 2, E=4, query_offset=[past], is_causal=True)
    return kw


def _family(name, make_kw):
    def build(rng, i, case_id):
        return lse_case(case_id, family=name, **make_kw(i))
    return build


SDPA_LSE_FAMILIES = {
    FAMILY["basic"]: _family(FAMILY["basic"], _fam_basic),
    FAMILY["masked"]: _family(FAMILY["masked"], _fam_masked),
    FAMILY["options"]: _family(FAMILY["options"], _fam_options),
}
