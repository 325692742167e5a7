"""The worker protocol's framing and value codec (execution/isolation.py is the parent side,
execution/worker.py the child): length-prefixed frames; the child answers with a JSON header and raw
array bytes, so nothing an implementation produced is ever unpickled by the parent (`Foreign`
stands for a value that is not an array, number or string)."""
from __future__ import annotations

import os
import select
import struct
import time
from typing import Any

import numpy as np


class _Dead(Exception):
    """The worker went away (EOF or broken pipe) before answering."""


_HEADER = struct.Struct(">Q")


# ---------------------------------------------------------------------------------------------
# Values that cross the process border
# ---------------------------------------------------------------------------------------------
class Foreign:
    """Stands in, in the parent, for an output the worker could not send as data (an object of
    the implementation's own type, an object array). `Foreign.of("Opaque", "Opaque()")` is an
    instance of a subclass named after the original type, so the judge's "but got Opaque …"
    reads the same as when the implementation ran in-process."""

    __slots__ = ("text",)
    _classes: dict = {}

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    @classmethod
    def of(cls, type_name: str, text: str) -> "Foreign":
        name = type_name if type_name.isidentifier() else "object"
        sub = cls._classes.get(name)
        if sub is None:
            sub = cls._classes[name] = type(name, (cls,), {"__slots__": ()})
        return sub(text)


def _dtype_token(dtype: np.dtype) -> str:
    # ml_dtypes' bfloat16 has no portable dtype.str; send its name instead.
    return dtype.name if dtype.name == "bfloat16" else dtype.str


def _dtype_from_token(token: str) -> np.dtype:
    if token == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(token)


def _encode_value(value: Any, blobs: list[bytes]) -> dict:
    """Describe `value` as JSON, appending array bytes to `blobs`. Never raises."""
    try:
        if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
            return {"kind": "json", "value": value.item()}   # numpy scalars in records
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return {"kind": "foreign", "type": "ndarray", "text": _safe_repr(value)}
            blobs.append(np.ascontiguousarray(value).tobytes())
            return {"kind": "array", "dtype": _dtype_token(value.dtype), "shape": list(value.shape)}
        if value is None:
            return {"kind": "none"}
        if isinstance(value, (bool, int, float, str)):
            return {"kind": "json", "value": value}
        if isinstance(value, (list, tuple)):
            items = [_encode_value(v, blobs) for v in value]
            return {"kind": type(value).__name__, "items": items}
        if isinstance(value, dict):
            return {"kind": "dict", "items": {str(k): _encode_value(v, blobs) for k, v in value.items()}}
    except Exception:  # a hostile __len__/__iter__: fall through to a description
        pass
    return {"kind": "foreign", "type": type(value).__name__, "text": _safe_repr(value)}


def _decode_value(desc: dict, blobs: list[bytes]) -> Any:
    kind = desc["kind"]
    if kind == "array":
        dtype = _dtype_from_token(desc["dtype"])
        return np.frombuffer(blobs.pop(0), dtype=dtype).reshape(desc["shape"]).copy()
    if kind == "none":
        return None
    if kind == "json":
        return desc["value"]
    if kind in ("list", "tuple"):
        items = [_decode_value(d, blobs) for d in desc["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _decode_value(d, blobs) for k, d in desc["items"].items()}
    return Foreign.of(desc.get("type", "object"), desc.get("text", ""))


def _safe_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "<unrepresentable>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        _, writable, _ = select.select([], [fd], [], remaining)
        if writable:
            n = os.write(fd, view[: 1 << 16])
            view = view[n:]


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    chunks, need = [], n
    while need:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, min(need, 1 << 20))
        if not chunk:
            raise _Dead
        chunks.append(chunk)
        need -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float) -> bytes:
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return _read_exact(fd, length, deadline)
