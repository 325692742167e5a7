"""The golden cases and calibration families of `sdpa_paged` (spec/paged.md, paged.*).

For what: page sizes 1, 16, 256 and odd ones, a partial last page, empty sequences, decode
(L = 1) and prefill chunks, combined with GQA, window, softcap, sinks, ALiBi and chunk; real
logits below a finite −5·10⁴ sentinel. Inputs only: expected values come from the reference
(exact=True). Must not: hold expected numbers; import a framework.

Each case scatters its sequences over the pages in a shuffled order (so a block table read in
order, or off by one, reads another sequence's keys), fills every slot nobody reads — spare pages,
the tail of a partial last page — with garbage 16 times larger than the keys, and points the
block-table entries past a sequence's last page at spare pages (valid indices, garbage content:
an implementation may read them, never use them).
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import cases as _cases

FAMILY = "sdpa-paged"
GARBAGE = 16.0     # unused slots hold N(0, 16²) values (golden-representable)


def paged_case(case_id: str, clauses=(), *, B=1, H=2, Hkv=None, L=1, E=8, Ev=None, page_size=16,
               lengths=(5,), spare_pages=2, extra_table=1, is_causal=True, window=None, softcap=None,
               chunk=None, sinks=None, alibi=False, scale=None, below_sentinel=False,
               family=FAMILY, description="") -> _cases.Case:
    """One sdpa_paged case. lengths: cache_lengths per sequence (B of them); spare_pages: pages
    nobody uses; extra_table: block-table columns beyond the longest sequence's pages.
    below_sentinel: every logit in [−61440, −57344] (scale 1, E = 8, q = 128, k in −60 … −56):
    rows whose real logits lie below a finite −5·10⁴ mask value. E = 8 by default: onnxruntime's
    GroupQueryAttention takes head sizes that are multiples of 8 only."""
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    seed = _cases._seed(case_id)
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths, np.int64)
    assert lengths.shape == (B,)
    need = [int(-(-n // page_size)) for n in lengths]                      # ceil(K_b / P)
    n_pages = sum(need) + spare_pages
    max_pages = max(need + [1]) + extra_table
    order = rng.permutation(n_pages)                                        # physical placement
    spare = order[sum(need):]
    table = np.empty((B, max_pages), np.int64)
    kp = _cases._normal(rng, (n_pages, page_size, Hkv, E), GARBAGE)
    vp = _cases._normal(rng, (n_pages, page_size, Hkv, Ev), GARBAGE)
    start = 0
    for b, n in enumerate(need):
        table[b, :n] = order[start:start + n]
        table[b, n:] = spare[rng.integers(0, len(spare), max_pages - n)] if len(spare) else 0
        start += n
        for t in range(int(lengths[b])):                                    # the real keys: N(0, 1)
            page, slot = table[b, t // page_size], t % page_size
            kp[page, slot] = _cases._normal(rng, (Hkv, E))
            vp[page, slot] = _cases._normal(rng, (Hkv, Ev))
    q = _cases._normal(rng, (B, H, L, E))
    cited = list(clauses) + ["paged.gather", "paged.positions", "paged.garbage"]
    options = {"is_causal": bool(is_causal), "scale": scale, "enable_gqa": Hkv != H}
    if below_sentinel:
        assert E == 8 and scale == 1.0
        q = np.full((B, H, L, E), 128.0)
        for b in range(B):
            for t in range(int(lengths[b])):
                page, slot = table[b, t // page_size], t % page_size
                kp[page, slot] = -(56.0 + rng.integers(0, 5, (Hkv, E)))
        cited.append("paged.sentinel")
    inputs = {"query": q, "key_pages": kp, "value_pages": vp, "block_table": table,
              "cache_lengths": lengths}
    if Hkv != H:
        cited.append("sdpa.gqa")
    if (lengths == 0).any():
        cited.append("paged.empty")
    if (lengths % page_size != 0).any():
        cited.append("paged.partial")
    for name, value, clause in (("window", window, "sdpa.opt.window"), ("softcap", softcap, "sdpa.opt.softcap"),
                                ("chunk", chunk, "sdpa.opt.chunk")):
        if value is not None:
            options[name] = list(value) if name == "window" else value
            cited.append(clause)
    if sinks is not None:
        s = _cases.representable(rng.standard_normal(H) * 2.0)
        inputs["sinks"] = s
        cited.append("sdpa.opt.sinks")
    if alibi:
        from attnconf.reference.sdpa_option_cases import alibi_slopes

        inputs["alibi_slopes"] = alibi_slopes(H)
        cited.append("sdpa.opt.alibi")
    return _cases._make_case(case_id, "sdpa_paged", cited, inputs, options, seed, family, description)


def paged_cases() -> list:
    c = paged_case
    return [
        c("sdpa_paged/p1_decode_b2", page_size=1, B=2, lengths=[5, 3], L=1,
          description="page size 1: every key on a page of its own"),
        c("sdpa_paged/p16_partial_gqa_l3", page_size=16, B=2, H=4, Hkv=2, lengths=[37, 16], L=3,
          description="a partial last page (37 = 2·16 + 5) beside an exactly full one"),
        c("sdpa_paged/p256_l2", page_size=256, B=1, H=1, lengths=[300], L=2, spare_pages=1,
          description="FlashAttention's page size 256 in its tests: 300 keys on two pages"),
        c("sdpa_paged/p5_empty_sequence", page_size=5, B=3, lengths=[0, 7, 13], L=2,
          description="an empty sequence (no key): output 0, lse −∞; page size 5"),
        c("sdpa_paged/p3_prefill_noncausal", page_size=3, B=2, lengths=[10, 4], L=4, is_causal=False, Ev=6,
          description="non-causal: every cached key of the sequence, Ev != E"),
        c("sdpa_paged/p4_l_gt_length", page_size=4, B=2, lengths=[2, 9], L=4,
          description="L > cache length: rows at negative positions see no key (fully masked)"),
        c("sdpa_paged/p5_window_softcap_sinks_alibi", page_size=5, B=2, H=4, Hkv=2, lengths=[11, 4], L=2,
          window=(3, 0), softcap=4.0, sinks="normal", alibi=True,
          description="gpt-oss-like decode: window, softcap, sinks and ALiBi from the cache positions"),
        c("sdpa_paged/p3_chunk4", page_size=3, B=2, lengths=[10, 6], L=3, chunk=4,
          description="chunked local attention (C = 4) from the cache positions"),
        c("sdpa_paged/p7_empty_with_sinks", page_size=7, B=2, lengths=[0, 0], L=1, sinks="normal",
          description="no keys at all, sinks: output 0, lse = the sink"),
        c("sdpa_paged/p4_below_sentinel", page_size=4, B=1, H=1, lengths=[6], L=3, scale=1.0,
          below_sentinel=True,
          description="every real logit below −5·10⁴: a finite −5·10⁴ mask value would outweigh them"),
    ]


# --- random family (calibration): shapes from a small pool, options cycling with i -----------------
def _family(rng, i, case_id):
    page = (1, 3, 4, 16)[i % 4]
    B = 1 + (i // 4) % 2
    lengths = [int(x) for x in rng.integers(0 if i % 5 == 0 else 1, 12, B)]
    kw = dict(page_size=page, B=B, H=2, Hkv=(2, 1)[(i // 2) % 2], lengths=lengths, L=(1, 2, 3)[i % 3],
              is_causal=bool(i % 7 != 3))
    extra = (i // 8) % 4
    if extra == 1:
        kw["window"] = (2, 0)
    elif extra == 2:
        kw["chunk"] = 3
    elif extra == 3:
        kw.update(sinks="normal", softcap=5.0)
    return paged_case(case_id, family=FAMILY, **kw)


FAMILIES = {FAMILY: _family}
