"""Position-bias and position-id bugs: ALiBi slopes, signs, modes, alignment and distances; T5
bucket logs, max_exact and halving; RoBERTa / GPT-2 / OPT ids; lookups that wrap.

Each class overrides one step of the control (`_base.ZooAdapter` through `_positions.PositionSteps`)
and names the real-world report (docs/findings.md#alibi, #t5-relative-bias, #position-ids) or the spec clause it breaks.
"""
from __future__ import annotations

import math

import numpy as np

from ._base import ZooAdapter


class AlibiNaiveSlopes(ZooAdapter):
    """2^(−8k/n) for every n: geometric, but not the paper's slopes when n is not a power of two
    (spec alibi.slopes `naive_slopes`). Bug class: ALiBi naive slopes."""

    name = "known-bad/alibi-naive-slopes"
    bug_class = "ALiBi naive slopes for non-power-of-two heads"

    def alibi_exponents(self, n):
        return [(k, n) for k in range(1, n + 1)]


class AlibiBiasSignFlipped(ZooAdapter):
    """+m·(i' − j): attention-gym's `alibi_mod` before its PR #86. Bug class: ALiBi sign flip."""

    name = "known-bad/alibi-sign-flipped"
    bug_class = "ALiBi sign flip"

    def alibi_distance(self, L, S, mode, alignment):
        d = super().alibi_distance(L, S, mode, alignment)
        return -d if mode == "causal" else d


class AlibiSymmetricForCausal(ZooAdapter):
    """−m·|i' − j| when the causal bias is asked for (MPT's bidirectional form used for a causal
    model: the same under a causal mask, not the same bias). Bug class: ALiBi symmetric for causal."""

    name = "known-bad/alibi-symmetric-for-causal"
    bug_class = "ALiBi symmetric for causal"

    def alibi_distance(self, L, S, mode, alignment):
        return super().alibi_distance(L, S, "symmetric" if mode == "causal" else mode, alignment)


class AlibiAlignmentSwapped(ZooAdapter):
    """Top-left when bottom-right is asked for and the reverse (FlashAttention's −m·|i + S − L − j|
    against a top-left kernel). Bug class: ALiBi alignment when L ≠ S."""

    name = "known-bad/alibi-alignment-swapped"
    bug_class = "ALiBi alignment"

    def alibi_distance(self, L, S, mode, alignment):
        return super().alibi_distance(L, S, mode, "top_left" if alignment == "bottom_right" else "bottom_right")


class AlibiDistanceOffByOne(ZooAdapter):
    """Distances counted from 1 on the diagonal (vllm PR #945: an off-by-one ALiBi distance).
    Bug class: ALiBi distance off by one."""

    name = "known-bad/alibi-distance-off-by-one"
    bug_class = "ALiBi off-by-one distance"

    def alibi_distance(self, L, S, mode, alignment):
        d = super().alibi_distance(L, S, mode, alignment)
        return d - 1 if mode in ("causal", "symmetric") else d


class BucketFromLog2(ZooAdapter):
    """log2(n/max_exact) over ln(max_distance/max_exact): mixed log bases make every log bucket
    1.44× too far. Bug class: T5 bucket from log2."""

    name = "known-bad/bucket-from-log2"
    bug_class = "T5 bucket from log2"

    def log_bucket(self, n, e, D, nb):
        return int(math.log2(n / e) / math.log(D / e) * (nb - e))


class BucketMaxExactOffByOne(ZooAdapter):
    """max_exact = nb // 2 + 1: one more exact bucket, every log bucket shifted. Bug class: T5
    off-by-one max_exact."""

    name = "known-bad/bucket-max-exact-off-by-one"
    bug_class = "T5 off-by-one max_exact"

    def bucket_max_exact(self, nb):
        return nb // 2 + 1


class BucketNoHalving(ZooAdapter):
    """Bidirectional buckets without halving num_buckets: keys after the query land in buckets
    >= num_buckets (spec relpos.bucket.bidirectional `no_halving`). Bug class: T5 bidirectional
    halving missed."""

    name = "known-bad/bucket-no-halving"
    bug_class = "T5 bidirectional halving missed"

    def bucket_count(self, num_buckets, bidirectional):
        return num_buckets


class BucketFloat32Log(ZooAdapter):
    """The log evaluated in float32 and truncated (HF transformers, Mesh TF): one bucket low where
    the real number is an integer the float32 quotient misses (spec relpos.bucket.exact
    `float32_log`; agrees with the exact rule at T5's defaults). Bug class: T5 float32 log."""

    name = "known-bad/bucket-float32-log"
    bug_class = "T5 float32 log buckets"

    def log_bucket(self, n, e, D, nb):
        ratio = np.log(np.float32(n) / np.float32(e)) / np.float32(math.log(D / e))
        return int(ratio * np.float32(nb - e))


class ShawAlignmentSwapped(ZooAdapter):
    """Shaw's index aligned top-left when tensor2tensor's bottom-right is asked for and the
    reverse. Bug class: relative-position index alignment."""

    name = "known-bad/shaw-alignment-swapped"
    bug_class = "Shaw index alignment"

    def relative_position_index(self, query_length, key_length, *, max_relative_position, alignment="top_left"):
        other = "top_left" if alignment == "bottom_right" else "bottom_right"
        return super().relative_position_index(query_length, key_length, max_relative_position=max_relative_position,
                                               alignment=other)


class RobertaNoPaddingOffset(ZooAdapter):
    """RoBERTa ids without + padding_idx: the first real token reads row 1 instead of
    padding_idx + 1, pads row 0 (spec posids.ids.roberta `no_padding_offset`). Bug class: RoBERTa
    positions without the padding offset."""

    name = "known-bad/roberta-no-padding-offset"
    bug_class = "RoBERTa positions without the padding offset"

    def roberta_offset(self, padding_idx):
        return 0


class PastLengthIgnored(ZooAdapter):
    """The past length dropped from the ids (a decode step reads row 0 again: spec posids.ids.past
    `past_ignored`). Bug class: past length ignored."""

    name = "known-bad/past-length-ignored"
    bug_class = "past length ignored"

    def past_offset(self, past_length):
        return 0


class OptOffsetLost(ZooAdapter):
    """OPT ids without the table offset 2 (rows −1, 0, 1, …: spec posids.ids.opt `no_offset`).
    Bug class: OPT offset lost."""

    name = "known-bad/opt-offset-lost"
    bug_class = "OPT offset lost"

    def opt_offset(self):
        return 0


class LookupWraps(ZooAdapter):
    """NumPy indexing without a range check: id −1 reads the last row, an id >= N raises only by
    luck (spec posids.lookup.range `wraps`). Bug class: position lookup wraps."""

    name = "known-bad/lookup-wraps"
    bug_class = "position lookup wraps negative ids"

    def lookup(self, table, ids):
        t, i = np.asarray(table), np.asarray(ids)
        return t[i % t.shape[0]]
