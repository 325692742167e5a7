"""The multi-head attention layer: golden cases and the random family.

Inputs only (attnconf.reference.cases: Case, representable); the registry entry names the builders
(`cases=`, `families=`). Nothing here is a hand-made expected number."""
from __future__ import annotations

import numpy as np

from attnconf.reference.cases import Case, _make_case, _normal, _seed
from attnconf.reference.sdpa_cases import _mask


def mha_case(case_id: str, clauses=(), *, B=1, L=5, S=None, D=16, Dkv=None, H=2, Hkv=None, E=None,
             Ev=None, bias=True, cross=False, mask=None, mask_shape=None, is_causal=False,
             fully_masked_rows=0, x_std=1.0, description="") -> Case:
    """One multi-head attention case; weights scaled by 1/sqrt(fan_in) like a trained layer.

    x_std: standard deviation of the inputs; large values give large logits (sdpa.range)."""
    Hkv = H if Hkv is None else Hkv
    E = D // H if E is None else E
    Ev = E if Ev is None else Ev
    S = (S or L) if cross else L
    Dkv = (Dkv or D) if cross else D
    seed = _seed(case_id)
    rng = np.random.default_rng(seed)
    x = _normal(rng, (B, L, D), x_std)
    inputs = {"query_input": x, "key_value_input": _normal(rng, (B, S, Dkv), x_std) if cross else x}
    shapes = {"wq": (D, H * E), "wk": (Dkv, Hkv * E), "wv": (Dkv, Hkv * Ev), "wo": (H * Ev, D)}
    for name, shape in shapes.items():
        inputs[name] = _normal(rng, shape, 1.0 / np.sqrt(shape[0]))
    clauses = list(clauses) + (["sdpa.range"] if x_std > 10 else [])
    if bias:
        for name, n in (("bq", H * E), ("bk", Hkv * E), ("bv", Hkv * Ev), ("bo", D)):
            inputs[name] = _normal(rng, (n,), 0.1)
        clauses.append("mha.bias")
    clauses.append("mha.cross" if cross else "mha.projection")
    if Hkv != H:
        clauses.append("mha.gqa")
    if mask is not None:
        m = _mask(rng, mask, tuple(mask_shape or (B, H, L, S)))
        if fully_masked_rows:
            m = np.broadcast_to(m, (B, H, L, S)).copy()
            rows = rng.choice(B * H * L, size=fully_masked_rows, replace=False)
            m.reshape(B * H * L, S)[rows] = False if mask == "bool" else -np.inf
            clauses.append("sdpa.fully_masked")
        inputs["attn_mask"] = m
        clauses.append("mha.mask")
    if is_causal:
        clauses += ["mha.mask", "sdpa.causal.top_left"]
    options = {"num_heads": H, "num_kv_heads": Hkv, "is_causal": is_causal}
    return _make_case(case_id, "multi_head_attention", clauses, inputs, options, seed, "mha", description)


def mha_cases() -> list[Case]:
    m = mha_case
    return [
        m("mha/self_bias_d16_h2", D=16, H=2, L=6),
        m("mha/self_nobias_d12_h3", D=12, H=3, L=7, bias=False),
        m("mha/self_b3_d10_h2_l9", B=3, D=10, H=2, L=9),
        m("mha/cross_bias_d16_dkv10_h4", D=16, Dkv=10, H=4, L=5, S=9, cross=True),
        m("mha/cross_nobias_d8_dkv24_h2", D=8, Dkv=24, H=2, L=7, S=4, cross=True, bias=False),
        m("mha/gqa_self_h4_hkv2", D=16, H=4, Hkv=2, L=6),
        m("mha/gqa_cross_h6_hkv2_bias", D=12, Dkv=9, H=6, Hkv=2, L=4, S=7, cross=True),
        m("mha/mqa_self_h4_hkv1_nobias", D=16, H=4, Hkv=1, L=5, bias=False),
        m("mha/self_causal", D=16, H=2, L=8, is_causal=True),
        m("mha/self_mask_bool_padding", B=2, D=12, H=3, L=6, mask="bool", mask_shape=(2, 1, 1, 6)),
        m("mha/cross_mask_float_ls", D=8, H=2, L=5, S=8, cross=True, mask="float", mask_shape=(5, 8)),
        m("mha/self_ev_ne_e", D=12, H=2, E=5, Ev=7, L=5, description="head dims chosen freely: E=5, Ev=7"),
        m("mha/self_fully_masked_rows", D=8, H=2, L=5, mask="bool", fully_masked_rows=2),
        m("mha/self_d64_h8_l32", D=64, H=8, L=32),
        m("mha/self_large_inputs", D=16, H=2, L=7, x_std=40.0,
          description="inputs of size ~40: logits of order 1e3 must not overflow"),
    ]


def _fam_mha(rng, i, case_id):
    variants = [dict(D=8, H=2, L=4), dict(D=6, H=3, L=5, bias=False),
                dict(D=8, Dkv=5, H=2, L=3, S=6, cross=True), dict(D=8, H=4, Hkv=2, L=4)]
    return mha_case(case_id, **variants[i % 4])


MHA_FAMILIES = {"mha": _fam_mha}
