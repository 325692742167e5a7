"""NumPy sdpa plug-ins that misbehave the ways a careless one does in-process (`--no-isolation`,
the pytest plugin): change the working directory, call sys.exit, raise a BaseException subclass
or an exception whose str() raises, hang, return a framework tensor from a `--framework numpy`
function. Each is correct otherwise (the reference), so every record that is not the misbehaving
one passes.

ATTNCONF_TEST_CALL_LOG=PATH: each call appends one line (done calls, for the interrupt test);
ATTNCONF_TEST_HANG_AFTER=N: the (N+1)th call writes PATH.hang and sleeps until killed.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

from zoo.declining import _reference_sdpa


def _ok(query, key, value, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    return _reference_sdpa(query, key, value, attn_mask, is_causal, scale, enable_gqa)


def sdpa_chdir(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """Moves the process to a fresh temporary directory on every call (results must not follow)."""
    os.chdir(tempfile.mkdtemp(prefix="attnconf-chdir-"))
    return _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa)


def sdpa_exit(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """sys.exit(0) on a causal case, correct otherwise."""
    if is_causal:
        sys.exit(0)
    return _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa)


class Abort(BaseException):
    """Not an Exception: escapes `except Exception`."""


def sdpa_base_exception(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    if is_causal:
        raise Abort("the plug-in gives up")
    return _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa)


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("__str__ is broken too")


def sdpa_bad_str(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    if is_causal:
        raise Unprintable()
    return _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa)


def sdpa_hang_after(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """Correct, logging each finished call; hangs on call ATTNCONF_TEST_HANG_AFTER + 1."""
    log = os.environ["ATTNCONF_TEST_CALL_LOG"]
    done = sum(1 for _ in open(log, encoding="utf-8")) if os.path.exists(log) else 0
    if done >= int(os.environ.get("ATTNCONF_TEST_HANG_AFTER", "5")):
        open(log + ".hang", "w").close()
        time.sleep(3600)
    out = _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{query.shape}\n")
    return out


def sdpa_wrong(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """Always wrong (output doubled): a failing run."""
    return 2 * _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa)


def sdpa_torch_tensor(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """Declared `--framework numpy` but returns a torch tensor (the right values)."""
    import torch

    return torch.from_numpy(_ok(query, key, value, attn_mask, is_causal, scale, enable_gqa))


def sdpa_list(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """Returns a nested Python list instead of an array."""
    return _ok(query, key, value, attn_mask, is_causal, scale, enable_gqa).tolist()
