"""Meta-tests of conformance/checks/profile/: the control's profile is canonical, and each known-bad
implementation is described by the named alternative it follows."""
from __future__ import annotations

import pytest

from attnconf.conformance.checks import profile

from attnconf.conformance import known_bad
from attnconf.conformance.known_bad import causal, encoding, gqa, mask, precision, scale


def test_control_profile_is_canonical():
    prof = profile.detect(known_bad.control()())
    assert prof["fully_masked"]["value"] == "zero"
    assert prof["causal_alignment"]["value"] == "top_left"
    assert prof["causal_bottom_right"]["value"] == "bottom_right"
    assert prof["mask_and_causal"]["value"] == "intersect"
    assert prof["mask_polarity"]["value"] == "true_attends"
    assert prof["gqa"]["value"] == "repeat_interleave"
    assert prof["value_dim"]["value"] == "supported"
    assert prof["default_scale"]["value"] == "1/sqrt(E)"
    assert prof["determinism"]["value"] == "deterministic"
    assert prof["encoding_offset"]["value"] == "supported"
    assert all(k == v for k, v in prof["encoding_variants"]["value"].items())
    assert all(k == v for k, v in prof["output_dtype"]["value"].items())
    assert all(isinstance(a["evidence"], str) and a["evidence"] for a in prof.values())
    recs = profile.profile_records(known_bad.control()(), prof)
    assert recs and {r["status"] for r in recs} == {"pass"}
    assert all(r["check"] == "profile" and r["clauses"] for r in recs)


ALTERNATIVES = [
    (mask.FullyMaskedNaN, "fully_masked", "nan"),
    (mask.FullyMaskedMeanV, "fully_masked", "uniform"),
    (mask.InvertedBoolMask, "mask_polarity", "true_means_masked"),
    (causal.CausalAlwaysBottomRight, "causal_alignment", "bottom_right"),
    (causal.CausalIgnoresAlignment, "causal_bottom_right", "top_left"),
    (causal.MaskReplacesCausal, "mask_and_causal", "mask_only"),
    (gqa.GqaTile, "gqa", "tile"),
    (scale.ScaleFromValueDim, "default_scale", "value_dim"),
    (precision.NondeterministicKeyOrder, "determinism", "nondeterministic"),
    (encoding.EncOffsetOffByOne, "encoding_offset", "off_by_one_up"),
]


@pytest.mark.parametrize("cls, aspect, value", ALTERNATIVES, ids=[c.__name__ for c, _, _ in ALTERNATIVES])
def test_known_bad_profile_names_the_alternative(cls, aspect, value):
    prof = profile.detect(cls())
    assert prof[aspect]["value"] == value, prof[aspect]
    rec = next(r for r in profile.profile_records(cls(), prof) if r["case"] == f"profile/{aspect}")
    assert rec["status"] == "fail" and value in rec["message"]


# what a probe saw that the spec gives no name: mask_only is neither intersect nor the index's `error`
NOT_SPEC_NAMES = {"mask_only"}


@pytest.mark.parametrize("aspect", sorted(profile.canonical()))
def test_canonical_choice_is_the_clause_of_the_index_not_one_of_its_alternatives(aspect):
    from attnconf import spec

    clause, canonical, _ = profile.canonical()[aspect]
    alternatives = spec.clause(clause)["alternatives"]     # KeyError for a clause not in the index
    assert canonical not in alternatives, (f"{aspect}'s canonical value should be {clause}'s own choice, not "
                                           f"one of its named alternatives {alternatives}, but got {canonical!r}")


@pytest.mark.parametrize("cls, aspect, value", ALTERNATIVES, ids=[c.__name__ for c, _, _ in ALTERNATIVES])
def test_a_divergence_the_spec_names_is_reported_under_the_index_name(cls, aspect, value):
    from attnconf import spec

    alternatives = spec.clause(profile.canonical()[aspect][0])["alternatives"]
    if not alternatives or value in NOT_SPEC_NAMES:
        pytest.skip(f"{profile.canonical()[aspect][0]} names no alternative that {value!r} is")
    assert value in alternatives, (f"{cls.__name__}'s {aspect} should be reported under a name spec/index.json "
                                   f"gives it ({', '.join(alternatives)}), but got {value!r}")


def test_a_name_the_index_does_not_have_is_refused():
    assert profile._named("mask_polarity", "true_means_masked") == "true_means_masked"
    with pytest.raises(ValueError, match="'true_masks' of aspect mask_polarity should be an alternative"):
        profile._named("mask_polarity", "true_masks")


def test_encoding_variant_detection():
    prof = profile.detect(encoding.EncConcatForInterleaved())
    assert prof["encoding_variants"]["value"]["interleaved/vaswani"] == "concat/vaswani"
    assert prof["encoding_variants"]["value"]["cos_first/t2t"] == "cos_first/t2t"
    prof = profile.detect(encoding.EncT2tForVaswani())
    assert prof["encoding_variants"]["value"]["concat/vaswani"] == "concat/t2t"


def test_output_dtype_divergence_is_a_failing_record():
    a = precision.OutputUpcastFloat32()
    prof = profile.detect(a)
    assert prof["output_dtype"]["value"]["float16"] == "float32"
    rec = next(r for r in profile.profile_records(a, prof) if r["case"] == "profile/output_dtype")
    assert rec["status"] == "fail" and rec["clauses"] == ["sdpa.dtype"]


def test_declared_unsupported_is_a_skip():
    import dataclasses

    class NoGqa(known_bad.control()):
        name = "test/no-gqa"
        capabilities = dataclasses.replace(known_bad.control().capabilities, gqa=False)

        def sdpa(self, query, key, value, **kw):
            from attnconf.errors import Unsupported

            if query.shape[1] != key.shape[1]:
                raise Unsupported("no GQA")
            return super().sdpa(query, key, value, **kw)

    prof = profile.detect(NoGqa())
    assert prof["gqa"]["value"] == "unsupported"
    rec = next(r for r in profile.profile_records(NoGqa(), prof) if r["case"] == "profile/gqa")
    assert rec["status"] == "skip"


def test_output_dtype_of_a_layer_only_adapter_is_probed_through_the_layer():
    # An adapter that implements only multi_head_attention is probed with a self-attention call;
    # a broken probe used to show every dtype as "raised …" — a divergence that wasn't there.
    from attnconf.adapters.numpy_reference import NumpyReferenceAdapter as NumpyReference
    from attnconf.adapters.base import Capabilities

    class LayerOnly(NumpyReference):
        name = "layer-only"
        capabilities = Capabilities(operations=("multi_head_attention",), dtypes=("float64", "float32"))

    seen = profile._output_dtypes(LayerOnly())["value"]
    assert seen == {"float64": "float64", "float32": "float32"}
