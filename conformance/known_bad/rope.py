"""Rotary embedding bugs: layout, direction, positions, partial rotary, precision, scaling rules.

Each class overrides one RoPE step of the control (`_base.ZooAdapter`: rope_frequencies,
rope_pairs, rope_cos_sin, or the channel selection of rotary_embedding) and names the real-world
report (docs/findings.md#rope, #rope-scaling, #rope-precision) it mirrors.
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class RopeLayoutSwapped(ZooAdapter):
    """Pairs (i, i + r/2) when interleaved pairs (2i, 2i+1) are asked for and the reverse
    (HF `rotate_half` applied to Meta-layout weights: transformers #25199, torchtitan #335).
    Bug class: rope layout swap."""

    name = "known-bad/rope-layout-swapped"
    bug_class = "rope layout swap"

    def rope_pairs(self, r, layout):
        return super().rope_pairs(r, "half" if layout == "interleaved" else "interleaved")


class RopeReversedRotation(ZooAdapter):
    """Rotates by −θ (a + ib times e^{−iθ}: a sign slip in rotate_half's cat(−x₂, x₁)); norms and
    the relative property still hold, only values tell (spec rope.rotation `reversed`). Bug class:
    rope reversed rotation."""

    name = "known-bad/rope-reversed-rotation"
    bug_class = "rope reversed rotation"

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        c, s = super().rope_cos_sin(positions, w_hi, w_lo, dt)
        return c, -s


class RopePositionsOffByOne(ZooAdapter):
    """Positions counted from 1 (a cache index or past length + 1 used as the position; the
    off-by-one decode reports of vllm PR #945 for ALiBi, the same slip for rotary). Bug class:
    rope positions off by one."""

    name = "known-bad/rope-positions-off-by-one"
    bug_class = "rope positions off by one"

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        return super().rope_cos_sin(positions + 1, w_hi, w_lo, dt)


class RopePositionsIgnored(ZooAdapter):
    """Renumbers the tokens 0 … T−1 whatever the positions say: a KV-cache decode step's offset is
    lost and every new token is rotated as the first (spec rope.positions). Bug class: rope
    positions ignored (decode offsets lost)."""

    name = "known-bad/rope-positions-ignored"
    bug_class = "rope positions ignored"

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        fresh = np.broadcast_to(np.arange(positions.shape[-1], dtype=np.int64), positions.shape)
        return super().rope_cos_sin(fresh, w_hi, w_lo, dt)


class RopePartialTrailingChannels(ZooAdapter):
    """Partial rotary rotates the last r channels and passes the first E − r through (the
    opposite of GPT-NeoX `rotary_ndims` / HF `partial_rotary_factor`, which rotate the first r;
    spec rope.partial `trailing_channels`). Bug class: rope partial rotary on the wrong channels."""

    name = "known-bad/rope-partial-trailing-channels"
    bug_class = "rope partial rotary on the wrong channels"

    def rotary_embedding(self, x, positions, *, rotary_dim=None, **kw):
        e = x.shape[-1]
        r = e if rotary_dim is None else rotary_dim
        if r == e:
            return super().rotary_embedding(x, positions, rotary_dim=rotary_dim, **kw)
        moved = np.concatenate([x[..., e - r:], x[..., : e - r]], axis=-1)   # the last r first
        out = super().rotary_embedding(moved, positions, rotary_dim=r, **kw)
        return np.concatenate([out[..., r:], out[..., :r]], axis=-1)


class RopePartialHeadDimFrequencies(ZooAdapter):
    """Partial rotary with frequencies base^(−2i/E) over the first r channels: inv_freq built from
    head_dim and sliced (spec rope.partial `head_dim_frequencies`; HF models whose rotary class
    ignores partial_rotary_factor). Bug class: rope partial rotary with frequencies from E."""

    name = "known-bad/rope-partial-head-dim-frequencies"
    bug_class = "rope partial rotary with frequencies from E"

    def rotary_embedding(self, x, positions, **kw):
        self._head_dim = x.shape[-1]             # plumbing for the one broken step below
        return super().rotary_embedding(x, positions, **kw)

    def rope_frequencies(self, r, base, scaling, positions):
        hi, lo, m = super().rope_frequencies(self._head_dim, base, scaling, positions)
        return hi[: r // 2], lo[: r // 2], m


class RopeBfloat16Angles(ZooAdapter):
    """bfloat16/float16 inputs get positions and angles in their own dtype (autocast: HF PR
    #29285, gpt-neox PR #1016, Megatron-LM #535; bfloat16 holds integers only up to 256).
    Bug class: rope bf16 angles."""

    name = "known-bad/rope-bf16-angles"
    bug_class = "rope bf16 angles"

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        if self._dtype not in ("float16", "bfloat16"):
            return super().rope_cos_sin(positions, w_hi, w_lo, dt)
        from attnconf.dtypes import numpy_dtype

        low = numpy_dtype(self._dtype)
        with np.errstate(over="ignore", invalid="ignore"):   # float16 positions overflow past 65504
            theta = (positions.astype(low)[:, None, :, None] * w_hi.astype(low)).astype(np.float32)
            return np.cos(theta), np.sin(theta)

    def rotary_embedding(self, x, positions, **kw):
        from attnconf.dtypes import dtype_name

        self._dtype = dtype_name(x.dtype)        # plumbing: the input dtype for rope_cos_sin
        return super().rotary_embedding(x, positions, **kw)


class RopeCosSinBelowDtype(ZooAdapter):
    """cos and sin rounded to bfloat16 for float64, float32 and float16 inputs (a cos/sin cache
    built once in the model's bfloat16 and reused; spec rope.dtype `cos_sin_below_dtype`).
    Bug class: rope cos/sin rounded below the input dtype."""

    name = "known-bad/rope-cos-sin-below-dtype"
    bug_class = "rope cos/sin rounded below the input dtype"

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        from attnconf.dtypes import numpy_dtype

        c, s = super().rope_cos_sin(positions, w_hi, w_lo, dt)
        bf16 = numpy_dtype("bfloat16")
        return c.astype(bf16).astype(dt), s.astype(bf16).astype(dt)


class RopeLinearScalingOnBase(ZooAdapter):
    """Linear scaling applied to the base (base·f) instead of the frequencies (ω/f): neither
    position interpolation nor NTK (spec rope.scaling.linear `base_scaled`). Bug class: rope
    linear scaling applied to the base."""

    name = "known-bad/rope-linear-scaling-on-base"
    bug_class = "rope linear scaling applied to the base"

    def rope_frequencies(self, r, base, scaling, positions):
        if scaling and scaling.get("rope_type") == "linear":
            return super().rope_frequencies(r, base * float(scaling["factor"]), None, positions)
        return super().rope_frequencies(r, base, scaling, positions)


class RopeYarnNoAttentionFactor(ZooAdapter):
    """YaRN frequencies without the attention factor 0.1·ln f + 1 on cos and sin (spec
    rope.scaling.yarn `no_attention_factor`; HF applies it, implementations that scale the
    logits elsewhere drop it here). Bug class: rope YaRN without its attention factor."""

    name = "known-bad/rope-yarn-no-attention-factor"
    bug_class = "rope YaRN without its attention factor"

    def rope_frequencies(self, r, base, scaling, positions):
        hi, lo, m = super().rope_frequencies(r, base, scaling, positions)
        return hi, lo, 1.0


class RopeYarnTruncateFalseDefault(ZooAdapter):
    """YaRN with `truncate` defaulting to False (keras-hub documents YaRN untruncated; gpt-oss omits
    the floor and ceil), where HF v5 and the spec default to True (spec rope.scaling.yarn
    `truncate_false_default`). Bug class: rope YaRN truncate default."""

    name = "known-bad/rope-yarn-truncate-false-default"
    bug_class = "rope YaRN truncate default"

    def rope_frequencies(self, r, base, scaling, positions):
        if scaling and scaling.get("rope_type") == "yarn" and "truncate" not in scaling:
            scaling = dict(scaling, truncate=False)
        return super().rope_frequencies(r, base, scaling, positions)


class RopeLlama3BandsSwapped(ZooAdapter):
    """Llama 3 scaling with the low- and high-frequency rules exchanged: long wavelengths kept,
    short ones divided by f (the comparison of HF `_compute_llama3_parameters` inverted; spec
    rope.scaling.llama3 `bands_swapped`). Bug class: rope llama3 bands swapped."""

    name = "known-bad/rope-llama3-bands-swapped"
    bug_class = "rope llama3 bands swapped"

    def rope_frequencies(self, r, base, scaling, positions):
        if not scaling or scaling.get("rope_type") != "llama3":
            return super().rope_frequencies(r, base, scaling, positions)
        w, _, m = super().rope_frequencies(r, base, None, positions)
        f, l0 = float(scaling["factor"]), float(scaling["original_max_position_embeddings"])
        lo_f, hi_f = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
        wavelen = 2 * np.pi / w
        smooth = np.clip((l0 / wavelen - lo_f) / (hi_f - lo_f), 0.0, 1.0)
        out = np.where(wavelen > l0 / lo_f, w, np.where(wavelen < l0 / hi_f, w / f,
                                                         smooth * w / f + (1 - smooth) * w))
        return out, np.zeros_like(out), m


class RopeFloat32AnglesForFloat64(ZooAdapter):
    """float64 inputs rotated with float32 frequencies and angles (HF's inv_freq is float32 for
    every dtype; measured 9.6e-3 off at position 10^6; spec rope.dtype `float32_angles`). Bug
    class: rope float32 angles for float64."""

    name = "known-bad/rope-float32-angles-for-float64"
    bug_class = "rope float32 angles for float64"

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        c, s = super().rope_cos_sin(positions, w_hi, w_lo, np.dtype(np.float32))
        return c.astype(dt), s.astype(dt)
