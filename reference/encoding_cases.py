"""Sinusoidal encodings: golden cases and the random families.

Inputs only (attnconf.reference.cases: Case, representable); the registry entry names the builders
(`cases=`, `families=`). Nothing here is a hand-made expected number."""
from __future__ import annotations

from attnconf.reference.cases import Case, _make_case, _seed


def enc_case(case_id: str, clauses=(), *, T=32, d=16, base=10000.0, offset=0, layout="interleaved",
             frequencies="vaswani", description="") -> Case:
    clauses = list(clauses) + [f"enc.frequencies.{frequencies}", f"enc.layout.{layout}"]
    if d % 2:
        clauses.append("enc.odd_dim")
    if base != 10000.0:
        clauses.append("enc.base")
    options = {"num_positions": T, "dim": d, "base": base, "offset": offset, "layout": layout,
               "frequencies": frequencies}
    family = "enc-long" if offset + T > 2048 else "enc"
    return _make_case(case_id, "sinusoidal_encoding", clauses, {}, options, _seed(case_id), family, description)


def encoding_cases() -> list[Case]:
    e = enc_case
    cases = []
    for freq in ("vaswani", "t2t"):
        for layout in ("interleaved", "concat", "cos_first"):
            for d in (16, 7):
                cases.append(e(f"enc/{freq}_{layout}_d{d}", T=40, d=d, layout=layout, frequencies=freq))
        for d in (1, 2, 3):
            cases.append(e(f"enc/{freq}_d{d}", T=24, d=d, frequencies=freq, layout="concat" if freq == "t2t" else "interleaved"))
    cases += [
        e("enc/offset_1000", T=32, d=16, offset=1000),
        e("enc/offset_100000", T=32, d=32, offset=100_000),
        e("enc/offset_1000000", T=16, d=32, offset=1_000_000, description="p up to 10^6 + 15"),
        e("enc/offset_999990_t2t", T=16, d=33, offset=999_990, frequencies="t2t", layout="concat"),
        e("enc/offset_2_fairseq", T=20, d=16, offset=2, frequencies="t2t", layout="concat",
          description="fairseq positions start at padding_idx + 1"),
        e("enc/base_500", T=32, d=16, base=500.0),
        e("enc/base_1e6_t2t_cos_first", T=32, d=12, base=1e6, frequencies="t2t", layout="cos_first"),
        e("enc/base_2_odd", T=16, d=9, base=2.0),
        e("enc/d128_t64", T=64, d=128),
        e("enc/table_8192_d32", T=8192, d=32, description="a long table: float32 angles lose ~1e-3"),
        e("enc/table_4096_t2t_d16", T=4096, d=16, frequencies="t2t", layout="concat"),
    ]
    return cases


def _fam_enc(rng, i, case_id):
    d = [8, 7, 16, 2][i % 4]
    freq = ("vaswani", "t2t")[(i // 4) % 2]
    layout = ("interleaved", "concat", "cos_first")[(i // 8) % 3]
    return enc_case(case_id, T=16, d=d, frequencies=freq, layout=layout,
                    offset=int(rng.integers(0, 64)), base=[10000.0, 500.0][(i // 24) % 2])


def _fam_enc_long(rng, i, case_id):
    return enc_case(case_id, T=8, d=[16, 9][i % 2], offset=int(rng.integers(2048, 1_000_000)),
                    frequencies=("vaswani", "t2t")[(i // 2) % 2],
                    layout=("interleaved", "concat", "cos_first")[(i // 4) % 3])


ENCODING_FAMILIES = {"enc": _fam_enc, "enc-long": _fam_enc_long}
