"""Bare-function SDPA plug-ins (framework numpy) that misbehave in one way each.

`good` is a correct implementation of the canonical spec (the control: it must pass beside the
broken ones). Each other function breaks in the way its name says.
"""
from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np


def good(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """The canonical SDPA of spec/ (float64 accumulate, output in the input dtype)."""
    dtype = query.dtype
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (query, key, value))
    h, hkv = q.shape[1], k.shape[1]
    if h != hkv:
        if not enable_gqa or h % hkv:
            raise ValueError(f"query heads {h} and kv heads {hkv} need enable_gqa=True and H % Hkv == 0")
        k = np.repeat(k, h // hkv, axis=1)   # repeat_interleave order: head h uses kv head h // g
        v = np.repeat(v, h // hkv, axis=1)
    s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("bhle,bhse->bhls", q, k) * s
    L, S = logits.shape[-2:]
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        logits = np.where(m, logits, -np.inf) if m.dtype == bool else logits + m.astype(np.float64)
    if is_causal:
        logits = np.where(np.tril(np.ones((L, S), dtype=bool)), logits, -np.inf)
    row_max = logits.max(axis=-1, keepdims=True)
    dead = np.isneginf(row_max)
    p = np.exp(logits - np.where(dead, 0.0, row_max))
    denom = p.sum(axis=-1, keepdims=True)
    p = np.where(dead, 0.0, p / np.where(dead, 1.0, denom))   # fully-masked rows give 0
    return np.einsum("bhls,bhse->bhle", p, v).astype(dtype)


def segfault(query, key, value, **kw):
    """Reads address 0 through ctypes: SIGSEGV, as a buggy native kernel would."""
    return ctypes.string_at(0)


def abort(query, key, value, **kw):
    """A failed assertion in native code: SIGABRT."""
    os.abort()


def hang(query, key, value, **kw):
    """An endless loop (a kernel waiting on a barrier that never comes)."""
    while True:
        pass


def sleep_forever(query, key, value, **kw):
    time.sleep(10 ** 6)


def memory_hog(query, key, value, **kw):
    """Allocates 256 MiB blocks until the memory limit stops it. Bounded at 8 GiB so that a run
    without --memory-limit cannot take the shared machine down."""
    blocks = []
    for _ in range(32):
        blocks.append(np.ones(1 << 25))   # 2**25 float64 = 256 MiB, touched
    return good(query, key, value, **kw)


def native_out_of_memory(query, key, value, **kw):
    """What torch says when its allocator fails: an ordinary exception with a telling message."""
    raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")


def exits(query, key, value, **kw):
    """Calls sys.exit inside the kernel (SystemExit is not an Exception)."""
    sys.exit(3)


def hard_exit(query, key, value, **kw):
    os._exit(0)


def raises(query, key, value, **kw):
    raise ValueError("kernel does not like these shapes\nsecond line that must not appear")


def keyboard_interrupt(query, key, value, **kw):
    raise KeyboardInterrupt


def prints(query, key, value, **kw):
    """Writes to stdout and stderr, also at the file-descriptor level, then answers correctly."""
    print("chatty kernel output on stdout")
    os.write(1, b"\x00\x00\x00\x00garbage on fd 1\n")
    sys.stderr.write("chatty kernel output on stderr\n")
    return good(query, key, value, **kw)


def returns_none(query, key, value, **kw):
    return None


def returns_list(query, key, value, **kw):
    return good(query, key, value, **kw).tolist()


def returns_scalar(query, key, value, **kw):
    return 0.0


def returns_string(query, key, value, **kw):
    return "<script>alert(1)</script>"


def returns_tuple(query, key, value, **kw):
    out = good(query, key, value, **kw)
    return out, out


def returns_dict(query, key, value, **kw):
    return {"output": good(query, key, value, **kw)}


class Opaque:
    """An object of the implementation's own type with no array interface."""

    def __repr__(self):
        return "Opaque()"


def returns_object(query, key, value, **kw):
    return Opaque()


def wrong_shape(query, key, value, **kw):
    return good(query, key, value, **kw)[..., :1]


def transposed(query, key, value, **kw):
    return np.swapaxes(good(query, key, value, **kw), 1, 2).copy()


def wrong_dtype(query, key, value, **kw):
    want = np.float32 if query.dtype == np.float64 else np.float64
    return good(query, key, value, **kw).astype(want)


def integer_output(query, key, value, **kw):
    return np.zeros(good(query, key, value, **kw).shape, dtype=np.int32)


def nan_output(query, key, value, **kw):
    out = good(query, key, value, **kw).copy()
    out.reshape(-1)[0] = np.nan
    return out


def inf_output(query, key, value, **kw):
    out = good(query, key, value, **kw).copy()
    out.reshape(-1)[-1] = np.inf
    return out


def object_array(query, key, value, **kw):
    out = good(query, key, value, **kw)
    return np.array(out.tolist(), dtype=object)


def unsupported(query, key, value, **kw):
    from attnconf.errors import Unsupported

    raise Unsupported("this kernel handles only E = 64")
