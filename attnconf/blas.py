"""BLAS thread control for code that runs its own threads over BLAS calls (the blocked
reference): `blas_threads(n)` limits the BLAS NumPy uses to n threads meanwhile (threadpoolctl when
installed, else OpenBLAS's own set_num_threads through ctypes) and says whether it could;
`blas_info()` names the BLAS and its thread count (for bench reports).

Must not import any framework, nor anything of attnconf (the reference and the bench use it).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[bool]:
    """Limit BLAS to n threads inside the block; yields whether the limit could be applied."""
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas") as lim:
            yield bool(lim.get_original_num_threads().get("blas"))
        return
    setter, getter = _openblas_thread_functions()
    if setter is None:
        yield False
        return
    with _BLAS_LOCK:
        global _BLAS_USERS, _BLAS_SAVED
        if _BLAS_USERS == 0:
            _BLAS_SAVED = getter()
            setter(n)
        _BLAS_USERS += 1
    try:
        yield True
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                setter(_BLAS_SAVED)


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_SAVED = 1


def blas_info() -> dict:
    """{"name", "library", "threads"} of the BLAS NumPy uses (best effort, never raises)."""
    info = {"name": "unknown", "library": "", "threads": None}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["name"] = f"{cfg.get('name', 'unknown')} {cfg.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        pass
    path = _openblas_path()
    if path:
        info["library"] = os.path.basename(path)
        _, getter = _openblas_thread_functions()
        if getter is not None:
            info["threads"] = int(getter())
    return info


def _openblas_path() -> str:
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path).lower() and ".so" in path:
                    return path
    except OSError:
        pass
    return ""


_OPENBLAS_FUNCS = None


def _openblas_thread_functions():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy loaded, or (None, None)."""
    global _OPENBLAS_FUNCS
    if _OPENBLAS_FUNCS is None:
        _OPENBLAS_FUNCS = (None, None)
        path = _openblas_path()
        if path:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                lib = None
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                    getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    if setter is not None and getter is not None:
                        setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                        _OPENBLAS_FUNCS = (setter, getter)
                        return _OPENBLAS_FUNCS
    return _OPENBLAS_FUNCS
