"""The paged reference (spec/paged.md, paged.*) and the chunk option (sdpa.opt.chunk): the
definition by gathering, garbage never read, empty sequences, the one-line validation, and the
chunk's visible set. Expected values are other evaluations of the reference (sdpa_lse on a
sequence gathered here by hand) or the clauses' own statements (0, −∞, bitwise equality).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import attnconf.reference as R
from attnconf.errors import Unsupported
from attnconf.operations import sdpa_paged as entry
from attnconf.reference.lse import sdpa_lse
from attnconf.reference.paged import sdpa_paged
from attnconf.reference.paged_cases import paged_cases

CASES = paged_cases()


def _by_hand(case):
    """(k, v) per sequence, gathered with Python loops from the clause's formula."""
    x = case.inputs
    kp, vp, table, lengths = x["key_pages"], x["value_pages"], x["block_table"], x["cache_lengths"]
    p = kp.shape[1]
    ks, vs = [], []
    for b, n in enumerate(lengths):
        ks.append(np.stack([kp[table[b, t // p], t % p] for t in range(int(n))] or
                           [np.zeros(kp.shape[2:])]).transpose(1, 0, 2))
        vs.append(np.stack([vp[table[b, t // p], t % p] for t in range(int(n))] or
                           [np.zeros(vp.shape[2:])]).transpose(1, 0, 2))
    return ks, vs


def _kw(case):
    o = dict(case.options)
    for n in ("sinks", "alibi_slopes"):
        if n in case.inputs:
            o[n] = case.inputs[n]
    if o.get("window") is not None:
        o["window"] = tuple(o["window"])
    return o


@pytest.mark.parametrize("case", [c for c in CASES if c.inputs["key_pages"].shape[1] < 256], ids=lambda c: c.id)
def test_paged_is_sdpa_lse_on_each_gathered_sequence(case):
    out, lse = sdpa_paged(*(case.inputs[n] for n in entry.INPUTS), **_kw(case), exact=True)
    ks, vs = _by_hand(case)
    q = case.inputs["query"]
    for b, n in enumerate(case.inputs["cache_lengths"]):
        kw = _kw(case)
        if kw.get("alibi_slopes") is not None and kw["alibi_slopes"].ndim == 2:
            kw["alibi_slopes"] = kw["alibi_slopes"][b]
        o, s = sdpa_lse(q[b:b + 1], ks[b][None], vs[b][None], key_lengths=np.array([n]),
                        causal_alignment="bottom_right", exact=True, **kw)
        assert np.array_equal(out[b:b + 1], o)
        assert np.array_equal(lse[b:b + 1], s)


def test_empty_sequence_gives_zero_and_neg_inf_lse_or_the_sink():
    case = next(c for c in CASES if c.id == "sdpa_paged/p5_empty_sequence")
    out, lse = sdpa_paged(*(case.inputs[n] for n in entry.INPUTS), **_kw(case), exact=True)
    assert np.array_equal(out[0], np.zeros_like(out[0])) and np.all(np.isneginf(lse[0]))
    assert np.isfinite(lse[1:]).all()
    sinks = next(c for c in CASES if c.id == "sdpa_paged/p7_empty_with_sinks")
    out, lse = sdpa_paged(*(sinks.inputs[n] for n in entry.INPUTS), **_kw(sinks), exact=True)
    assert not out.any()
    assert np.array_equal(lse, np.broadcast_to(sinks.inputs["sinks"][None, :, None], lse.shape))


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf, 1e30])
def test_garbage_and_capacity_leave_the_result_bitwise_unchanged(fill):
    case = next(c for c in CASES if c.id == "sdpa_paged/p16_partial_gqa_l3")
    x = dict(case.inputs)
    base = sdpa_paged(*(x[n] for n in entry.INPUTS), **_kw(case))
    kp, vp, table, lengths = x["key_pages"].copy(), x["value_pages"].copy(), x["block_table"], x["cache_lengths"]
    read = np.zeros(kp.shape[:2], bool)
    for b, n in enumerate(lengths):
        t = np.arange(int(n))
        read[table[b, t // kp.shape[1]], t % kp.shape[1]] = True
    kp[~read], vp[~read] = fill, fill
    table = np.concatenate([table, np.full((len(lengths), 3), -7)], axis=1)   # unused entries: any integer
    got = sdpa_paged(x["query"], kp, vp, table, lengths, **_kw(case))
    for a, b in zip(got, base):
        assert np.array_equal(a, b)


def test_permuting_pages_with_the_table_changes_nothing():
    case = next(c for c in CASES if c.id == "sdpa_paged/p3_chunk4")
    x = case.inputs
    base = sdpa_paged(*(x[n] for n in entry.INPUTS), **_kw(case))
    perm = np.random.default_rng(0).permutation(x["key_pages"].shape[0])
    kp, vp = np.empty_like(x["key_pages"]), np.empty_like(x["value_pages"])
    kp[perm], vp[perm] = x["key_pages"], x["value_pages"]
    got = sdpa_paged(x["query"], kp, vp, perm[x["block_table"]], x["cache_lengths"], **_kw(case))
    for a, b in zip(got, base):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("change, message", [
    (lambda x: x.update(block_table=x["block_table"].astype(float)), "block_table dtype should be an integer dtype"),
    (lambda x: x.update(cache_lengths=x["cache_lengths"] + 1000), "cache_lengths should be between 0 and the capacity"),
    (lambda x: x["block_table"].__setitem__((0, 0), 99), "block_table entries of used pages should be page indices"),
    (lambda x: x.update(cache_lengths=x["cache_lengths"][:1]), "batch size should be B"),
    (lambda x: x.update(value_pages=x["value_pages"][:-1]), "value_pages shape (num_pages, page_size, Hkv) should be"),
])
def test_bad_paged_inputs_are_one_line_errors(change, message):
    case = next(c for c in CASES if c.id == "sdpa_paged/p1_decode_b2")
    x = {k: v.copy() for k, v in case.inputs.items()}
    change(x)
    with pytest.raises((ValueError, TypeError)) as info:
        sdpa_paged(*(x[n] for n in entry.INPUTS), **_kw(case))
    text = str(info.value)
    assert message in text and "\n" not in text


def test_paged_options_follow_the_unsupported_option_rule():
    from attnconf.adapters.base import Adapter, Capabilities

    class NoChunk(Adapter):
        name = "no-chunk"
        capabilities = Capabilities(operations=("sdpa_paged",), sdpa_options=("window",))

        def sdpa_paged(self, *a, **k):
            raise AssertionError("must not be called")

    case = next(c for c in CASES if c.id == "sdpa_paged/p3_chunk4")
    with pytest.raises(Unsupported, match="chunk"):
        entry.call(NoChunk(), case.inputs, case.options, "float64")


# --- chunk (sdpa.opt.chunk) -------------------------------------------------------------------
def _qkv(B=1, H=1, L=10, S=10, E=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, H, L, E)), rng.standard_normal((B, H, S, E)), rng.standard_normal((B, H, S, E))


def test_chunk_visible_set_is_same_chunk_and_causal():
    q, k, _ = _qkv()
    w = R.sdpa(q, k, np.eye(10)[None, None], chunk=4, exact=True)[0, 0]
    i, j = np.arange(10)[:, None], np.arange(10)[None, :]
    assert np.array_equal(w > 0, (i // 4 == j // 4) & (j <= i))


def test_chunk_with_a_decode_offset_counts_chunks_from_key_zero():
    q, k, _ = _qkv(L=2, S=9)
    w = R.sdpa(q, k, np.eye(9)[None, None], chunk=3, query_offset=np.array([7]), exact=True)[0, 0]
    # positions 7, 8 lie in the chunk [6, 9): keys 6 … p_i, never the window of 3 keys (5 … 7)
    assert np.array_equal(w > 0, np.array([[j in (6, 7) for j in range(9)], [j in (6, 7, 8) for j in range(9)]]))


@pytest.mark.parametrize("align", ["top_left", "bottom_right"])
def test_chunk_at_least_s_is_the_causal_rule(align):
    q, k, v = _qkv(L=6, S=8)
    causal = R.sdpa(q, k, v, is_causal=True, causal_alignment=align, exact=True)
    assert np.array_equal(R.sdpa(q, k, v, chunk=8, causal_alignment=align, exact=True), causal)
    assert np.array_equal(R.sdpa(q, k, v, chunk=3, is_causal=True, causal_alignment=align, exact=True),
                          R.sdpa(q, k, v, chunk=3, causal_alignment=align, exact=True))


@pytest.mark.parametrize("bad, message", [(0, "chunk should be None (off) or an int >= 1"),
                                          (2.0, "chunk should be None or an int >= 1"),
                                          (True, "chunk should be None or an int >= 1")])
def test_bad_chunk_is_a_one_line_error(bad, message):
    q, k, v = _qkv()
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        R.sdpa(q, k, v, chunk=bad)
