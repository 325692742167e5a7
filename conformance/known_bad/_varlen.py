"""The zoo control's packed variable-length attention (spec section `varlen`), as small
overridable steps.

`VarlenSteps` is mixed into `_base.ZooAdapter`: its `sdpa_varlen` walks the sequences one by one,
in the control's compute dtype (float64 for float64, float32 otherwise), and runs the steps below
in the spec's order. The bugs of known_bad/varlen.py override one step each. Written from the
spec, sharing no code with attnconf.reference.
"""
from __future__ import annotations

import numpy as np

from attnconf.dtypes import dtype_name


class VarlenSteps:
    """The steps of varlen.*; `self` is a ZooAdapter (compute_dtype, output_dtype, cap …)."""

    varlen_options = ("window", "softcap", "sinks")
    batch_invariant = True    # one sequence at a time, whatever its neighbours

    def varlen_key_range(self, ck, b: int, total: int) -> tuple[int, int]:
        """Key rows [start, end) of sequence b (varlen.layout)."""
        return int(ck[b]), int(ck[b + 1])

    def varlen_positions(self, lb: int, sb: int, alignment: str) -> np.ndarray:
        """p_i of the sequence's queries (varlen.causal): bottom-right i + S_b − L_b, or i."""
        return np.arange(lb) + (sb - lb if alignment == "bottom_right" else 0)

    def varlen_visible(self, pos, sb: int, is_causal: bool, window) -> np.ndarray:
        """(L_b, S_b) bool: the causal rule and the window, measured from p_i."""
        rel = np.arange(sb)[None, :] - pos[:, None]
        ok = np.ones(rel.shape, bool)
        if is_causal:
            ok &= rel <= 0
        if window is not None:
            left, right = window
            if left is not None:
                ok &= rel >= -left
            if right is not None:
                ok &= rel <= right
        return ok

    def varlen_softmax(self, logits, sinks):
        """(p, lse) of (H, L_b, S_b) logits, −∞ hidden; rows with nothing: p 0, lse −∞ (or the sink)."""
        top = logits.max(axis=-1, keepdims=True) if logits.shape[-1] else np.full(logits.shape[:-1] + (1,), -np.inf,
                                                                                    logits.dtype)
        sk = None if sinks is None else np.asarray(sinks).astype(logits.dtype)[:, None, None]
        if sk is not None:
            top = np.maximum(top, sk)
        dead = np.isneginf(top)
        shift = np.where(dead, 0, top)
        e = np.exp(logits - shift)
        z = e.sum(axis=-1, keepdims=True) + (0 if sk is None else np.exp(sk - shift))
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(dead, 0, e / np.where(dead, 1, z))
            lse = np.where(dead, -np.inf, shift + np.log(z))
        return p.astype(logits.dtype), lse[..., 0]

    def varlen_combine(self, p, v, v_all, start: int, end: int):
        """(H, L_b, Ev) = p @ v of the sequence's own values (varlen.padding: nothing else read)."""
        return np.matmul(p, v)

    def varlen_empty_rows(self, out, lse):
        """Rows of a sequence without keys: as the softmax left them (0, −∞ or the sink)."""
        return out, lse

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                    is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False,
                    window=None, softcap=None, sinks=None):
        name = dtype_name(query.dtype)
        cd = self.compute_dtype(name)
        q, k, v = (np.asarray(a).astype(cd) for a in (query, key, value))
        cq, ck = (np.asarray(c).astype(np.int64) for c in (cu_seqlens_q, cu_seqlens_k))
        h, hkv = q.shape[1], k.shape[1]
        if h != hkv and (not enable_gqa or h % hkv):
            raise ValueError(f"query heads {h} and kv heads {hkv} need enable_gqa=True and H % Hkv == 0")
        s = self.effective_scale(scale, q.shape[-1], v.shape[-1])
        out = np.zeros((q.shape[0], h, v.shape[-1]), cd)
        lse = np.full(q.shape[:2], -np.inf, cd)
        v_all = np.repeat(v, h // hkv, axis=1).transpose(1, 0, 2)
        for b in range(cq.size - 1):
            qs, qe = int(cq[b]), int(cq[b + 1])
            ks, ke = self.varlen_key_range(ck, b, k.shape[0])
            if qe == qs:
                continue
            qb = q[qs:qe].transpose(1, 0, 2)                                   # (H, L_b, E)
            kb = np.repeat(k[ks:ke], h // hkv, axis=1).transpose(1, 0, 2)      # (H, S_b, E)
            vb = v_all[:, ks:ke]
            logits = np.matmul(qb, np.swapaxes(kb, -1, -2)) * cd.type(s)
            if softcap is not None:
                logits = self.cap(logits, softcap)
            pos = self.varlen_positions(qe - qs, ke - ks, causal_alignment)
            logits = np.where(self.varlen_visible(pos, ke - ks, is_causal, window)[None], logits, cd.type(-np.inf))
            p, row_lse = self.varlen_softmax(logits, sinks)
            o = self.varlen_combine(p, vb, v_all, ks, ke)
            if ke == ks:
                o, row_lse = self.varlen_empty_rows(o, row_lse)
            out[qs:qe], lse[qs:qe] = o.transpose(1, 0, 2), row_lse.T
        lse_dtype = np.float64 if name == "float64" else np.float32
        return out.astype(self.output_dtype(name)), lse.astype(lse_dtype)
