"""The known-bad zoo itself: at least 25 one-bug implementations, each documented, each caught
by the suite; the correct control is not caught (so a catch is the bug's, not the base's)."""
from __future__ import annotations

import pytest

from attnconf.conformance import calibration, detection
from attnconf.conformance.execution.runner import load_cases

from attnconf.conformance import known_bad

BAD = known_bad.all_known_bad()


@pytest.fixture(scope="module")
def golden():
    return load_cases(None, None)


@pytest.fixture(scope="module")
def randoms():
    return [calibration.random_case(f, 0) for f in calibration.family_names()]


def test_zoo_size_and_documentation():
    assert len(BAD) >= 25
    names = [c.name for c in BAD]
    assert len(set(names)) == len(names)
    for cls in BAD:
        doc = " ".join((cls.__doc__ or "").split())
        assert cls.bug_class and "Bug class" in doc, cls.__name__
        assert cls.name.startswith("known-bad/")


def test_zoo_covers_the_issue_bug_classes():
    classes = " | ".join(c.bug_class for c in BAD)
    for needed in ("default scale", "softmax axis", "softmax overflow", "causal off by one",
                   "wrong causal alignment", "mask polarity", "GQA head order",
                   "NaN on fully-masked rows", "mean of V on fully-masked rows",
                   "mask added after softmax", "low-precision compute", "blocked softmax",
                   "encoding layout", "encoding frequency", "encoding exponent", "encoding offset",
                   "encoding odd", "multi-head head split", "multi-head weight layout",
                   "gradient: dk missing scale", "gradient: dv transposed", "GQA gradients not summed",
                   "rope layout swap", "rope reversed rotation", "rope positions off by one",
                   "rope positions ignored", "rope partial rotary on the wrong channels",
                   "rope partial rotary with frequencies from E", "rope bf16 angles",
                   "rope cos/sin rounded below the input dtype", "rope linear scaling applied to the base",
                   "rope YaRN without its attention factor", "rope llama3 bands swapped",
                   # issue 14: the sdpa kernel options
                   "window off by one on the left", "window off by one on the right",
                   "window ignoring the alignment", "softcap after the mask", "softcap as clamp",
                   "sinks adding a value row", "sinks ignored", "ALiBi sign wrong", "ALiBi alignment wrong",
                   "decode causal frontier top-left", "padded query rows NaN", "key_lengths ignored",
                   # issue 21: packed variable-length batches
                   "cu_seqlens off by one", "top-left alignment inside packed sequences",
                   "sequences bleeding into their neighbours", "NaN for an empty sequence", "NaN padding leaking",
                   # issue 21: the paged KV cache and chunked attention
                   "block table read off by one", "the last partial page read whole", "a page size assumed",
                   "cache lengths ignored", "a finite −5·10⁴ sentinel", "chunk boundary off by one",
                   "chunking confused with a window",
                   # issue 20: the log-sum-exp and merged attention states
                   "LSE left in base 2", "LSE without the softmax scale", "finite LSE for an empty row",
                   "NaN LSE for an empty row", "LSE ignoring sinks", "merge without max subtraction (overflow)",
                   "merge of two empty states NaN", "merge weighting by exp(lse) unnormalised",
                   # issue 20: gradients of the options
                   "gradient: dsinks with the wrong sign", "gradient: softcap missing its 1 − tanh² factor",
                   "gradient: window leaking into hidden keys",
                   "rope cache indexed by row instead of position", "rope cache half and interleaved pairing swapped"):
        assert needed in classes, needed


def test_control_is_not_caught(golden, randoms):
    hits = detection.detect_one(known_bad.control()(), golden=golden, random_cases=randoms)
    assert hits == []


@pytest.mark.parametrize("cls", BAD, ids=[c.__name__ for c in BAD])
def test_known_bad_is_caught(cls, golden, randoms):
    hits = detection.detect_one(cls(), golden=golden, random_cases=randoms, first_only=True)
    assert hits, f"{cls.name} ({cls.bug_class}) is not caught by any check"
