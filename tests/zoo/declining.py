"""Plug-ins that decline some options by raising NotImplementedError (NumPy), and one that raises
another exception for the same options: declines must be `skip` ("declined: <message>"), the
other `error`.

ATTNCONF_TEST_CALL_LOG=PATH makes each function append one line per call
(`name num_positions dim base offset` or `name dtype shape`), so a test can count calls made in
a worker process too.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from zoo.encoding import good


def _log(*fields) -> None:
    path = os.environ.get("ATTNCONF_TEST_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(" ".join(str(x) for x in fields) + "\n")


def _reference_sdpa(query, key, value, attn_mask, is_causal, scale, enable_gqa):
    from attnconf import reference

    inputs = dict(query=query, key=key, value=value)
    if attn_mask is not None:
        inputs["attn_mask"] = attn_mask
    opts = dict(is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    return reference.compute("sdpa", inputs, opts)["output"].astype(query.dtype)


def sdpa_no_float64(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """A kernel without a float64 variant: declines float64, correct at every other dtype."""
    _log("sdpa_no_float64", query.dtype, query.shape)
    if query.dtype == np.float64:
        raise NotImplementedError("no float64 kernel")
    return _reference_sdpa(query, key, value, attn_mask, is_causal, scale, enable_gqa)


def sdpa_value_error_float64(query, key, value, *, attn_mask=None, is_causal=False, scale=None,
                             enable_gqa=False):
    """The same refusal as an ordinary exception: that is an error, not a decline."""
    if query.dtype == np.float64:
        raise ValueError("no float64 kernel")
    return _reference_sdpa(query, key, value, attn_mask, is_causal, scale, enable_gqa)


def encoding_base_10000_only(num_positions, dim, *, base=10000.0, offset=0):
    """A float32 table (no dtype= keyword) that supports only base 10000."""
    _log("encoding_base_10000_only", num_positions, dim, base, offset)
    if base != 10000.0:
        raise NotImplementedError(f"only base 10000, not {base:g}")
    return good(num_positions, dim, base=base, offset=offset)


def encoding_counted(num_positions, dim, *, base=10000.0, offset=0):
    """A correct float32 table without dtype=, counting its calls."""
    _log("encoding_counted", num_positions, dim, base, offset)
    return good(num_positions, dim, base=base, offset=offset)


class NoFloat64Adapter(NumpyReferenceAdapter):
    """An adapter class that declares float64 but declines it in sdpa (a kernel that turns out
    to have no float64 variant): its float64 records are declined, the others pass."""

    name = "zoo-no-float64"
    capabilities = dataclasses.replace(NumpyReferenceAdapter.capabilities, operations=("sdpa",))

    def sdpa(self, query, key, value, **kwargs):
        if query.dtype == np.float64:
            raise NotImplementedError("no float64 kernel in this adapter")
        return super().sdpa(query, key, value, **kwargs)

