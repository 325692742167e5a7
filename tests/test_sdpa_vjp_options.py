"""sdpa_vjp with the kernel options (spec sdpa.opt.grad): the reference against finite differences
of the exact forward pass, hidden keys without gradient, dsinks only with sinks, and the real
implementations that differentiate the options (their divergences pinned)."""
from __future__ import annotations

import numpy as np
import pytest

from attnconf import reference as R
from attnconf.conformance.judging import engine
from attnconf.reference import sdpa_vjp_cases

CASES = {c.id: c for c in sdpa_vjp_cases.option_cases()}


def _forward(case, inputs):
    from attnconf.operations.sdpa import _options

    return R.sdpa(inputs["query"], inputs["key"], inputs["value"], attn_mask=inputs.get("attn_mask"),
                  **_options(inputs, case.options), exact=True)


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_reference_agrees_with_finite_differences(case_id):
    """<grads, u> equals the central difference of <sdpa(x + h·u), g> along random directions u."""
    case = CASES[case_id]
    grads = R.compute("sdpa_vjp", case.inputs, case.options, exact=True)
    g = case.inputs["grad_output"]
    rng = np.random.default_rng(0)
    wrt = {"query": "dq", "key": "dk", "value": "dv"}
    if "sinks" in case.inputs:
        wrt["sinks"] = "dsinks"
    for name, out in wrt.items():
        x = case.inputs[name]
        u = rng.standard_normal(x.shape)
        if name == "sinks":
            u = np.where(np.isfinite(x), u, 0.0)
        h = 1e-6
        plus, minus = dict(case.inputs), dict(case.inputs)
        plus[name], minus[name] = x + h * u, x - h * u
        fd = (np.sum(_forward(case, plus) * g) - np.sum(_forward(case, minus) * g)) / (2 * h)
        an = float(np.sum(grads[out] * u))
        size = float(np.sum(np.abs(grads[out] * u))) + 1e-12
        assert abs(fd - an) <= 1e-6 * size + 1e-9, (name, fd, an)


def test_hidden_keys_get_no_gradient():
    case = CASES["sdpa_vjp/opt_key_lengths_b3_zero"]
    grads = R.compute("sdpa_vjp", case.inputs, case.options, exact=True)
    for b, n in enumerate(case.inputs["key_lengths"]):
        assert not grads["dk"][b, :, n:].any() and not grads["dv"][b, :, n:].any()
    assert not grads["dq"][2].any()         # a sequence with no key: its rows give nothing


def test_window_hides_keys_from_gradient():
    case = CASES["sdpa_vjp/opt_window_l2_r0_causal"]
    plain = dict(case.options, window=None)
    with_w = R.compute("sdpa_vjp", case.inputs, case.options, exact=True)
    without = R.compute("sdpa_vjp", case.inputs, plain, exact=True)
    assert not np.allclose(with_w["dk"], without["dk"])


def test_dsinks_only_with_sinks():
    assert set(R.compute("sdpa_vjp", CASES["sdpa_vjp/opt_sinks_h3"].inputs,
                         CASES["sdpa_vjp/opt_sinks_h3"].options)) == {"dq", "dk", "dv", "dsinks"}
    assert set(R.compute("sdpa_vjp", CASES["sdpa_vjp/opt_softcap_c5"].inputs,
                         CASES["sdpa_vjp/opt_softcap_c5"].options)) == {"dq", "dk", "dv"}
    # a −∞ sink gets no gradient (head 0 of this case)
    case = CASES["sdpa_vjp/opt_sinks_fully_masked_rows"]
    assert R.compute("sdpa_vjp", case.inputs, case.options, exact=True)["dsinks"][0] == 0.0


def test_softcap_slope_matters():
    """Without the slope 1 − tanh² the gradient would differ: the case exercises it."""
    case = CASES["sdpa_vjp/opt_softcap_c5"]
    ex = R.compute("sdpa_vjp", case.inputs, case.options, exact=True)
    from attnconf.conformance.known_bad.grads_options import GradSoftcapNoSlope

    bad = GradSoftcapNoSlope().sdpa_vjp(case.inputs["query"], case.inputs["key"], case.inputs["value"],
                                        case.inputs["grad_output"], softcap=case.options["softcap"])
    assert np.max(np.abs(bad[0] - ex["dq"])) > 1e-3 * np.max(np.abs(ex["dq"]))


def _judge(adapter_name, case_id, dtype):
    from attnconf.adapters import registry

    ad = registry._construct(registry._bundled_class(adapter_name), "cpu")
    case = CASES[case_id]
    case.expected = R.compute("sdpa_vjp", case.inputs, case.options, exact=True)
    case.scale = R.natural_scales("sdpa_vjp", case.inputs, case.options)
    return engine.judge(case, dtype, engine.compute_outputs(ad, case, dtype), adapter_name=adapter_name)


def test_numpy_reference_returns_dsinks():
    rec = _judge("numpy-reference", "sdpa_vjp/opt_combined_all", "float32")
    assert rec["status"] == "pass" and "dsinks" in rec["metrics"]["outputs"]


def test_torch_math_decode_gradients_pass():
    pytest.importorskip("torch")
    for dtype in ("float64", "float32"):
        assert _judge("torch-math", "sdpa_vjp/opt_decode_l2_p60", dtype)["status"] == "pass"


def test_torch_flex_declines_backward_on_cpu():
    """Pinned (torch 2.13 CPU): eager FlexAttention raises NotImplementedError in its backward on
    CPU ("FlexAttention does not support backward on CPU"), so every sdpa_vjp case is declined."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("the pin is about CPU")
    from attnconf.adapters import registry

    ad = registry._construct(registry._bundled_class("torch-flex"), "cpu")
    case = CASES["sdpa_vjp/opt_softcap_c5"]
    with pytest.raises(NotImplementedError, match="backward on CPU"):
        engine.compute_outputs(ad, case, "float32")


def test_jax_window_gradients_float32_pass_float64_is_float32_accurate():
    """jax.nn.dot_product_attention differentiates local_window_size: float32 passes; float64 is
    float32-accurate (its softmax runs in float32), the sdpa.dtype divergence its forward has."""
    pytest.importorskip("jax")
    assert _judge("jax-xla", "sdpa_vjp/opt_window_l2_r0_causal", "float32")["status"] == "pass"
    rec = _judge("jax-xla", "sdpa_vjp/opt_window_l2_r0_causal", "float64")
    assert rec["status"] == "fail" and 1e6 < rec["metrics"]["max_ulp_error"] < 1e10


def test_torch_math_masks_gradients_of_window_alibi_lengths_pass():
    """PyTorch autograd through the math backend with the options as its attn_mask (HF's recipe):
    window, ALiBi, decode offsets and key lengths (an empty sequence included: torch's math path
    gives 0 for a row with no visible key) agree with the reference at float64 and float32."""
    pytest.importorskip("torch")
    for case_id in ("sdpa_vjp/opt_window_l2_r0_causal", "sdpa_vjp/opt_window_l3_r1_br_gqa",
                    "sdpa_vjp/opt_alibi_bh_causal_br", "sdpa_vjp/opt_decode_l2_p60",
                    "sdpa_vjp/opt_key_lengths_b3_zero"):
        for dtype in ("float64", "float32"):
            assert _judge("torch-math-masks", case_id, dtype)["status"] == "pass", (case_id, dtype)
