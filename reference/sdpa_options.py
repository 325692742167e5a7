"""The options of current attention kernels (spec/sdpa_options.md, clauses sdpa.opt.*): their
validation and the arrays they turn into, for attnconf.reference.sdpa.

For what: sliding windows, soft-capping, sinks, ALiBi slopes, KV-cache decode offsets and ragged
lengths, as options of the one sdpa operation. This module only *validates* them (called from
reference.sdpa.check_arguments, the one validation of every sdpa path) and builds the position,
visibility and bias arrays the reference's evaluation uses; the softmax itself stays in sdpa.py.
Must not import any framework.

Per batch b, query head h, query row i, key j (keys at absolute positions 0 … S−1):

    p_i  = query_offset[b] + i                     (sdpa.opt.positions, a decode step)
         | i + (K_b − L_b)   bottom_right          (K_b = key_lengths[b] or S, L_b = query_lengths[b] or L)
         | i                 top_left
    s_ij = c·tanh(scale·q_i·k_j / c)               (sdpa.opt.softcap; before mask and bias)
           − m_h·|p_i − j|                         (sdpa.opt.alibi)
    hidden: j > p_i (causal), j − p_i ∉ [−left, right] (sdpa.opt.window), j ≥ key_lengths[b],
            ⌊j / C⌋ ≠ ⌊p_i / C⌋ or j > p_i (sdpa.opt.chunk: chunked local attention, chunk size C)
    p_ij = exp(s_ij) / (Σ_k exp(s_ik) + exp(sink_h))   (sdpa.opt.sinks)
    rows i ≥ query_lengths[b]: output 0              (sdpa.opt.query_lengths)
"""
from __future__ import annotations

import dataclasses

import numpy as np

from attnconf.validation import check_positive, fail

# The option names, in the order of the adapter signature (attnconf.choices; the sdpa entry re-exports them).
from attnconf.choices import SDPA_OPTION_NAMES as OPTION_NAMES  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Options:
    """Validated option values: None where unset; integer arrays int64, float arrays float64."""

    window: tuple | None = None            # (left, right), each None or int >= 0
    softcap: float | None = None
    sinks: np.ndarray | None = None        # (H,)
    alibi_slopes: np.ndarray | None = None  # (H,) or (B, H)
    query_offset: np.ndarray | None = None  # (B,)
    key_lengths: np.ndarray | None = None   # (B,)
    query_lengths: np.ndarray | None = None  # (B,)
    chunk: int | None = None               # C >= 1: chunked local attention (sdpa.opt.chunk)

    def any(self) -> bool:
        return any(getattr(self, n) is not None for n in OPTION_NAMES)


def check(shape, *, causal_alignment="top_left", window=None, softcap=None, sinks=None,
          alibi_slopes=None, query_offset=None, key_lengths=None, query_lengths=None, chunk=None) -> Options:
    """Validate the options for logits of shape (B, H, L, S); one-line errors "X should be …"."""
    b, h, l, s = shape
    return Options(
        window=_window(window),
        softcap=_softcap(softcap),
        sinks=_floats("sinks", sinks, ((h,),), "(H,)", allow_neg_inf=True),
        alibi_slopes=_floats("alibi_slopes", alibi_slopes, ((h,), (b, h)), "(H,) or (B, H)"),
        query_offset=_offset(query_offset, b, causal_alignment),
        key_lengths=_lengths("key_lengths", key_lengths, b, s, "S"),
        query_lengths=_lengths("query_lengths", query_lengths, b, l, "L"),
        chunk=_chunk(chunk),
    )


def _window(window):
    if window is None:
        return None
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") or len(window) != 2:
        fail("window", "None or a pair (left, right), each None or an int >= 0", repr(window), TypeError)
    sides = []
    for name, side in zip(("left", "right"), window):
        if side is None:
            sides.append(None)
            continue
        if isinstance(side, (bool, np.bool_)) or not isinstance(side, (int, np.integer)):
            fail(f"window {name}", "None or an int >= 0", repr(side), TypeError)
        if side < 0:  # ONNX's −1 means unbounded; here that is None (sdpa.opt.window)
            fail(f"window {name}", "None (unbounded) or an int >= 0", repr(side))
        sides.append(int(side))
    return tuple(sides)


def _softcap(cap):
    if cap is None:
        return None
    # 0 is not "off" (sdpa.opt.softcap)
    return check_positive("softcap", cap, not_real="None or a real number > 0",
                          expected="None (off) or a finite number > 0")


def _chunk(size):
    if size is None:
        return None
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
        fail("chunk", "None or an int >= 1 (the chunk size C)", repr(size), TypeError)
    if size < 1:   # no spelling of "off" but None (sdpa.opt.chunk)
        fail("chunk", "None (off) or an int >= 1 (the chunk size C)", repr(size))
    return int(size)


def _floats(name, value, shapes, legend, allow_neg_inf=False):
    if value is None:
        return None
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        fail(name, f"an array of shape {legend} or None", type(value).__name__, TypeError)
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.floating) or str(arr.dtype) == "bfloat16"):
        fail(f"{name} dtype", "floating", str(arr.dtype), TypeError)
    if arr.shape not in shapes:
        fail(name, f"of shape {legend} = {' or '.join(map(str, shapes))}", f"shape {arr.shape}", verb="be")
    a64 = arr.astype(np.float64)
    ok = np.isfinite(a64) | (np.isneginf(a64) if allow_neg_inf else False)
    if not ok.all():
        fail(name, "finite" + (" or −inf" if allow_neg_inf else ""), "NaN or infinite entries")
    return a64


def _ints(name, value, b):
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        fail(name, "an integer array of shape (B,) or None", type(value).__name__, TypeError)
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.integer):
        fail(f"{name} dtype", "an integer dtype", str(arr.dtype), TypeError)
    if arr.shape != (b,):
        fail(name, f"of shape (B,) = ({b},)", f"shape {arr.shape}", verb="be")
    return arr.astype(np.int64)


def _offset(value, b, causal_alignment):
    if value is None:
        return None
    arr = _ints("query_offset", value, b)
    if (arr < 0).any():
        fail("query_offset", "a past length >= 0 per sequence", arr.tolist())
    if causal_alignment != "top_left":  # the offset places the queries; no second alignment rule
        fail("causal_alignment", "'top_left' (the default) when query_offset is given", repr(causal_alignment))
    return arr


def _lengths(name, value, b, limit, dim):
    if value is None:
        return None
    arr = _ints(name, value, b)
    if (arr < 0).any() or (arr > limit).any():
        fail(name, f"between 0 and {dim} = {limit}", arr.tolist())
    return arr


# --- what the options turn into ---------------------------------------------------------------

def query_positions(shape, causal_alignment, opts: Options) -> np.ndarray:
    """p_i per batch (B, L) int64 (sdpa.opt.positions): the absolute position of each query row,
    against which the causal rule, the window and ALiBi measure j − p_i."""
    b, _, l, s = shape
    i = np.arange(l, dtype=np.int64)[None, :]
    if opts.query_offset is not None:
        return opts.query_offset[:, None] + i
    if causal_alignment == "bottom_right":
        k_len = np.full(b, s, np.int64) if opts.key_lengths is None else opts.key_lengths
        q_len = np.full(b, l, np.int64) if opts.query_lengths is None else opts.query_lengths
        return (k_len - q_len)[:, None] + i
    return np.broadcast_to(i, (b, l))


def visibility(shape, pos, is_causal, opts: Options) -> np.ndarray | None:
    """Bool (B, 1, L, S): key j takes part for query i by the causal rule, the window, the chunk
    and the key lengths together (sdpa.causal.*, sdpa.opt.window, sdpa.opt.chunk,
    sdpa.opt.key_lengths); None = all do."""
    b, _, l, s = shape
    rel = np.arange(s, dtype=np.int64)[None, None, :] - pos[:, :, None]      # j − p_i, (B, L, S)
    vis = None

    def both(cond):
        nonlocal vis
        vis = cond if vis is None else (vis & cond)

    if is_causal:
        both(rel <= 0)
    if opts.window is not None:
        left, right = opts.window
        if left is not None:
            both(rel >= -left)
        if right is not None:
            both(rel <= right)
    if opts.chunk is not None:  # sdpa.opt.chunk: same chunk of C positions, and j <= p_i
        keys = np.arange(s, dtype=np.int64)[None, None, :]
        both((keys // opts.chunk == pos[:, :, None] // opts.chunk) & (rel <= 0))
    if opts.key_lengths is not None:
        both(np.broadcast_to(np.arange(s)[None, None, :] < opts.key_lengths[:, None, None], rel.shape))
    return None if vis is None else np.broadcast_to(vis[:, None], (b, 1, l, s))


def alibi_bias(shape, pos, opts: Options) -> np.ndarray | None:
    """−m_h·|p_i − j| as float64 (B or 1, H, L, S) (sdpa.opt.alibi), or None. Exact when the
    slopes have at most 53 − log2(max distance) significant bits (every dtype below float64)."""
    if opts.alibi_slopes is None:
        return None
    b, h, l, s = shape
    dist = np.abs(np.arange(s, dtype=np.int64)[None, None, :] - pos[:, :, None]).astype(np.float64)
    m = opts.alibi_slopes
    m = m[None, :, None, None] if m.ndim == 1 else m[:, :, None, None]
    return -(m * dist[:, None])


def padded_rows(shape, opts: Options) -> np.ndarray | None:
    """Bool (B, 1, L, 1): query rows i >= query_lengths[b] (sdpa.opt.query_lengths), or None."""
    if opts.query_lengths is None:
        return None
    b, _, l, _ = shape
    return (np.arange(l)[None, :] >= opts.query_lengths[:, None])[:, None, :, None]


def sink_logits(opts: Options) -> np.ndarray | None:
    """The sinks as (1, H, 1, 1) float64 (sdpa.opt.sinks), or None."""
    return None if opts.sinks is None else opts.sinks[None, :, None, None]
