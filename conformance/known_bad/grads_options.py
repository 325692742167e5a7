"""Gradient bugs of the sdpa kernel options (spec sdpa.opt.grad): dsinks with the wrong sign, the
soft-cap's slope left out, a window's gradient leaking into hidden keys.

Each class overrides one gradient step of `_sdpa_options.OptionSteps` (mixed into the control).
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class DsinksWrongSign(ZooAdapter):
    """dsinks = +Σ w·D instead of −Σ w·D: a sink's gradient pushing the wrong way (a learnable-sink
    backward written from the forward's "+exp(sink)" term; FlashAttention 4 computes
    −Σ exp(sink − lse)·D; spec `dsinks_sign`). Bug class: dsinks with the wrong sign."""

    name = "known-bad/grad-dsinks-wrong-sign"
    bug_class = "gradient: dsinks with the wrong sign"

    def sink_grad(self, w, d):
        return -super().sink_grad(w, d)


class GradSoftcapNoSlope(ZooAdapter):
    """dS passed to dq and dk without the soft-cap's slope 1 − tanh²(x/c), as if the cap were the
    identity in the backward (the class of FlashAttention's wrong softcap dq in its varlen
    backward, PR #2544; spec `softcap_no_slope`). Bug class: softcap gradient missing 1 − tanh²."""

    name = "known-bad/grad-softcap-no-slope"
    bug_class = "gradient: softcap missing its 1 − tanh² factor"

    def cap_slope(self, raw, c):
        return np.ones_like(raw)


class GradWindowLeak(ZooAdapter):
    """The backward recomputes P without the sliding window (the forward had it), so keys outside
    the window get dk and dv and every gradient is off (a backward kernel that drops the window
    from its mask iterator; spec `window_leak`). Bug class: window gradient leaking into hidden
    keys."""

    name = "known-bad/grad-window-leak"
    bug_class = "gradient: window leaking into hidden keys"

    def backward_visible(self, pos, s, is_causal, window, key_lengths):
        return super().backward_visible(pos, s, is_causal, None, key_lengths)
