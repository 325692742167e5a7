"""The position-bias and position-id references (reference/alibi.py, relative_position.py,
position_ids.py) against expectations derived independently here: plain Python loops, integer
arithmetic and mpmath, never numbers copied from the reference."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from attnconf.reference import alibi, position_ids as pid, relative_position as rp


# --- ALiBi ---------------------------------------------------------------------------------------

def _paper_slopes(n, max_bias=8.0):
    """The paper's get_slopes, written out: a geometric run start·ratio^i for powers of two."""
    def power_of_2(m):
        start = mpmath.mpf(2) ** (-mpmath.mpf(max_bias) / m)
        return [start * start ** i for i in range(m)]
    if math.log2(n).is_integer():
        return power_of_2(n)
    p = 2 ** math.floor(math.log2(n))
    return power_of_2(p) + _paper_slopes(2 * p, max_bias)[0::2][: n - p]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12, 20, 33, 64, 112])
@pytest.mark.parametrize("max_bias", [8.0, 16.0])
def test_slopes_follow_the_papers_construction(n, max_bias):
    with mpmath.workdps(40):
        want = [float(m) for m in _paper_slopes(n, max_bias)]
    got = alibi.alibi_slopes(n, max_bias=max_bias, exact=True)
    assert got.tolist() == want
    assert np.allclose(alibi.alibi_slopes(n, max_bias=max_bias), want, rtol=4e-16, atol=0)


@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_slopes_baseline_has_the_dtype_and_is_close(precision):
    got = alibi.alibi_slopes(12, precision=precision)
    assert str(got.dtype) == precision
    assert np.allclose(got.astype(np.float64), alibi.alibi_slopes(12, exact=True), rtol=2 ** -7)


@pytest.mark.parametrize("mode", ["causal", "symmetric", "row_constant"])
@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
@pytest.mark.parametrize("L,S", [(4, 4), (3, 7), (6, 2)])
def test_bias_by_loops(mode, alignment, L, S):
    H = 3
    m = alibi.alibi_slopes(H, exact=True)
    got = alibi.alibi_bias(H, L, S, mode=mode, alignment=alignment, exact=True)
    for h in range(H):
        for i in range(L):
            ip = i + (S - L if alignment == "bottom_right" else 0)
            for j in range(S):
                d = {"causal": -(ip - j), "symmetric": -abs(ip - j), "row_constant": j}[mode]
                with mpmath.workdps(40):
                    want = float(mpmath.mpf(2) ** (-mpmath.mpf(8) * [1, 2, 1][h] / [2, 2, 4][h]) * d)
                assert got[h, i, j] == want, (h, i, j)
                assert got[h, i, j] == m[h] * d


def test_bias_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="mode should be one of 'causal', 'symmetric', 'row_constant', but got 'alibi'"):
        alibi.alibi_bias(2, 3, 3, mode="alibi")
    with pytest.raises(ValueError, match="max_bias should be a finite number > 0, but got -1"):
        alibi.alibi_slopes(4, max_bias=-1)
    with pytest.raises(ValueError, match="num_heads should be >= 1, but got 0"):
        alibi.alibi_slopes(0)


# --- T5 buckets ------------------------------------------------------------------------------------

def _bucket_by_count(rel, bidirectional, num_buckets, max_distance):
    """T5's rule with the log bucket as a count of the integer inequalities it passes."""
    nb = num_buckets // 2 if bidirectional else num_buckets
    base = nb if (bidirectional and rel > 0) else 0
    n = abs(rel) if bidirectional else max(-rel, 0)
    e, span = nb // 2, nb - nb // 2
    if n < e:
        return base + n
    passed = sum(1 for k in range(1, span + 1) if n ** span * e ** k >= max_distance ** k * e ** span)
    return base + min(e + passed, nb - 1)


CONFIGS = [(True, 32, 128), (False, 32, 128), (True, 96, 81), (False, 48, 81), (True, 8, 16),
           (False, 10, 20), (True, 33, 64), (False, 72, 392)]


@pytest.mark.parametrize("bidirectional,num_buckets,max_distance", CONFIGS)
def test_buckets_by_integer_counting(bidirectional, num_buckets, max_distance):
    L, S, off = 7, 2 * max_distance + 30, max_distance + 10
    got = rp.relative_position_bucket(L, S, bidirectional=bidirectional, num_buckets=num_buckets,
                                      max_distance=max_distance, query_offset=off)
    assert got.dtype == np.int64
    for i in range(L):
        for j in range(S):
            assert got[i, j] == _bucket_by_count(j - (i + off), bidirectional, num_buckets, max_distance), (i, j)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5_defaults_agree_with_a_float64_log(bidirectional):
    # T5's own formula in float64 (HF's, with float64 instead of float32); at the defaults the
    # real value is an integer only where n/max_exact is a power of two, and then known exactly
    got = rp.relative_position_bucket(1, 400, bidirectional=bidirectional, query_offset=200)
    nb = 16 if bidirectional else 32
    for j in range(400):
        rel = j - 200
        n = abs(rel) if bidirectional else max(-rel, 0)
        x = math.log(max(n, 1) / (nb // 2)) / math.log(128 / (nb // 2)) * (nb - nb // 2)
        if n >= nb // 2 and abs(x - round(x)) < 1e-9:
            # only where n/max_exact is a power of two (then x = span·log2(n/e)/log2(D/e) exactly)
            assert (n // (nb // 2)) * (nb // 2) == n and (n // (nb // 2)).bit_count() == 1
            x = round(x)
        want = n if n < nb // 2 else min(nb // 2 + math.floor(x), nb - 1)
        assert got[0, j] == want + (nb if bidirectional and rel > 0 else 0)


def test_exact_boundaries_are_where_the_float32_log_may_differ():
    # 1.5 = (81/24)^(1/3): at n = 36 and 54 the real number is exactly 8 and 16
    got = rp.relative_position_bucket(64, 1, bidirectional=False, num_buckets=48, max_distance=81)
    assert got[36, 0] == 24 + 8 and got[54, 0] == 24 + 16 and got[35, 0] == 24 + 7
    f32 = rp.float32_log_buckets(64, 1, bidirectional=False, num_buckets=48, max_distance=81)
    differs = sorted(np.nonzero(f32[:, 0] != got[:, 0])[0].tolist())
    assert set(differs) <= {36, 54} and differs, differs
    assert all(f32[n, 0] == got[n, 0] - 1 for n in differs)


def test_t5_defaults_have_no_float32_boundary():
    for bidirectional in (True, False):
        kw = dict(bidirectional=bidirectional, query_offset=300)
        assert np.array_equal(rp.relative_position_bucket(1, 600, **kw), rp.float32_log_buckets(1, 600, **kw))


def test_bias_is_the_table_row_of_each_bucket():
    table = np.arange(32 * 3, dtype=np.float64).reshape(32, 3) * 0.5
    b = rp.relative_position_bucket(5, 9, bidirectional=True, query_offset=2)
    got = rp.relative_position_bias(table, 5, 9, bidirectional=True, query_offset=2)
    assert got.shape == (3, 5, 9)
    for h in range(3):
        for i in range(5):
            for j in range(9):
                assert got[h, i, j] == table[b[i, j], h]
    with pytest.raises(ValueError, match=r"table should have shape \(num_buckets = 32, H\), but got shape \(16, 3\)"):
        rp.relative_position_bias(table[:16], 5, 9)


def test_bucket_option_errors():
    with pytest.raises(ValueError, match="max_distance should be > max_exact = 8"):
        rp.relative_position_bucket(2, 2, bidirectional=True, num_buckets=32, max_distance=8)
    with pytest.raises(ValueError, match="num_buckets should be >= 4 when bidirectional"):
        rp.relative_position_bucket(2, 2, bidirectional=True, num_buckets=3)
    with pytest.raises(TypeError, match="bidirectional should be a bool"):
        rp.relative_position_bucket(2, 2, bidirectional=1)


@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
@pytest.mark.parametrize("L,S,K", [(4, 4, 2), (3, 9, 3), (9, 3, 2), (5, 5, 10)])
def test_shaw_index_by_loops(alignment, L, S, K):
    got = rp.relative_position_index(L, S, max_relative_position=K, alignment=alignment)
    for i in range(L):
        q = i + (S - L) if alignment == "bottom_right" else i
        for j in range(S):
            assert got[i, j] == max(-K, min(K, j - q)) + K


# --- position ids -----------------------------------------------------------------------------------

def _ids_by_loops(mask, scheme, P, pad):
    out = []
    for row in mask.tolist():
        T = len(row) - P
        if scheme == "arange":
            out.append(list(range(T)))
        elif scheme == "past":
            out.append([P + t for t in range(T)])
        elif scheme == "roberta":
            cur, count, r = row[P:], 0, []
            for v in cur:
                count += v
                r.append((count + P) * v + pad)
            out.append(r)
        else:   # opt: over the whole row, then sliced at P, plus OPT's offset 2
            count, r = 0, []
            for v in row:
                count += v
                r.append(count * v - 1 + 2)
            out.append(r[P:])
    return np.array(out)


MASKS = {"left": np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]),
         "right": np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]),
         "past_padded": np.array([[0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]])}


@pytest.mark.parametrize("scheme", ["arange", "past", "roberta", "opt"])
@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("P", [0, 2])
@pytest.mark.parametrize("pad", [0, 1])
def test_position_ids_by_loops(scheme, name, P, pad):
    mask = MASKS[name]
    got = pid.position_ids(mask, scheme=scheme, past_length=P, padding_idx=pad)
    assert got.dtype == np.int64
    assert np.array_equal(got, _ids_by_loops(mask, scheme, P, pad))


def test_roberta_first_real_token_reads_padding_idx_plus_one_and_opt_row_two():
    mask = np.array([[0, 0, 1, 1]])
    assert pid.position_ids(mask, scheme="roberta", padding_idx=1).tolist() == [[1, 1, 2, 3]]
    assert pid.position_ids(mask, scheme="opt").tolist() == [[1, 1, 2, 3]]


def test_position_id_errors():
    with pytest.raises(ValueError, match="attention_mask values should be 0 or 1, but got"):
        pid.position_ids(np.array([[0, 2]]), scheme="arange")
    with pytest.raises(ValueError, match="attention_mask should have more than past_length = 2 columns"):
        pid.position_ids(np.ones((1, 2), np.int64), scheme="past", past_length=2)
    with pytest.raises(TypeError, match="attention_mask dtype should be an integer dtype"):
        pid.position_ids(np.ones((1, 2)), scheme="past")


def test_lookup_reads_rows_and_rejects_ids_outside_the_table():
    table = np.arange(12.0).reshape(4, 3)
    ids = np.array([[3, 0, 0, 2]])
    got = pid.position_embedding(table, ids)
    assert got.tolist() == [[table[3].tolist(), table[0].tolist(), table[0].tolist(), table[2].tolist()]]
    for bad, shown in ((4, "4"), (-1, "-1")):
        with pytest.raises(IndexError, match=rf"position_ids should be within \[0, 4\) \(the table's rows\), but got {shown}"):
            pid.position_embedding(table, np.array([[0, bad]]))


@pytest.mark.parametrize("nb, max_distance, n, integer", [(36, 392, 84, True), (46, 164, 107, False),
                                                          (58, 282, 119, False), (48, 81, 54, True)])
def test_buckets_next_to_an_integer_take_the_exact_floor(nb, max_distance, n, integer):
    # causal buckets (nb after no halving), the real number from mpmath at 40 digits
    e = nb // 2
    with mpmath.workdps(40):
        x = mpmath.log(mpmath.mpf(n) / e) / mpmath.log(mpmath.mpf(max_distance) / e) * (nb - e)
        near = mpmath.nint(x)
        assert (abs(x - near) < mpmath.mpf(10) ** -30) == integer   # exactly an integer, or just below one
        want = e + int(near if integer else mpmath.floor(x))
    got = rp.relative_position_bucket(n + 1, 1, bidirectional=False, num_buckets=nb, max_distance=max_distance)
    assert got[n, 0] == min(want, nb - 1)
