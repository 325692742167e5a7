"""The zoo control's sdpa kernel options (spec sdpa.opt.*), as small overridable steps.

`OptionSteps` is mixed into `_base.ZooAdapter`: its `sdpa` hands a call that sets any of window,
softcap, sinks, alibi_slopes, query_offset, key_lengths, query_lengths, chunk to `sdpa_options`, which
runs the steps below in the spec's order, in the control's compute dtype (float64 for float64,
float32 otherwise, as its plain sdpa). The bugs of known_bad/sdpa_options.py override one step
each. Written from the spec, sharing no code with attnconf.reference.
"""
from __future__ import annotations

import numpy as np


class OptionSteps:
    """The steps of sdpa.opt.*; `self` is a ZooAdapter (logits, masked_logits, expand_kv …)."""

    # -- positions and the visible set ----------------------------------------------------------
    def query_positions(self, b, l, s, alignment, query_offset, key_lengths, query_lengths):
        """(B, L) int: p_i (sdpa.opt.positions)."""
        i = np.arange(l)[None, :]
        if query_offset is not None:
            return np.asarray(query_offset).reshape(b, 1) + i
        if alignment == "bottom_right":
            kb = np.full(b, s) if key_lengths is None else np.asarray(key_lengths)
            lb = np.full(b, l) if query_lengths is None else np.asarray(query_lengths)
            return (kb - lb).reshape(b, 1) + i
        return np.broadcast_to(i, (b, l))

    def window_allowed(self, rel, window):
        """rel = j − p_i (B, L, S): the window's keys (sdpa.opt.window)."""
        left, right = window
        ok = np.ones(rel.shape, bool)
        if left is not None:
            ok &= rel >= -left
        if right is not None:
            ok &= rel <= right
        return ok

    def frontier_allowed(self, rel):
        """The causal rule in positions: j <= p_i (sdpa.opt.decode)."""
        return rel <= 0

    def chunk_allowed(self, pos, s, chunk):
        """(B, 1, L, S): the same chunk of C positions and j <= p_i (sdpa.opt.chunk)."""
        j = np.arange(s)[None, None, :]
        p = pos[:, :, None]
        return ((j // chunk == p // chunk) & (j <= p))[:, None]

    def key_lengths_allowed(self, b, s, key_lengths):
        return np.arange(s)[None, None, :] < np.asarray(key_lengths).reshape(b, 1, 1)

    def visible(self, pos, s, is_causal, window, key_lengths):
        """(B, 1, L, S) bool or None: causal ∩ window ∩ key lengths."""
        rel = np.arange(s)[None, None, :] - pos[:, :, None]
        ok = np.ones(rel.shape, bool)
        if is_causal:
            ok &= self.frontier_allowed(rel)
        if window is not None:
            ok &= self.window_allowed(rel, tuple(window))
        if key_lengths is not None:
            ok &= self.key_lengths_allowed(pos.shape[0], s, key_lengths)
        return ok[:, None]

    # -- logits -------------------------------------------------------------------------------
    def cap(self, logits, c):
        """sdpa.opt.softcap: c·tanh(s/c); c <= 0 is an error, not "off"."""
        if not c > 0:
            raise ValueError(f"softcap should be None (off) or a finite number > 0, but got {c!r}")
        c = logits.dtype.type(c)
        return c * np.tanh(logits / c)

    def option_alibi_bias(self, slopes, pos, s, dt):
        """−m·|p_i − j| (B or 1, H, L, S) (sdpa.opt.alibi)."""
        m = np.asarray(slopes).astype(dt)
        m = m[None, :, None, None] if m.ndim == 1 else m[:, :, None, None]
        dist = np.abs(np.arange(s)[None, None, :] - pos[:, :, None]).astype(dt)
        return -(m * dist[:, None])

    def option_logits(self, logits, attn_mask, visible, softcap, bias):
        """Cap, bias, then the mask and the visible set (the spec's order)."""
        if softcap is not None:
            logits = self.cap(logits, softcap)
        if bias is not None:
            logits = logits + bias
        return self.masked_logits(logits, attn_mask, visible)

    # -- softmax with sinks, output, padded rows ----------------------------------------------
    def sink_softmax(self, logits, sinks):
        """p_ij = exp(s_ij) / (Σ_k exp(s_ik) + exp(sink_h)); rows with nothing: 0 (sdpa.opt.sinks)."""
        if sinks is None:
            return self.softmax(logits)
        sk = np.asarray(sinks).astype(logits.dtype)[None, :, None, None]
        top = np.maximum(logits.max(axis=-1, keepdims=True), sk)
        dead = np.isneginf(top)
        shift = np.where(dead, 0, top)
        with np.errstate(invalid="ignore"):
            e = np.exp(logits - shift)
            z = e.sum(axis=-1, keepdims=True) + np.exp(sk - shift)
            p = e / z
        return np.where(dead, 0, p).astype(logits.dtype)

    def sink_output(self, out, p, v, sinks):
        """What the sink adds to the output: nothing (sdpa.opt.sinks)."""
        return out

    def pad_rows(self, out, query_lengths):
        """Rows i >= query_lengths[b] give 0 (sdpa.opt.query_lengths)."""
        if query_lengths is None:
            return out
        b, _, l, _ = out.shape
        padded = np.arange(l)[None, :] >= np.asarray(query_lengths).reshape(b, 1)
        return np.where(padded[:, None, :, None], out.dtype.type(0), out)

    def sdpa_options(self, query, key, value, *, attn_mask=None, is_causal=False,
                     causal_alignment="top_left", scale=None, enable_gqa=False, window=None,
                     softcap=None, sinks=None, alibi_slopes=None, query_offset=None,
                     key_lengths=None, query_lengths=None, chunk=None):
        name, q, k, v, s, logits, _ = self._prepare(query, key, value, None, False, causal_alignment,
                                                    scale, enable_gqa)
        b, _, l, _ = q.shape
        sk = k.shape[2]
        pos = self.query_positions(b, l, sk, causal_alignment, query_offset, key_lengths, query_lengths)
        vis = self.visible(pos, sk, is_causal, window, key_lengths)
        if chunk is not None:
            vis = vis & self.chunk_allowed(pos, sk, chunk)
        bias = None if alibi_slopes is None else self.option_alibi_bias(alibi_slopes, pos, sk, logits.dtype)
        logits = self.option_logits(logits, attn_mask, vis, softcap, bias)
        p = self.sink_softmax(logits, sinks)
        out = self.sink_output(self.combine(p, v), p, v, sinks)
        out = self.pad_rows(self.finish(out, p, v), query_lengths)
        return out.astype(self.output_dtype(name))

    # -- gradients (sdpa.opt.grad) ----------------------------------------------------------------
    def backward_visible(self, pos, s, is_causal, window, key_lengths):
        """The visible set the backward pass recomputes P with: the forward's."""
        return self.visible(pos, s, is_causal, window, key_lengths)

    def cap_slope(self, raw, c):
        """d(c·tanh(x/c))/dx = 1 − tanh²(x/c) of the raw logits x."""
        t = np.tanh(raw / raw.dtype.type(c))
        return 1 - t * t

    def sink_weight(self, logits, sinks):
        """exp(sink) / (Σ_j exp(s_ij) + exp(sink)) per row (B, H, L, 1); 0 where nothing is."""
        sk = np.asarray(sinks).astype(logits.dtype)[None, :, None, None]
        top = np.maximum(logits.max(axis=-1, keepdims=True), sk)
        dead = np.isneginf(top)
        shift = np.where(dead, 0, top)
        with np.errstate(invalid="ignore"):
            es = np.exp(sk - shift)
            w = es / (np.exp(logits - shift).sum(axis=-1, keepdims=True) + es)
        return np.where(dead, 0, w).astype(logits.dtype)

    def sink_grad(self, w, d):
        """dsinks_h = −Σ_{b,i} w·D: raising a sink moves weight off the keys."""
        return -(w * d).sum(axis=(0, 2, 3))

    def sdpa_vjp_options(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                         causal_alignment="top_left", scale=None, enable_gqa=False, window=None,
                         softcap=None, sinks=None, alibi_slopes=None, query_offset=None,
                         key_lengths=None, query_lengths=None):
        name, q, k, v, s, raw, hkv = self._prepare(query, key, value, None, False, causal_alignment,
                                                   scale, enable_gqa)
        b, _, l, _ = q.shape
        sk = k.shape[2]
        pos = self.query_positions(b, l, sk, causal_alignment, query_offset, key_lengths, query_lengths)
        vis = self.backward_visible(pos, sk, is_causal, window, key_lengths)
        bias = None if alibi_slopes is None else self.option_alibi_bias(alibi_slopes, pos, sk, raw.dtype)
        logits = self.option_logits(raw, attn_mask, vis, softcap, bias)
        p = self.pad_rows(self.sink_softmax(logits, sinks), query_lengths)
        g = np.asarray(grad_output).astype(q.dtype)
        dv = self.grad_dv(p, g)
        dp = np.matmul(g, np.swapaxes(v, -1, -2))
        d = (p * dp).sum(axis=-1, keepdims=True)
        ds = p * (dp - d)
        if softcap is not None:
            ds = ds * self.cap_slope(raw, softcap)
        dq, dk = self.grad_dq_dk(ds, q, k, s)
        if hkv != q.shape[1]:
            dk, dv = self.reduce_kv_grad(dk, hkv), self.reduce_kv_grad(dv, hkv)
        out = self.output_dtype(name)
        grads = (dq.astype(out), dk.astype(out), dv.astype(out))
        if sinks is not None:
            w = self.pad_rows(self.sink_weight(logits, sinks), query_lengths)
            grads += (self.sink_grad(w, d).astype(out),)
        return grads
