"""The golden cases and calibration families of sdpa_vjp: the catalogue's plain-SDPA gradient cases
(sdpa_cases.sdpa_vjp_cases, unchanged), then the gradients of the kernel options (sdpa.opt.grad).

For what: dq, dk, dv (and dsinks) under a window, a soft-cap, sinks, ALiBi slopes, a decode offset
and ragged lengths, each alone and combined, built as the option cases of sdpa are
(sdpa_option_cases.option_case) plus a grad_output. Inputs only: expected values come from the
reference (exact=True). Must not: hold expected numbers; import a framework.
"""
from __future__ import annotations

from attnconf.reference import cases as _cases
from attnconf.reference import sdpa_cases as _sdpa_cases
from attnconf.reference import sdpa_option_cases as _options

FAMILY = {"window": "sdpa-vjp-window", "softcap": "sdpa-vjp-softcap", "sinks": "sdpa-vjp-sinks",
          "alibi": "sdpa-vjp-alibi", "ragged": "sdpa-vjp-ragged"}


def vjp_option_case(case_id: str, *, family: str, description: str = "", **kw) -> _cases.Case:
    """An sdpa_vjp case: option_case's inputs (the same seed rule) plus grad_output (B, H, L, Ev)."""
    base = _options.option_case(case_id, family=family, description=description, operation="sdpa_vjp", **kw)
    clauses = tuple(c for c in base.clauses if c != "sdpa.grad") + ("sdpa.opt.grad",)
    return _cases._make_case(case_id, "sdpa_vjp", clauses, base.inputs, base.options, base.seed,
                             family, description)


def option_cases() -> list:
    o = vjp_option_case
    f = FAMILY
    return [
        o("sdpa_vjp/opt_window_l2_r0_causal", family=f["window"], window=(2, 0), H=2, L=7, S=7, E=4,
          is_causal=True, description="Mistral-style sliding window: keys outside it get no gradient"),
        o("sdpa_vjp/opt_window_l3_r1_br_gqa", family=f["window"], window=(3, 1), H=4, Hkv=2, L=5, S=9, E=4,
          alignment="bottom_right", description="a window positioned at i + S - L, GQA sums"),
        o("sdpa_vjp/opt_softcap_c5", family=f["softcap"], softcap=5.0, H=2, L=5, S=6, E=8, logits=30.0,
          description="logits near the cap: the slope 1 - tanh^2 matters"),
        o("sdpa_vjp/opt_softcap_c20_logits_60_mask_float", family=f["softcap"], softcap=20.0, L=4, S=7, E=8,
          logits=60.0, mask="float-inf", description="Gemma-2-like cap, float mask after the cap"),
        o("sdpa_vjp/opt_sinks_h3", family=f["sinks"], sinks="normal", H=3, L=5, S=6, E=4,
          description="dsinks = -sum_i w_sink D_i per head"),
        o("sdpa_vjp/opt_sinks_fully_masked_rows", family=f["sinks"], sinks="one_neg_inf", B=2, H=2, L=4, S=5,
          E=4, mask="bool", fully_masked_rows=3,
          description="rows with no key: all weight on the sink (no gradient); a -inf sink gets dsinks 0"),
        o("sdpa_vjp/opt_alibi_bh_causal_br", family=f["alibi"], alibi="bh", B=2, H=2, L=4, S=7, E=4,
          is_causal=True, alignment="bottom_right", description="ALiBi slopes are constants"),
        o("sdpa_vjp/opt_decode_l2_p60", family=f["ragged"], query_offset=[60], L=2, S=62, E=4, H=2,
          is_causal=True, description="a decode step's backward (chunked prefill)"),
        o("sdpa_vjp/opt_key_lengths_b3_zero", family=f["ragged"], key_lengths=[6, 3, 0], B=3, L=3, S=6, E=4,
          description="keys past a sequence's length get zero dk, dv; a sequence with none no gradient"),
        o("sdpa_vjp/opt_combined_all", family=f["window"], window=(3, 1), softcap=4.0, sinks="normal",
          alibi="h", key_lengths=[8, 6], query_lengths=[5, 3], B=2, H=4, Hkv=2, L=5, S=8, E=4,
          logits=12.0, is_causal=True, alignment="bottom_right"),
    ]


def sdpa_vjp_cases() -> list:
    """The sdpa_vjp golden catalogue: the plain gradients' cases, then the kernel options'."""
    return _sdpa_cases.sdpa_vjp_cases() + option_cases()


# --- random families (calibration); shapes from a small pool, options cycling with i ----------
_POOL = [dict(B=1, H=2, L=4, S=6, E=4), dict(B=2, H=2, L=5, S=5, E=4), dict(B=1, H=4, Hkv=2, L=3, S=7, E=4)]
_ALIGN = ("top_left", "bottom_right")


def _fam_window(i):
    return dict(_POOL[i % 3], window=[(2, 0), (1, 1), (None, 0), (0, 2)][(i // 3) % 4],
                alignment=_ALIGN[i % 2], is_causal=bool((i // 2) % 2))


def _fam_softcap(i):
    return dict(_POOL[i % 3], softcap=(2.0, 5.0, 30.0)[i % 3], logits=(6.0, 20.0, 60.0)[(i // 3) % 3])


def _fam_sinks(i):
    kw = dict(_POOL[i % 3], sinks=("normal", "one_neg_inf")[(i // 3) % 2], is_causal=bool(i % 2))
    if (i // 6) % 2:
        kw.update(mask="bool", fully_masked_rows=1)
    return kw


def _fam_alibi(i):
    return dict(_POOL[i % 3], alibi=("h", "bh")[i % 2], alignment=_ALIGN[(i // 2) % 2],
                is_causal=bool((i // 4) % 2))


def _fam_ragged(i):
    if i % 2 == 0:   # a decode step after a past of 0, 5 or 30
        past = (5, 30, 0)[(i // 2) % 3]
        return dict(B=1, H=2, L=2, S=past + 2, E=4, query_offset=[past], is_causal=True)
    return dict(B=2, H=2, L=4, S=6, E=4, key_lengths=[6 - (i // 2) % 4, 1 + (i // 2) % 5],
                query_lengths=(None, [4, 2])[(i // 2) % 2], alignment=_ALIGN[(i // 4) % 2])


def _family(name, make_kw):
    def build(rng, i, case_id):
        return vjp_option_case(case_id, family=name, **make_kw(i))
    return build


OPTION_FAMILIES = {
    FAMILY["window"]: _family(FAMILY["window"], _fam_window),
    FAMILY["softcap"]: _family(FAMILY["softcap"], _fam_softcap),
    FAMILY["sinks"]: _family(FAMILY["sinks"], _fam_sinks),
    FAMILY["alibi"]: _family(FAMILY["alibi"], _fam_alibi),
    FAMILY["ragged"]: _family(FAMILY["ragged"], _fam_ragged),
}
# what the sdpa_vjp entry's `families` names: the plain gradients' family, then the options'
FAMILIES = {**_sdpa_cases.SDPA_VJP_FAMILIES, **OPTION_FAMILIES}
