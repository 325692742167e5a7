"""Scale bugs: the softmax temperature is slightly or grossly wrong."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class ScaleOff1e5(ZooAdapter):
    """Scale 1e-5 relative too large (a constant rounded to 6 digits, e.g. 1/sqrt(64) written
    0.1250013). Bug class: default scale; invisible at float32/float16, visible at float64 —
    the reason fixed tolerances like ONNX's rtol 1e-3 cannot catch scale errors."""

    name = "known-bad/scale-off-1e-5"
    bug_class = "default scale (small relative error)"

    def effective_scale(self, scale, e, ev):
        return super().effective_scale(scale, e, ev) * (1 + 1e-5)


class ScaleFromPaddedHeadDim(ZooAdapter):
    """Default scale from the head dim padded to a multiple of 8 (ipex-llm PR #12619: scale
    computed after head-dim padding). Bug class: default scale."""

    name = "known-bad/scale-padded-head-dim"
    bug_class = "default scale (after head-dim padding)"

    def default_scale(self, e, ev):
        return 1.0 / np.sqrt(-(-e // 8) * 8)


class ScaleFromValueDim(ZooAdapter):
    """Default scale 1/sqrt(Ev) instead of 1/sqrt(E): equal whenever Ev == E, so only cases with
    a different value dim see it (the JAX/Keras docs name the head dim H for both). Bug class:
    default scale."""

    name = "known-bad/scale-from-value-dim"
    bug_class = "default scale (wrong dimension)"

    def default_scale(self, e, ev):
        return 1.0 / np.sqrt(ev)


class ExplicitScaleIgnored(ZooAdapter):
    """An explicit `scale=` argument is dropped and 1/sqrt(E) used (a wrapper that forgets to
    forward the keyword). Bug class: explicit scale."""

    name = "known-bad/explicit-scale-ignored"
    bug_class = "explicit scale"

    def effective_scale(self, scale, e, ev):
        return self.default_scale(e, ev)
