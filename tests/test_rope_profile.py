"""The RoPE profile aspects (conformance/checks/profile/): each is detected as canonical on the zoo's
control and numpy-reference and as the spec's named alternative on the known-bad that changes it;
an adapter without rotary_embedding gets no rope aspect."""
from __future__ import annotations

import dataclasses

import pytest

from attnconf import spec
from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance import known_bad
from attnconf.conformance.checks import profile
from attnconf.conformance.known_bad import rope

CANONICAL = {"rope_layouts": {"interleaved": "interleaved", "half": "half"}, "rope_rotation": "by_theta",
             "rope_partial": "leading_channels",
             "rope_angle_precision": {"float64": "exact", "float32": "float32_angles",
                                      "float16": "float32_angles", "bfloat16": "float32_angles"},
             "rope_yarn_truncate": "truncate", "rope_yarn_attention_factor": "applied"}


@pytest.mark.parametrize("make", [known_bad.control(), NumpyReferenceAdapter], ids=["control", "numpy-reference"])
def test_correct_implementations_profile_canonical(make):
    found = profile.detect(make())
    for aspect, value in CANONICAL.items():
        assert found[aspect]["value"] == value, (aspect, found[aspect])
    recs = [r for r in profile.profile_records(make(), found) if r["operation"] == "rotary_embedding"]
    assert [r["case"] for r in recs] == [
        "profile/rope_layouts/interleaved", "profile/rope_layouts/half", "profile/rope_rotation",
        "profile/rope_partial", "profile/rope_angle_precision", "profile/rope_yarn_truncate",
        "profile/rope_yarn_attention_factor"]
    assert {r["status"] for r in recs} == {"pass"}


# (known-bad, aspect, what it is detected as, the clause whose named alternative that is)
CHANGED = [
    (rope.RopeLayoutSwapped, "rope_layouts", {"interleaved": "half", "half": "interleaved"}, "rope.layout.{key}"),
    (rope.RopeReversedRotation, "rope_rotation", "reversed", "rope.rotation"),
    (rope.RopePartialTrailingChannels, "rope_partial", "trailing_channels", "rope.partial"),
    (rope.RopePartialHeadDimFrequencies, "rope_partial", "head_dim_frequencies", "rope.partial"),
    (rope.RopeFloat32AnglesForFloat64, "rope_angle_precision", {"float64": "float32_angles"}, "rope.dtype"),
    (rope.RopeBfloat16Angles, "rope_angle_precision",
     {"float64": "exact", "float16": "low_precision_angles", "bfloat16": "low_precision_angles"}, "rope.dtype"),
    (rope.RopeCosSinBelowDtype, "rope_angle_precision",
     {"float64": "cos_sin_below_dtype", "float32": "cos_sin_below_dtype"}, "rope.dtype"),
    (rope.RopeYarnTruncateFalseDefault, "rope_yarn_truncate", "truncate_false_default", "rope.scaling.yarn"),
    (rope.RopeYarnNoAttentionFactor, "rope_yarn_attention_factor", "no_attention_factor", "rope.scaling.yarn"),
]


@pytest.mark.parametrize("cls, aspect, value, clause", CHANGED, ids=[f"{c.__name__}-{a}" for c, a, _, _ in CHANGED])
def test_known_bad_is_profiled_as_its_alternative(cls, aspect, value, clause):
    found = profile.detect(cls())[aspect]["value"]
    if isinstance(value, dict):
        assert {d: found[d] for d in value} == value, found
        named = {(clause.format(key=k), v) for k, v in value.items() if v != "exact"}
    else:
        assert found == value
        named = {(clause, value)}
    for cl, name in named:
        assert name in spec.clause(cl)["alternatives"], "a detected divergence carries the index's name"
    recs = {r["case"]: r for r in profile.profile_records(cls(), profile.detect(cls()))}
    failing = [c for c, r in recs.items() if c.startswith(f"profile/{aspect}") and r["status"] == "fail"]
    assert failing, recs


def test_profile_only_layouts_the_adapter_claims():
    class HalfOnly(known_bad.control()):
        name = "test/half-only"
        capabilities = dataclasses.replace(known_bad.control().capabilities, rope_layouts=("half",),
                                           rope_scaling=("linear",))

    found = profile.detect(HalfOnly())
    assert found["rope_layouts"]["value"] == {"half": "half"}
    assert found["rope_yarn_truncate"]["value"] == "unsupported"
    recs = {r["case"]: r["status"] for r in profile.profile_records(HalfOnly(), found)}
    assert recs["profile/rope_yarn_truncate"] == "skip"
    assert "profile/rope_layouts/interleaved" not in recs
    assert [i for i in profile.record_ids(HalfOnly()) if "rope_layouts" in i] == ["profile/rope_layouts/half"]


def test_an_adapter_without_rotary_embedding_gets_no_rope_aspect():
    class NoRope(known_bad.control()):
        name = "test/no-rope"
        capabilities = dataclasses.replace(known_bad.control().capabilities, operations=("sdpa",))

    assert not [a for a in profile.aspects_for(NoRope()) if a.startswith("rope")]
    assert not [i for i in profile.record_ids(NoRope()) if "rope" in i]
    assert not [a for a in profile.detect(NoRope()) if a.startswith("rope")]


def test_a_rope_only_adapter_gets_an_output_dtype_probe():
    class RopeOnly(known_bad.control()):
        name = "test/rope-only"
        capabilities = dataclasses.replace(known_bad.control().capabilities, operations=("rotary_embedding",))

    found = profile._output_dtypes(RopeOnly())
    assert found["value"] == {d: d for d in RopeOnly.capabilities.dtypes}
