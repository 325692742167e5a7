"""The registry (specs, resolve, instantiate), device selection, and the promises about the user's
process: importing adapters imports no framework, JAX's x64 flag and the Keras backend stay as
the user set them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from attnconf.adapters import registry
from attnconf.adapters.jax_nn import select_jax_platform
from attnconf.adapters.keras_tf import select_tf_device
from attnconf.adapters.pytorch import select_torch_device
from attnconf.errors import SetupError, UsageError


def test_spec_json_round_trip_and_validation():
    spec = registry.AdapterSpec("function", "pkg.mod:f", "torch", "sdpa", "cuda")
    assert registry.AdapterSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(UsageError, match="adapter spec keys"):
        registry.AdapterSpec.from_json({"kind": "bundled", "target": "torch-math", "colour": 1})
    with pytest.raises(ValueError, match="adapter spec kind should be one of"):
        registry.AdapterSpec.from_json({"kind": "plugin", "target": "x"})


def test_resolve_without_names_gives_every_available_bundled_adapter():
    specs = registry.resolve()
    names = [s.target for s in specs]
    assert names == [n for n in registry.BUNDLED if n in names]  # bundled order
    assert {"numpy-reference", "torch-math", "torch-flash", "jax-xla", "keras-tf", "tf-sinusoidal"} <= set(names)
    for spec in specs:
        adapter = registry.instantiate(spec)
        assert adapter.is_available() == (True, "") and adapter.framework == spec.framework
    rows = {r["name"]: r for r in registry.discover()}
    assert set(rows) >= set(registry.BUNDLED)
    assert not set(registry.OPT_IN) & set(names)  # run only when named
    unavailable = set(registry.BUNDLED) - set(names) - set(registry.OPT_IN)
    assert all(rows[n]["available"] is False and rows[n]["reason"] for n in unavailable)


@pytest.mark.parametrize("requested,cuda,expected", [("cpu", False, "cpu"), ("cpu", True, "cpu"),
                                                     ("cuda", True, "cuda"), ("gpu", True, "cuda")])
def test_torch_device_selection(requested, cuda, expected):
    assert select_torch_device(requested, cuda) == expected


@pytest.mark.parametrize("requested,platforms,expected", [("cpu", {"cpu"}, "cpu"), ("gpu", {"cpu", "gpu"}, "gpu"),
                                                          ("cuda", {"cpu", "gpu"}, "gpu")])
def test_jax_platform_selection(requested, platforms, expected):
    assert select_jax_platform(requested, platforms) == expected


@pytest.mark.parametrize("requested,gpus,expected", [("cpu", 0, "/CPU:0"), ("gpu", 2, "/GPU:0"), ("cuda", 1, "/GPU:0")])
def test_tf_device_selection(requested, gpus, expected):
    assert select_tf_device(requested, gpus) == expected


def test_gpu_requested_without_gpu_is_a_clear_setup_error():
    with pytest.raises(SetupError, match="torch.cuda.is_available\\(\\) is False"):
        select_torch_device("cuda", False)
    with pytest.raises(SetupError, match="JAX has only cpu platforms"):
        select_jax_platform("gpu", {"cpu"})
    with pytest.raises(SetupError, match="list_physical_devices\\('GPU'\\) is empty"):
        select_tf_device("gpu", 0)
    with pytest.raises(SetupError, match="should be one of 'cpu', 'cuda', 'gpu'"):
        select_torch_device("tpu", True)
    with pytest.raises(ValueError, match="device should be one of"):
        registry.instantiate(registry.AdapterSpec("bundled", "torch-math", device="tpu"))


def test_adapters_on_a_missing_gpu_are_unavailable_with_the_reason():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the CPU-only reasons cannot be observed")
    for name in ("torch-math", "torch-efficient", "torch-nn-mha", "jax-xla", "keras-tf", "numpy-reference"):
        adapter = registry.instantiate(registry.AdapterSpec("bundled", name, device="cuda"))
        available, reason = adapter.is_available()
        assert not available and reason, name
    assert "needs a CUDA device" in registry.instantiate(registry.AdapterSpec("bundled", "torch-cudnn")).is_available()[1]
    assert "needs a GPU" in registry.instantiate(registry.AdapterSpec("bundled", "jax-cudnn",
                                                                      device="cpu")).is_available()[1]
    with pytest.raises(SetupError, match="adapter torch-math should be available, but it is not"):
        registry.resolve(["torch-math"], device="cuda")
    assert registry.resolve(device="cuda") == []


def _python(code: str, env=None) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=env or dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_importing_the_adapters_imports_no_framework():
    code = ("import sys, attnconf.adapters.registry, attnconf.adapters.pytorch, attnconf.adapters.jax_nn, "
            "attnconf.adapters.keras_tf, attnconf.adapters.keras_hub, attnconf.adapters.function, "
            "attnconf.adapters.numpy_reference, attnconf.commands.adapters\n"
            "print(sorted(m for m in ('torch', 'jax', 'tensorflow', 'keras', 'keras_hub') if m in sys.modules))")
    assert _python(code) == "[]"


def test_jax_float64_leaves_the_global_x64_flag_alone():
    import jax

    before = jax.config.jax_enable_x64
    adapter = registry.instantiate(registry.AdapterSpec("bundled", "jax-xla"))
    q = adapter.from_numpy(np.ones((1, 1, 2, 2)), "float64")
    assert str(adapter.to_numpy(adapter.sdpa(q, q, q)).dtype) == "float64"
    assert jax.config.jax_enable_x64 == before
    if not before:
        assert jax.numpy.asarray(np.ones(2)).dtype == np.float32  # the user's default is untouched


@pytest.mark.slow
def test_keras_backend_is_chosen_without_disturbing_the_user():
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    fresh = ("import os, numpy as np\n"
             "from attnconf.adapters.registry import AdapterSpec, instantiate\n"
             "a = instantiate(AdapterSpec('bundled', 'keras-tf'))\n"
             "q = a.from_numpy(np.ones((1, 1, 2, 2)), 'float32'); a.sdpa(q, q, q)\n"
             "import keras\n"
             "print(keras.backend.backend(), os.environ.get('KERAS_BACKEND'))")
    assert _python(fresh, env) == "tensorflow None"
    jax_first = ("import os, numpy as np\nos.environ['KERAS_BACKEND'] = 'jax'\nimport keras\n"
                 "from attnconf.adapters.registry import AdapterSpec, instantiate\n"
                 "a = instantiate(AdapterSpec('bundled', 'keras-tf'))\n"
                 "q = a.from_numpy(np.ones((1, 1, 2, 2)), 'float32')\n"
                 "out = a.to_numpy(a.sdpa(q, q, q))\n"
                 "mha = instantiate(AdapterSpec('bundled', 'keras-tf-mha')).is_available()\n"
                 "print(keras.backend.backend(), out.shape, mha[0], 'jax' in mha[1])")
    assert _python(jax_first, env) == "jax (1, 1, 2, 2) False True"
