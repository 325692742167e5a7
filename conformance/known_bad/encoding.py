"""Sinusoidal encoding bugs: layout, frequency family, exponent, offset, odd d, precision."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class EncConcatForInterleaved(ZooAdapter):
    """Returns [sin | cos] (TF tutorial, HF Marian) when the interleaved paper layout is asked
    for. Bug class: encoding layout."""

    name = "known-bad/enc-concat-for-interleaved"
    bug_class = "encoding layout"

    def arrange(self, sin, cos, dim, layout, kind):
        return super().arrange(sin, cos, dim, "concat" if layout == "interleaved" else layout, kind)


class EncSinFirstForCosFirst(ZooAdapter):
    """Ignores the cos-first flag (diffusers `flip_sin_to_cos`) and returns [sin | cos]. Bug
    class: encoding layout."""

    name = "known-bad/enc-ignores-cos-first"
    bug_class = "encoding layout"

    def arrange(self, sin, cos, dim, layout, kind):
        return super().arrange(sin, cos, dim, "concat" if layout == "cos_first" else layout, kind)


class EncT2tForVaswani(ZooAdapter):
    """Uses the tensor2tensor frequencies base^(−i/(d/2−1)) when the paper's base^(−2i/d) is
    asked for (fairseq/Whisper code reused under the paper's name). Bug class: encoding
    frequency family; |ΔPE| reaches 2 within 2048 positions."""

    name = "known-bad/enc-t2t-for-vaswani"
    bug_class = "encoding frequency family"

    def frequencies(self, dim, base, kind, dt):
        if kind == "vaswani" and dim >= 2:
            w = super().frequencies(dim, base, "t2t", dt)
            return np.concatenate([w, w[-1:]])[: (dim + 1) // 2]
        return super().frequencies(dim, base, kind, dt)


class EncExponentIOverD(ZooAdapter):
    """Paper frequencies with exponent i/d instead of 2i/d (base^(−i/d)), a common transcription
    error of the formula. Bug class: encoding exponent."""

    name = "known-bad/enc-exponent-i-over-d"
    bug_class = "encoding exponent"

    def frequencies(self, dim, base, kind, dt):
        if kind == "vaswani":
            i = np.arange((dim + 1) // 2, dtype=np.float64)
            return np.power(base, -i / dim).astype(dt)
        return super().frequencies(dim, base, kind, dt)


class EncBaseIgnored(ZooAdapter):
    """Always uses base 10000 whatever `base` says (a constant left in the code). Bug class:
    encoding base."""

    name = "known-bad/enc-base-ignored"
    bug_class = "encoding base"

    def frequencies(self, dim, base, kind, dt):
        return super().frequencies(dim, 10000.0, kind, dt)


class EncOffsetOffByOne(ZooAdapter):
    """Positions start at offset + 1 (fairseq's padding_idx + 1 convention leaking into a
    start-index API). Bug class: encoding offset."""

    name = "known-bad/enc-offset-off-by-one"
    bug_class = "encoding offset"

    def positions(self, num_positions, offset, dt):
        return super().positions(num_positions, offset + 1 if offset else 0, dt)


class EncOddDimFromDPlus1(ZooAdapter):
    """Odd d: builds the table for d + 1 and drops the last column (TF tutorial's d+1 columns,
    trimmed), so the exponent uses d + 1. Bug class: encoding odd d."""

    name = "known-bad/enc-odd-dim-d-plus-1"
    bug_class = "encoding odd dimension"

    def sinusoidal_encoding(self, num_positions, dim, **kw):
        if dim % 2:
            return super().sinusoidal_encoding(num_positions, dim + 1, **kw)[:, :dim]
        return super().sinusoidal_encoding(num_positions, dim, **kw)


class EncFloat16Angles(ZooAdapter):
    """float16/bfloat16 tables computed with positions and angles in the table's own dtype
    (keras-hub #1494: bfloat16 holds integers only up to 256, float16 up to 2048). Bug class:
    encoding precision."""

    name = "known-bad/enc-low-precision-angles"
    bug_class = "encoding precision"

    def angle_dtype(self, name):
        from attnconf.dtypes import numpy_dtype

        return numpy_dtype(name) if name in ("float16", "bfloat16") else super().angle_dtype(name)
