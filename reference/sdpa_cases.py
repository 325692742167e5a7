"""SDPA and its gradients: the golden cases (sdpa_cases, sdpa_vjp_cases) and the random families calibration draws.

Inputs only (attnconf.reference.cases: Case, representable); the registry entry names the builders
(`cases=`, `families=`). Nothing here is a hand-made expected number."""
from __future__ import annotations

import numpy as np

from attnconf.reference.cases import Case, _make_case, _normal, _seed, representable


def _mask(rng, kind: str, shape, *, ensure_visible: bool = True, neg_inf: float = 0.0) -> np.ndarray:
    """A boolean mask (True = takes part) or an additive float mask of the given (broadcast) shape.

    ensure_visible: every row keeps at least one visible key, so that no row is fully masked by
    accident (fully-masked rows are their own cases). neg_inf: fraction of float entries at −∞.
    """
    visible = rng.random(shape) < 0.7
    if ensure_visible:
        visible[..., 0] |= ~visible.any(axis=-1)
    if kind == "bool":
        return visible
    values = _normal(rng, shape, 2.0)
    if neg_inf:
        hidden = (rng.random(shape) < neg_inf)
        if ensure_visible:
            hidden[..., 0] &= False
        values[hidden] = -np.inf
    return values


def _scale_logits(rng, q, k, scale, target: float, negative: bool = False):
    """Rescale q and k so that the largest |logit| is close to `target` (then rounded to golden
    values). negative: make every logit negative, near −target, so that a softmax which does not
    subtract the row maximum underflows to 0/0."""
    if negative:
        w = rng.standard_normal(q.shape[-1])
        k = w + 0.05 * rng.standard_normal(k.shape)
        q = -(w + 0.05 * rng.standard_normal(q.shape))
    logits = np.einsum("bhle,bhse->bhls", q, np.repeat(k, q.shape[1] // k.shape[1], axis=1)) * scale
    factor = np.sqrt(target / np.abs(logits).max())
    return representable(q * factor), representable(k * factor)


def sdpa_case(case_id: str, clauses=(), *, B=1, H=1, Hkv=None, L=4, S=4, E=8, Ev=None,
              mask=None, mask_shape=None, is_causal=False, alignment="top_left", scale=None,
              logits=None, negative_logits=False, fully_masked_rows=0, operation="sdpa",
              family="", description="", tweak=None) -> Case:
    """One SDPA (or sdpa_vjp) case: random golden-representable inputs of the given sizes.

    mask: None | "bool" | "float" | "float-inf" (float with −∞ entries) | "float-large" (a row of
    large finite negatives). fully_masked_rows: how many (b, h, i) rows to mask completely.
    tweak: optional callable(inputs, rng) for a special input pattern.
    """
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    seed = _seed(case_id)
    rng = np.random.default_rng(seed)
    eff_scale = 1.0 / np.sqrt(E) if scale is None else scale
    q, k = _normal(rng, (B, H, L, E)), _normal(rng, (B, Hkv, S, E))
    if logits is not None:
        q, k = _scale_logits(rng, q, k, eff_scale, logits, negative_logits)
    inputs = {"query": q, "key": k, "value": _normal(rng, (B, Hkv, S, Ev))}
    clauses = list(clauses)
    clauses.append("sdpa.scale.default" if scale is None else "sdpa.scale.explicit")
    if Ev != E:
        clauses.append("sdpa.value_dim")
    if Hkv != H:
        clauses.append("sdpa.gqa")
    if logits is not None:
        clauses.append("sdpa.range")
    if is_causal:
        clauses.append(f"sdpa.causal.{alignment}")
    if mask is not None:
        shape = tuple(mask_shape or (B, H, L, S))
        kind = "bool" if mask == "bool" else "float"
        m = _mask(rng, kind, shape, neg_inf=0.2 if mask == "float-inf" else 0.0)
        if mask == "float-large":
            m[..., 0, :] = representable(-60000.0)  # finite: NOT a masked row (sdpa.fully_masked)
        if fully_masked_rows:
            full = np.broadcast_to(m, (B, H, L, S)).copy()
            rows = rng.choice(B * H * L, size=fully_masked_rows, replace=False)
            full.reshape(B * H * L, S)[rows] = False if kind == "bool" else -np.inf
            m, shape = full, full.shape
        inputs["attn_mask"] = m
        clauses.append(f"sdpa.mask.{kind}")
        if shape != (B, H, L, S):
            clauses.append("sdpa.mask.broadcast")
        if is_causal:
            clauses.append("sdpa.mask_and_causal")
    if fully_masked_rows or (is_causal and alignment == "bottom_right" and L > S):
        clauses.append("sdpa.fully_masked")
    if operation == "sdpa_vjp":
        inputs["grad_output"] = _normal(rng, (B, H, L, Ev))
    if tweak is not None:
        tweak(inputs, rng)
    options = {"is_causal": is_causal, "causal_alignment": alignment, "scale": scale,
               "enable_gqa": Hkv != H}
    if not family:
        family = "sdpa-vjp" if operation == "sdpa_vjp" else "sdpa"
    return _make_case(case_id, operation, clauses, inputs, options, seed, family, description)


def _zero_queries(inputs, rng):
    inputs["query"][...] = 0.0  # every weight 1/S: the output is the mean of V


def _repeated_keys(inputs, rng):
    inputs["key"][...] = inputs["key"][:, :, :1, :]  # all keys equal: uniform weights again


def sdpa_cases() -> list[Case]:
    c = sdpa_case
    f = "sdpa-mask"
    cases = [
        # sizes: odd, degenerate, L < S, L > S, batch > 1, Ev != E
        c("sdpa/size_l1_s1_e1", L=1, S=1, E=1, description="smallest problem: one query, one key"),
        c("sdpa/size_odd_l7_s13_e5", L=7, S=13, E=5),
        c("sdpa/size_l_gt_s_l11_s3", L=11, S=3, E=6),
        c("sdpa/size_l_lt_s_l3_s29", L=3, S=29, E=7),
        c("sdpa/size_b3_h2_l9_s11_e8", B=3, H=2, L=9, S=11, E=8),
        c("sdpa/size_b2_h5_l6_s10_e3", B=2, H=5, L=6, S=10, E=3),
        c("sdpa/size_e64_l16_s16", L=16, S=16, E=64),
        c("sdpa/size_e96_h2_l9_s33", H=2, L=9, S=33, E=96),
        c("sdpa/size_l1_s64_decode", L=1, S=64, E=16, description="one decoding step"),
        c("sdpa/value_dim_e12_ev20", H=3, L=5, S=8, E=12, Ev=20),
        c("sdpa/value_dim_e16_ev3", L=6, S=9, E=16, Ev=3),
        c("sdpa/value_dim_e4_ev32", B=2, L=4, S=7, E=4, Ev=32),
        c("sdpa/value_dim_ev1", L=5, S=5, E=9, Ev=1),
        c("sdpa/uniform_zero_query", L=4, S=9, E=8, tweak=_zero_queries,
          description="q = 0: uniform weights, the output is the mean of V"),
        c("sdpa/uniform_equal_keys", L=5, S=6, E=4, tweak=_repeated_keys),
        # scale
        c("sdpa/scale_explicit_0p3", L=6, S=7, E=8, scale=0.3),
        c("sdpa/scale_explicit_1p7", L=5, S=9, E=4, scale=1.7, description="scale > 1"),
        c("sdpa/scale_explicit_ev_ne_e", L=4, S=6, E=8, Ev=5, scale=0.45),
        c("sdpa/scale_default_e3_ev7", L=5, S=5, E=3, Ev=7, description="1/sqrt(E), not 1/sqrt(Ev)"),
        c("sdpa/scale_default_e17", L=4, S=8, E=17, description="E not a power of two or square"),
        # boolean masks, every broadcast shape
        c("sdpa/mask_bool_full", B=2, H=2, L=5, S=7, mask="bool", family=f),
        c("sdpa/mask_bool_ls", B=2, H=3, L=6, S=9, mask="bool", mask_shape=(6, 9), family=f),
        c("sdpa/mask_bool_1s", B=2, H=2, L=4, S=8, mask="bool", mask_shape=(1, 8), family=f),
        c("sdpa/mask_bool_b11s_padding", B=3, H=2, L=5, S=10, mask="bool", mask_shape=(3, 1, 1, 10),
          family=f, description="key padding mask"),
        c("sdpa/mask_bool_hls", B=2, H=3, L=4, S=6, mask="bool", mask_shape=(3, 4, 6), family=f),
        c("sdpa/mask_bool_b1ls", B=2, H=4, L=3, S=5, mask="bool", mask_shape=(2, 1, 3, 5), family=f),
        # float masks
        c("sdpa/mask_float_full", B=2, H=2, L=5, S=6, mask="float", family=f),
        c("sdpa/mask_float_ls", H=3, L=7, S=5, mask="float", mask_shape=(7, 5), family=f),
        c("sdpa/mask_float_b11s", B=2, H=2, L=4, S=9, mask="float-inf", mask_shape=(2, 1, 1, 9), family=f),
        c("sdpa/mask_float_neg_inf", B=1, H=2, L=8, S=8, mask="float-inf", family=f),
        c("sdpa/mask_float_hls", B=2, H=2, L=3, S=7, mask="float", mask_shape=(2, 3, 7), family=f),
        c("sdpa/mask_float_large_finite", H=2, L=4, S=6, mask="float-large", family=f,
          description="a row of -60000 entries is an ordinary softmax, not a fully-masked row"),
        c("sdpa/mask_float_scale_explicit", L=5, S=7, E=6, mask="float", scale=0.6, family=f,
          description="the mask is added after scaling"),
        # causal, both alignments, L = S, L < S, L > S
    ]
    f = "sdpa-causal"
    for align, tag in (("top_left", "tl"), ("bottom_right", "br")):
        cases += [
            c(f"sdpa/causal_{tag}_square_l9", H=2, L=9, S=9, E=8, is_causal=True, alignment=align, family=f),
            c(f"sdpa/causal_{tag}_l5_s12", L=5, S=12, E=6, is_causal=True, alignment=align, family=f),
            c(f"sdpa/causal_{tag}_l12_s5", L=12, S=5, E=6, is_causal=True, alignment=align, family=f),
            c(f"sdpa/causal_{tag}_l1_s33", L=1, S=33, E=8, is_causal=True, alignment=align, family=f,
              description="decoding step: top_left sees key 0 only, bottom_right sees all"),
            c(f"sdpa/causal_{tag}_b2_h3_l7_s10", B=2, H=3, L=7, S=10, E=5, is_causal=True,
              alignment=align, family=f),
            c(f"sdpa/mask_bool_causal_{tag}", B=2, H=2, L=6, S=9, mask="bool", is_causal=True,
              alignment=align, family=f),
            c(f"sdpa/mask_float_causal_{tag}", H=2, L=7, S=5, mask="float", mask_shape=(7, 5),
              is_causal=True, alignment=align, family=f),
        ]
    f = "sdpa-fully-masked"
    cases += [
        c("sdpa/fully_masked_bool_rows", B=2, H=2, L=6, S=7, mask="bool", fully_masked_rows=4, family=f),
        c("sdpa/fully_masked_float_rows", H=2, L=5, S=8, mask="float", fully_masked_rows=3, family=f),
        c("sdpa/fully_masked_padding_ls", B=1, H=3, L=4, S=6, mask="bool", mask_shape=(4, 6),
          fully_masked_rows=2, family=f),
        c("sdpa/fully_masked_causal_br_l9_s4", L=9, S=4, E=5, is_causal=True, alignment="bottom_right",
          family=f, description="bottom-right with L > S: the first L - S rows see no key"),
        c("sdpa/fully_masked_mask_and_causal", B=1, H=2, L=5, S=5, mask="bool", fully_masked_rows=2,
          is_causal=True, family=f),
        c("sdpa/fully_masked_ev_ne_e", H=2, L=4, S=5, E=6, Ev=9, mask="float-inf", fully_masked_rows=2,
          family=f),
    ]
    f = "sdpa-gqa"
    cases += [
        c("sdpa/gqa_h4_hkv2", H=4, Hkv=2, L=5, S=7, E=8, family=f),
        c("sdpa/gqa_h8_hkv2", B=2, H=8, Hkv=2, L=3, S=6, E=4, family=f),
        c("sdpa/gqa_h6_hkv3", H=6, Hkv=3, L=4, S=9, E=5, family=f),
        c("sdpa/gqa_h4_hkv2_causal_br", H=4, Hkv=2, L=4, S=9, E=8, is_causal=True, alignment="bottom_right", family=f),
        c("sdpa/gqa_h4_hkv2_causal_tl", H=4, Hkv=2, L=9, S=4, E=8, is_causal=True, family=f),
        c("sdpa/gqa_h8_hkv2_mask_bool", H=8, Hkv=2, L=4, S=6, E=4, mask="bool", family=f),
        c("sdpa/gqa_h4_hkv2_mask_float_hls", B=2, H=4, Hkv=2, L=3, S=5, E=4, mask="float",
          mask_shape=(4, 3, 5), family=f),
        c("sdpa/gqa_h4_hkv2_scale_ev", H=4, Hkv=2, L=5, S=6, E=8, Ev=6, scale=0.7, family=f),
        c("sdpa/mqa_h4_hkv1", H=4, Hkv=1, L=6, S=8, E=8, family=f),
        c("sdpa/mqa_h3_hkv1_ev_ne_e", B=2, H=3, Hkv=1, L=5, S=7, E=6, Ev=10, family=f),
    ]
    f = "sdpa-large-logits"
    cases += [
        c("sdpa/logits_1e3", H=2, L=6, S=8, E=16, logits=1e3, family=f),
        c("sdpa/logits_1e4", H=2, L=6, S=8, E=16, logits=1e4, family=f),
        c("sdpa/logits_neg_1e3", L=5, S=9, E=16, logits=1e3, negative_logits=True, family=f),
        c("sdpa/logits_neg_1e4", L=5, S=9, E=16, logits=1e4, negative_logits=True, family=f,
          description="every logit near -1e4: exp without the row maximum underflows to 0/0"),
        c("sdpa/logits_1e4_causal_tl", L=8, S=8, E=8, logits=1e4, is_causal=True, family=f),
        c("sdpa/logits_1e3_gqa", H=4, Hkv=2, L=4, S=6, E=8, logits=1e3, family=f),
        c("sdpa/logits_1e4_mask_float", L=5, S=7, E=8, logits=1e4, mask="float-inf", family=f),
        c("sdpa/logits_1e4_scale_explicit", L=4, S=6, E=8, logits=1e4, scale=0.9, family=f),
    ]
    f = "sdpa-long"
    cases += [
        c("sdpa/long_s512", L=16, S=512, E=16, family=f, description="S >= 512: blocked softmax"),
        c("sdpa/long_s512_l512_causal_tl", L=512, S=512, E=8, is_causal=True, family=f),
        c("sdpa/long_s1024_causal_br", L=32, S=1024, E=8, is_causal=True, alignment="bottom_right", family=f),
        c("sdpa/long_s777_mask_bool", L=8, S=777, E=8, mask="bool", mask_shape=(8, 777), family=f),
        c("sdpa/long_s2048_h2", H=2, L=4, S=2048, E=8, family=f),
        c("sdpa/long_s600_gqa_logits_1e3", H=4, Hkv=2, L=8, S=600, E=8, logits=1e3, family=f),
        c("sdpa/long_s513_fully_masked", L=6, S=513, E=4, mask="bool", mask_shape=(6, 513),
          fully_masked_rows=2, family=f),
    ]
    from attnconf.reference.position_cases import sdpa_bias_cases   # masks that ARE an ALiBi / T5 bias

    return cases + sdpa_bias_cases()


def sdpa_vjp_cases() -> list[Case]:
    def v(case_id, **kw):
        return sdpa_case(case_id, operation="sdpa_vjp", family="sdpa-vjp", **kw)

    return [
        v("sdpa_vjp/basic_l5_s7", H=2, L=5, S=7, E=6),
        v("sdpa_vjp/value_dim_e8_ev3", L=4, S=6, E=8, Ev=3),
        v("sdpa_vjp/scale_explicit", L=6, S=5, E=4, scale=0.35),
        v("sdpa_vjp/causal_tl_l8", L=8, S=8, E=4, is_causal=True),
        v("sdpa_vjp/causal_br_l7_s3", L=7, S=3, E=4, is_causal=True, alignment="bottom_right"),
        v("sdpa_vjp/gqa_h4_hkv2", B=2, H=4, Hkv=2, L=4, S=6, E=5),
        v("sdpa_vjp/mqa_h3_hkv1_mask_bool", H=3, Hkv=1, L=5, S=5, E=4, mask="bool"),
        v("sdpa_vjp/mask_float_fully_masked", H=2, L=6, S=7, E=4, mask="float-inf", fully_masked_rows=2),
        v("sdpa_vjp/logits_1e3", L=5, S=6, E=8, logits=1e3),
        v("sdpa_vjp/long_s512", L=8, S=512, E=8),
        v("sdpa_vjp/mask_bool_padding_causal_br", B=2, H=2, L=4, S=7, E=4, mask="bool",
          mask_shape=(2, 1, 1, 7), is_causal=True, alignment="bottom_right"),
    ]


# --- random case families (calibration: attnconf.conformance.calibration.random_case) ---------
# A family builder is (rng, i, case_id) -> Case; each entry's `families` path names a dict
# {family: builder}. Shapes come from a small pool per family and values from the seed: a pool
# lets per-shape-compiling frameworks (JAX) reuse their kernels. Static options (explicit scale,
# mask shape, alignment) cycle with the shape rather than vary freely: jitted kernels compile
# once per combination, so a few combinations keep JAX fast.
_SDPA_SHAPES = [dict(B=1, H=1, L=4, S=6, E=4), dict(B=2, H=2, L=5, S=3, E=8, Ev=5),
                dict(B=1, H=3, L=1, S=9, E=2), dict(B=2, H=1, L=7, S=7, E=6)]


def _pool(i, **kw):
    return dict(_SDPA_SHAPES[i % len(_SDPA_SHAPES)], **kw)


def _fam_mask(i):
    kw = _pool(i, mask=["bool", "float", "float-inf"][(i // 4) % 3])
    b, h, l, s = kw["B"], kw["H"], kw["L"], kw["S"]
    kw["mask_shape"] = [(b, h, l, s), (l, s), (b, 1, 1, s), (1, s)][i % 4]
    return kw


def _fam_fully_masked(i):
    kw = _pool(i, mask=("bool", "float")[(i // 4) % 2])
    kw["fully_masked_rows"] = 1 + (i // 8) % min(3, kw["B"] * kw["H"] * kw["L"])
    return kw


def _fam_gqa(i):
    hkv, g = [(1, 2), (2, 2), (1, 4), (2, 3)][i % 4]
    return dict(B=1 + i % 2, H=hkv * g, Hkv=hkv, L=[3, 5][i % 2], S=[6, 4][i % 2], E=4,
                is_causal=bool((i // 4) % 2))


def _fam_vjp(i):
    kw = _pool(i)
    if (i // 4) % 3 == 1:
        kw.update(is_causal=True)
    if (i // 4) % 3 == 2:
        kw.update(mask="bool")
    return kw


def _sdpa_family(family, make_kw, operation="sdpa"):
    def build(rng, i, case_id):
        return sdpa_case(case_id, operation=operation, family=family, **make_kw(i))
    return build


SDPA_FAMILIES = {
    "sdpa": _sdpa_family("sdpa", lambda i: _pool(i, scale=(None, 0.35, 1.5)[(i // 4) % 3])),
    "sdpa-mask": _sdpa_family("sdpa-mask", _fam_mask),
    "sdpa-causal": _sdpa_family("sdpa-causal", lambda i: _pool(
        i, is_causal=True, alignment=("top_left", "bottom_right")[(i // 4) % 2])),
    "sdpa-fully-masked": _sdpa_family("sdpa-fully-masked", _fam_fully_masked),
    "sdpa-gqa": _sdpa_family("sdpa-gqa", _fam_gqa),
    "sdpa-large-logits": _sdpa_family("sdpa-large-logits", lambda i: _pool(
        i, logits=[1e2, 1e3, 1e4][i % 3], negative_logits=bool((i // 3) % 2))),
    "sdpa-long": _sdpa_family("sdpa-long", lambda i: dict(B=1, H=1, L=[2, 3][i % 2], S=[300, 520][(i // 2) % 2], E=4)),
}


SDPA_VJP_FAMILIES = {"sdpa-vjp": _sdpa_family("sdpa-vjp", _fam_vjp, operation="sdpa_vjp")}
