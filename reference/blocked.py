"""Blocked (online-softmax) float64 evaluation of sdpa and its gradients, for large inputs.

Size (~460 lines): the forward and backward passes share the tiling, the per-block masks and the
running max/sum state; BLAS thread control is attnconf/blas.py.

For what: `attnconf.reference` dispatches here when the (B, H, L, S) logits would not fit in
memory or would be slow to evaluate at once, so that a 64k-token kernel can still be validated
against the reference. Memory is O(threads · block_l · block_s) beyond the inputs and outputs.
Must not: import any framework, change the semantics of spec/ (every option of spec/sdpa.md is
supported here with the same meaning; the kernel options of spec/sdpa_options.md — window,
softcap, sinks, ALiBi, decode offsets, ragged lengths — are not: attnconf.reference.sdpa keeps
those cases on its unblocked path), or run below float64.

Math (clauses sdpa.logits, sdpa.softmax, sdpa.output), per batch b, query head h, query row i:

    s_ij = scale · q_i · k_j  (+ float mask, or -inf where the bool mask / causal rule hides j)
    o_i  = Σ_j exp(s_ij - c_i) v_j  /  λ_i,        λ_i = Σ_j exp(s_ij - c_i)

evaluated over key blocks of `block_s` columns for a block of `block_l` query rows (FlashAttention
style), with one matrix product (block_l × E) @ (E × block_s) for the logits and one
(block_l × block_s) @ (block_s × (Ev + 1)) for the numerator and λ together (V carries a column of
ones). The shift c_i may be any number for which exp neither overflows nor underflows:

* fast pass: c_i = 0. When the row's logits lie within exp's normal range (checked afterwards:
  1e-250 <= λ_i <= 1e250 and the numerator is finite), exp(s_ij) is exact to 1 ulp and the
  max-subtraction pass over the block is unnecessary (it would add one rounding, not remove one).
* careful pass, for the rows the check rejects (large logits, large masks, fully-masked rows):
  the classic running max m_i and rescaled sums, c_i = m_i, block by block
  (acc ← acc · exp(m_old - m_new) + exp(s - m_new) @ [V | 1]).

Rows whose logits are all -inf are fully masked (sdpa.fully_masked): "zero" → 0, "uniform" → the
mean of V over all S keys (JAX/Keras), "nan" → NaN. Causal (sdpa.causal.*): key j is visible to
query i iff j - i <= offset, offset 0 (top_left) or S - L (bottom_right); blocks wholly above the
diagonal are skipped, wholly below are unmasked, only diagonal blocks build a triangle.
GQA (sdpa.gqa): query head h reads key/value head h // (H // Hkv).

Gradients (sdpa.grad), from the saved logsumexp kept as the pair (c_i, λ_i) (logsumexp =
c_i + log λ_i; keeping the pair avoids a log/exp round trip): with P̃ = exp(S - c),
dO' = dO / λ and D'_i = Σ_e dO'_ie · o_ie,

    dV_j += Σ_i P̃_ij dO'_i        dS_ij = P̃_ij · ([dO'_i, -D'_i] · [v_j, 1])
    dQ_i  = scale · Σ_j dS_ij k_j  dK_j += scale · Σ_i dS_ij q_i

(the subtraction of D' is folded into the dO·Vᵀ product). Work is split over key blocks so each
task owns its dK/dV rows; dQ is summed from per-thread buffers.

Threads: blocks run on a thread pool (NumPy ufuncs and BLAS release the GIL) with BLAS limited to
one thread meanwhile (attnconf.blas: threadpoolctl when installed, else OpenBLAS's own
set_num_threads through ctypes); when BLAS threads cannot be limited the blocks run serially to avoid oversubscription.

Shape legend: B batch, H query heads, Hkv key/value heads, L queries, S keys, E head dim,
Ev value dim.
"""
from __future__ import annotations

import concurrent.futures
import os
import threading

import numpy as np

from attnconf.blas import blas_info, blas_threads  # noqa: F401  (blas_info: bench/machine.py reads it here)
from attnconf.reference.sdpa import check_arguments
from attnconf.validation import check_array, fail

BLOCK_L = 256      # query rows per block: a 256 × 1024 float64 logit block is 2 MiB (one L2)
BLOCK_S = 1024     # keys per block

# The fast pass accepts a row when its sum of exp(logits) stays within these bounds: the largest
# term is then >= 1e-250 / S (far above the smallest normal float64, 2.2e-308, for any S < 1e50),
# so every term that matters is a normal number with full precision, and nothing overflowed.
_SAFE_LOW = 1e-250
_SAFE_HIGH = 1e250


# Dispatch threshold of attnconf.reference's default path: from 4 Mi logits (B·H·L·S) on, a
# (B, H, L, S) float64 array is 32 MiB and the default path holds several at once; below it the
# default path is fast enough and its own.
DISPATCH_MIN_LOGITS = 1 << 22


def should_dispatch(batch: int, heads: int, queries: int, keys: int) -> bool:
    """Whether attnconf.reference's float64 default path hands (B, H, L, S) to this module."""
    return batch * heads * queries * keys >= DISPATCH_MIN_LOGITS


def logit_shape(query, key) -> tuple[int, int, int, int]:
    """(B, H, L, S) from raw arguments, or zeros when they are not 4-d arrays (let validation speak)."""
    qs, ks = getattr(query, "shape", ()), getattr(key, "shape", ())
    if len(qs) != 4 or len(ks) != 4:
        return 0, 0, 0, 0
    return int(qs[0]), int(qs[1]), int(qs[2]), int(ks[2])


# -- public API -----------------------------------------------------------------------------------

def sdpa(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
         scale=None, enable_gqa=False, fully_masked="zero", block_l=None, block_s=None,
         threads=None) -> np.ndarray:
    """Blocked float64 sdpa: (B, H, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev) -> (B, H, L, Ev).

    Same options and meaning as `attnconf.reference`'s sdpa (spec/sdpa.md). `block_l`, `block_s`
    and `threads` only change speed (threads None: one per available core).
    """
    out, _, _ = forward(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                        causal_alignment=causal_alignment, scale=scale, enable_gqa=enable_gqa,
                        fully_masked=fully_masked, block_l=block_l, block_s=block_s, threads=threads)
    return out


def forward(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
            scale=None, enable_gqa=False, fully_masked="zero", block_l=None, block_s=None,
            threads=None):
    """(output (B, H, L, Ev), shift c (B, H, L), sum λ (B, H, L)): logsumexp = c + log λ.

    Fully-masked rows have c = -inf and λ = 0.
    """
    p = _Problem(query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                 fully_masked, block_l, block_s)
    out = np.empty((p.B, p.H, p.L, p.Ev))
    shift = np.zeros((p.B, p.H, p.L))
    total = np.zeros((p.B, p.H, p.L))
    tasks = [(b, h, i0, min(i0 + p.block_l, p.L)) for b in range(p.B) for h in range(p.H)
             for i0 in range(0, p.L, p.block_l)]
    tasks.sort(key=lambda t: -p.row_block_work(t[2], t[3]))  # longest first: causal balance

    def run(task):
        b, h, i0, i1 = task
        o, c, lam = _forward_rows(p, b, h, i0, i1)
        out[b, h, i0:i1], shift[b, h, i0:i1], total[b, h, i0:i1] = o, c, lam

    _run_tasks(run, tasks, threads)
    return out, shift, total


def logsumexp(shift: np.ndarray, total: np.ndarray) -> np.ndarray:
    """The saved logsumexp c + log λ of `forward` (-inf for fully-masked rows)."""
    with np.errstate(divide="ignore"):
        return shift + np.log(total)


def sdpa_vjp(query, key, value, grad_output, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, fully_masked="zero",
             block_l=None, block_s=None, threads=None):
    """Blocked float64 gradients (dq, dk, dv) of <sdpa(query, key, value), grad_output>.

    grad_output has the output's shape (B, H, L, Ev). With GQA, dk/dv sum over the query heads
    of a group (sdpa.gqa). Fully-masked rows: "zero" → no gradient; "uniform" → dv gets
    grad_output / S on every key; "nan" → NaN in the row's dq and in its group's dk and dv.
    """
    p = _Problem(query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                 fully_masked, block_l, block_s)
    g = check_array("grad_output", grad_output, ndim=4, legend="(B, H, L, Ev)")
    if g.shape != (p.B, p.H, p.L, p.Ev):
        fail("grad_output shape", f"the output's shape {(p.B, p.H, p.L, p.Ev)}", tuple(g.shape))
    g = np.asarray(g, dtype=np.float64)
    out, shift, total = forward(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                                causal_alignment=causal_alignment, scale=scale,
                                enable_gqa=enable_gqa, fully_masked=fully_masked,
                                block_l=p.block_l, block_s=p.block_s, threads=threads)
    masked_rows = np.isneginf(shift)                       # (B, H, L) fully masked
    lam = np.where(masked_rows, 1.0, total)
    g_scaled = np.where(masked_rows[..., None], 0.0, g / lam[..., None])
    d_scaled = np.einsum("bhle,bhle->bhl", g_scaled, np.where(masked_rows[..., None], 0.0, out))
    # [dO', -D']: the product with [v, 1] gives dP' - D' in one matrix product
    g_aug = np.ascontiguousarray(np.concatenate([g_scaled, -d_scaled[..., None]], axis=-1))
    c = np.where(masked_rows, 0.0, shift)
    dq = np.zeros((p.B, p.H, p.L, p.E))
    dk = np.zeros((p.B, p.Hkv, p.S, p.E))
    dv = np.zeros((p.B, p.Hkv, p.S, p.Ev))
    tasks = [(b, kv, j0, min(j0 + p.block_s, p.S)) for b in range(p.B) for kv in range(p.Hkv)
             for j0 in range(0, p.S, p.block_s)]
    # A fixed split of the key blocks over workers, each with its own dQ buffer summed in worker
    # order: the result depends on the thread count only, never on scheduling (inv.determinism).
    workers = _partition(tasks, [p.key_block_work(t[2], t[3]) for t in tasks], _workers(threads, len(tasks)))
    partials = [np.zeros_like(dq) for _ in workers]

    def run(w):
        for b, kv, j0, j1 in workers[w]:
            dk[b, kv, j0:j1], dv[b, kv, j0:j1] = _backward_keys(p, b, kv, j0, j1, c, g_scaled,
                                                                g_aug, partials[w])

    _run_tasks(run, list(range(len(workers))), threads)
    for part in partials:
        dq += part
    dq *= p.scale
    _gradient_policy(p, g, masked_rows, dq, dk, dv)
    return dq, dk, dv


# -- problem setup --------------------------------------------------------------------------------

class _Problem:
    """Validated float64 inputs and the derived block layout shared by forward and backward."""

    def __init__(self, query, key, value, attn_mask, is_causal, causal_alignment, scale,
                 enable_gqa, fully_masked, block_l, block_s):
        # The default path's validation (same messages at every size); the scale is its exact
        # 1/√E rounded once to float64 (sdpa.scale.default), not 1.0 / math.sqrt(E).
        q, k, v, scale_dd, mask, _ = check_arguments(
            query, key, value, attn_mask=attn_mask, is_causal=is_causal,
            causal_alignment=causal_alignment, scale=scale, enable_gqa=enable_gqa,
            fully_masked=fully_masked)
        self.B, self.H, self.L, self.E = q.shape
        _, self.Hkv, self.S, _ = k.shape
        self.Ev = v.shape[3]
        self.group = self.H // self.Hkv
        self.fully_masked = fully_masked
        self.scale = scale_dd[0]
        self.causal = bool(is_causal)
        self.offset = 0 if causal_alignment == "top_left" else self.S - self.L
        self.block_l = int(block_l or BLOCK_L)
        self.block_s = int(block_s or BLOCK_S)
        # Prescaling q folds `scale` into the logit product instead of a pass over every block.
        self.q = np.ascontiguousarray(np.asarray(q, dtype=np.float64) * self.scale)
        self.k = np.ascontiguousarray(np.asarray(k, dtype=np.float64))
        self.v = np.asarray(v, dtype=np.float64)
        # [V | 1]: one product gives the numerator and λ together.
        self.v_aug = np.concatenate([self.v, np.ones(self.v.shape[:3] + (1,))], axis=-1)
        self.mask_kind, self.mask = _prepare_mask(mask, (self.B, self.H, self.L, self.S))

    def key_range(self, i0: int, i1: int) -> int:
        """One past the last key any of rows i0..i1-1 may see."""
        return max(0, min(self.S, i1 + self.offset)) if self.causal else self.S

    def row_block_work(self, i0: int, i1: int) -> int:
        return (i1 - i0) * self.key_range(i0, i1)

    def query_start(self, j0: int) -> int:
        """First query row that may see key j0 (causal), else 0."""
        return min(self.L, max(0, j0 - self.offset)) if self.causal else 0

    def key_block_work(self, j0: int, j1: int) -> int:
        return (j1 - j0) * (self.L - self.query_start(j0)) * self.group

    def hide(self, s: np.ndarray, b: int, h: int, i0: int, j0: int) -> None:
        """Apply the mask and the causal rule to the logit block s (rows i0.., keys j0..) in place."""
        rows, cols = s.shape
        if self.mask_kind == "bool":
            np.copyto(s, -np.inf, where=self.mask[b, h, i0:i0 + rows, j0:j0 + cols])
        elif self.mask_kind == "float":
            np.add(s, self.mask[b, h, i0:i0 + rows, j0:j0 + cols], out=s)
        if self.causal and j0 + cols - 1 - i0 > self.offset:      # block crosses the diagonal
            np.copyto(s, -np.inf, where=_above_diagonal(rows, cols, self.offset - (j0 - i0)))


def _prepare_mask(attn_mask, full_shape):
    """("none"|"bool"|"float", a view broadcast to (B, H, L, S)) of a mask check_arguments
    accepted; bool becomes "hidden" = ~mask."""
    if attn_mask is None:
        return "none", None
    m = np.asarray(attn_mask)
    if m.dtype != np.bool_:
        m = np.asarray(m, dtype=np.float64)
    if m.dtype == np.bool_:
        return "bool", np.broadcast_to(~m, full_shape)
    return "float", np.broadcast_to(m, full_shape)


_SCRATCH = threading.local()


def _scratch(name: str, rows: int, cols: int) -> np.ndarray:
    """A (rows, cols) float64 work array reused by this thread: one allocation per worker instead
    of one per block keeps the heap from fragmenting across threads (peak RSS) and saves time."""
    bufs = _SCRATCH.__dict__
    buf = bufs.get(name)
    if buf is None or buf.size < rows * cols:
        buf = bufs[name] = np.empty(rows * cols)
    return buf[:rows * cols].reshape(rows, cols)


_TRIANGLES: dict = {}
_TRIANGLES_LOCK = threading.Lock()


def _above_diagonal(rows: int, cols: int, limit: int) -> np.ndarray:
    """Bool (rows, cols): True where col - row > limit (hidden by the causal rule); cached."""
    key = (rows, cols, limit)
    tri = _TRIANGLES.get(key)
    if tri is None:
        tri = (np.arange(cols)[None, :] - np.arange(rows)[:, None]) > limit
        with _TRIANGLES_LOCK:
            if len(_TRIANGLES) > 256:
                _TRIANGLES.clear()
            _TRIANGLES[key] = tri
    return tri


# -- forward --------------------------------------------------------------------------------------

def _forward_rows(p: _Problem, b: int, h: int, i0: int, i1: int):
    """Output rows i0..i1-1 of head (b, h), with their shift c and sum λ."""
    kv = h // p.group
    q = p.q[b, h, i0:i1]
    k, v_aug = p.k[b, kv], p.v_aug[b, kv]
    j_end = p.key_range(i0, i1)
    rows = i1 - i0
    acc = np.zeros((rows, p.Ev + 1))
    s_buf = _scratch("s", rows, min(p.block_s, max(j_end, 1)))
    part = _scratch("part", rows, p.Ev + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        for j0 in range(0, j_end, p.block_s):
            j1 = min(j0 + p.block_s, j_end)
            s = s_buf[:, :j1 - j0]
            np.matmul(q, k[j0:j1].T, out=s)
            p.hide(s, b, h, i0, j0)
            np.exp(s, out=s)                      # fast pass: shift c = 0 (see module docstring)
            np.matmul(s, v_aug[j0:j1], out=part)
            acc += part
    lam = acc[:, -1].copy()
    ok = (lam >= _SAFE_LOW) & (lam <= _SAFE_HIGH) & np.isfinite(acc).all(axis=1)
    out = np.empty((rows, p.Ev))
    shift = np.zeros(rows)
    np.divide(acc[:, :-1], np.where(ok, lam, 1.0)[:, None], out=out)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        out[bad], shift[bad], lam[bad] = _careful_rows(p, b, h, i0 + bad, j_end)
    return out, shift, lam


def _careful_rows(p: _Problem, b: int, h: int, rows: np.ndarray, j_end: int):
    """Running-max online softmax for the query rows `rows` (absolute indices) of head (b, h)."""
    kv = h // p.group
    q = p.q[b, h, rows]
    k, v_aug = p.k[b, kv], p.v_aug[b, kv]
    n = len(rows)
    m = np.full(n, -np.inf)
    acc = np.zeros((n, p.Ev + 1))
    for j0 in range(0, j_end, p.block_s):
        j1 = min(j0 + p.block_s, j_end)
        s = q @ k[j0:j1].T
        _hide_rows(p, s, b, h, rows, j0)
        m_new = np.maximum(m, s.max(axis=1))
        shift = np.where(np.isfinite(m_new), m_new, 0.0)   # all -inf so far: keep zeros
        alpha = np.exp(m - shift)                           # m = -inf → 0: nothing to rescale
        np.subtract(s, shift[:, None], out=s)
        np.exp(s, out=s)
        acc *= alpha[:, None]
        acc += s @ v_aug[j0:j1]
        m = m_new
    lam = acc[:, -1]
    masked = np.isneginf(m)                                 # every logit -inf: sdpa.fully_masked
    out = np.empty((n, p.Ev))
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(acc[:, :-1], np.where(masked, 1.0, lam)[:, None], out=out)
    if masked.any():
        out[masked] = _fully_masked_row(p, b, kv)
        lam = np.where(masked, 0.0, lam)
    return out, m, lam


def _hide_rows(p: _Problem, s: np.ndarray, b: int, h: int, rows: np.ndarray, j0: int) -> None:
    cols = s.shape[1]
    if p.mask_kind == "bool":
        np.copyto(s, -np.inf, where=p.mask[b, h, rows, j0:j0 + cols])
    elif p.mask_kind == "float":
        np.add(s, p.mask[b, h, rows, j0:j0 + cols], out=s)
    if p.causal:
        hidden = (j0 + np.arange(cols)[None, :] - rows[:, None]) > p.offset
        np.copyto(s, -np.inf, where=hidden)


def _fully_masked_row(p: _Problem, b: int, kv: int) -> np.ndarray:
    if p.fully_masked == "zero":
        return np.zeros(p.Ev)
    if p.fully_masked == "uniform":
        return p.v[b, kv].sum(axis=0) / p.S if p.S else np.zeros(p.Ev)
    return np.full(p.Ev, np.nan)


# -- backward -------------------------------------------------------------------------------------

def _backward_keys(p: _Problem, b: int, kv: int, j0: int, j1: int, c, g_scaled, g_aug, dq_acc):
    """(dK, dV) rows j0..j1-1 of kv head (b, kv); adds this key block's part of dQ/scale to dq_acc."""
    k = p.k[b, kv, j0:j1]
    v_aug_t = p.v_aug[b, kv, j0:j1].T
    cols = j1 - j0
    dk = np.zeros((cols, p.E))
    dv = np.zeros((cols, p.Ev))
    i_start = p.query_start(j0)
    s_buf = _scratch("s", p.block_l, cols)
    dp_buf = _scratch("dp", p.block_l, cols)
    with np.errstate(over="ignore", invalid="ignore"):
        for h in range(kv * p.group, (kv + 1) * p.group):
            for i0 in range(i_start - i_start % p.block_l, p.L, p.block_l):
                i1 = min(i0 + p.block_l, p.L)
                if p.key_range(i0, i1) <= j0:
                    continue
                s, dp = s_buf[:i1 - i0], dp_buf[:i1 - i0]
                q = p.q[b, h, i0:i1]
                np.matmul(q, k.T, out=s)
                p.hide(s, b, h, i0, j0)
                shift = c[b, h, i0:i1]
                if shift.any():                   # rows from the careful pass
                    np.subtract(s, shift[:, None], out=s)
                np.exp(s, out=s)                  # P̃ = exp(S - c)
                dv += s.T @ g_scaled[b, h, i0:i1]
                np.matmul(g_aug[b, h, i0:i1], v_aug_t, out=dp)
                np.multiply(s, dp, out=s)         # dS (per unit of prescaled logit)
                dq_acc[b, h, i0:i1] += s @ k
                dk += s.T @ q                     # q is prescaled: carries `scale`
    return dk, dv


def _gradient_policy(p: _Problem, g, masked_rows, dq, dk, dv) -> None:
    """Gradients of fully-masked rows under the "uniform" and "nan" policies (sdpa.fully_masked)."""
    if not masked_rows.any() or p.fully_masked == "zero":
        return
    for b in range(p.B):
        for kv in range(p.Hkv):
            heads = slice(kv * p.group, (kv + 1) * p.group)
            rows = masked_rows[b, heads]                     # (group, L)
            if not rows.any():
                continue
            if p.fully_masked == "uniform":                  # o_i = mean_j v_j
                dv[b, kv] += g[b, heads][rows].sum(axis=0) / p.S
            else:
                dq[b, heads][rows] = np.nan
                dk[b, kv] = np.nan
                dv[b, kv] = np.nan


# -- threads --------------------------------------------------------------------------------------

def default_threads() -> int:
    """Worker threads used when `threads` is None: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _workers(threads, n_tasks: int) -> int:
    n = default_threads() if threads is None else max(1, int(threads))
    return max(1, min(n, n_tasks))


def _partition(tasks: list, work: list, n: int) -> list[list]:
    """Deterministic longest-first split of tasks over n workers (each list keeps its order)."""
    order = sorted(range(len(tasks)), key=lambda i: (-work[i], i))
    loads, parts = [0] * n, [[] for _ in range(n)]
    for i in order:
        w = min(range(n), key=lambda j: (loads[j], j))
        loads[w] += work[i]
        parts[w].append(tasks[i])
    return [part for part in parts if part]


def _run_tasks(fn, tasks, threads) -> None:
    n = _workers(threads, len(tasks))
    if n <= 1:
        for t in tasks:
            fn(t)
        return
    with blas_threads(1) as limited:
        if not limited:                            # cannot stop BLAS threading: stay serial
            for t in tasks:
                fn(t)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            for f in [pool.submit(fn, t) for t in tasks]:
                f.result()
