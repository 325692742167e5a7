"""`attnconf golden export`: the language-neutral layout of docs/golden-format.md, read back with
an independent .npy header parser (what a C or Rust reader does) and compared with load_cases.
"""
from __future__ import annotations

import ast
import json
import struct

import numpy as np
import pytest

from attnconf import spec
from attnconf.cli import main
from attnconf.reference import golden

SELECT = ("sdpa/mask_bool_b11s_padding,sdpa_vjp/gqa_h4_hkv2,mha/cross_bias_d16_dkv10_h4,enc/vaswani_d3,"
          "sdpa_varlen/empty_seqs")


def read_npy_like_c(path):
    """Parse a .npy v1.0 file by the documented layout, without numpy.load."""
    raw = path.read_bytes()
    assert raw[:6] == b"\x93NUMPY" and raw[6:8] == b"\x01\x00", "magic and version 1.0"
    (header_len,) = struct.unpack("<H", raw[8:10])
    header = ast.literal_eval(raw[10:10 + header_len].decode("latin1"))
    assert (10 + header_len) % 64 == 0, "data starts on a 64-byte boundary"
    assert header["fortran_order"] is False and header["descr"] in _LAYOUT
    count = int(np.prod(header["shape"], dtype=np.int64))
    code, itemsize, dtype = _LAYOUT[header["descr"]]
    data = raw[10 + header_len:]
    assert len(data) == count * itemsize
    values = [b != 0 for b in data] if code == "?" else struct.unpack(f"<{count}{code}", data)
    return np.array(values, dtype=dtype).reshape(header["shape"])


# descr -> (struct code, item size, dtype): float64, bool masks, integer inputs (cu_seqlens int32)
_LAYOUT = {"<f8": ("d", 8, np.float64), "|b1": ("?", 1, bool), "<i4": ("i", 4, np.int32), "<i8": ("q", 8, np.int64)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    dest = tmp_path_factory.mktemp("export") / "out"
    assert main(["golden", "export", str(dest), "--select", SELECT]) == 0
    return dest


def test_index_lists_every_selected_case_with_paths_shapes_and_dtypes(exported):
    index = json.loads((exported / "index.json").read_text())
    assert index["format"] == "attnconf-golden-export" and index["format_version"] == golden.EXPORT_FORMAT_VERSION
    assert index["spec_version"] == spec.spec_version() == "1.4"
    assert [c["id"] for c in index["cases"]] == [c.id for c in golden.load_cases(SELECT)]
    for case in index["cases"]:
        assert set(case) >= {"id", "operation", "clauses", "options", "inputs", "expected", "scale", "seed"}
        for kind in ("inputs", "expected", "scale"):
            for entry in case[kind].values():
                assert entry["path"].startswith(case["id"] + f"/{kind}/") and entry["path"].endswith(".npy")
                assert entry["dtype"] in ("float64", "bool", "int32", "int64") and entry["npy_descr"] in _LAYOUT


def test_cu_seqlens_are_exported_as_int32(exported):
    index = json.loads((exported / "index.json").read_text())
    case = next(c for c in index["cases"] if c["operation"] == "sdpa_varlen")
    for name in ("cu_seqlens_q", "cu_seqlens_k"):
        assert case["inputs"][name]["dtype"] == "int32" and case["inputs"][name]["npy_descr"] == "<i4"
        back = read_npy_like_c(exported / case["inputs"][name]["path"])
        assert back.dtype == np.int32 and back[0] == 0 and np.all(np.diff(back) >= 0)


def test_round_trip_is_bit_exact(exported):
    index = json.loads((exported / "index.json").read_text())
    loaded = {c.id: c for c in golden.load_cases(SELECT)}
    for entry in index["cases"]:
        case = loaded[entry["id"]]
        assert entry["options"] == case.options and entry["clauses"] == list(case.clauses)
        for kind, arrays in (("inputs", case.inputs), ("expected", case.expected), ("scale", case.scale)):
            assert set(entry[kind]) == set(arrays)
            for name, arr in arrays.items():
                back = read_npy_like_c(exported / entry[kind][name]["path"])
                assert back.shape == arr.shape and list(back.shape) == entry[kind][name]["shape"]
                assert np.array_equal(back, arr, equal_nan=True), f"{entry['id']} {kind}/{name}"
                assert np.array_equal(np.load(exported / entry[kind][name]["path"], allow_pickle=False), arr,
                                      equal_nan=True)


def test_reexport_into_a_previous_export_is_allowed(exported):
    assert main(["golden", "export", str(exported), "--select", "enc/vaswani_d3"]) == 0
    index = json.loads((exported / "index.json").read_text())
    assert [c["id"] for c in index["cases"]] == ["enc/vaswani_d3"]
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert files == ["enc/vaswani_d3/expected/output.npy", "enc/vaswani_d3/scale/output.npy", "index.json"], \
        "a re-export leaves no stale case behind"
    assert main(["golden", "export", str(exported), "--select", SELECT]) == 0  # the module's other tests


def _doc_example(lang: str) -> str:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "golden-format.md").read_text()
    (code,) = re.findall(rf"```{lang}\n(.*?)```", doc, re.S)
    return code


@pytest.mark.parametrize("lang, build", [
    ("c", ["cc", "-O1", "-o", "{exe}", "{src}"]),
    ("rust", ["rustc", "--edition", "2021", "-o", "{exe}", "{src}"]),
])
def test_documented_reader_examples_read_an_export(exported, tmp_path, lang, build):
    import shutil
    import subprocess

    if shutil.which(build[0]) is None:
        pytest.skip(f"{build[0]} not installed")
    src, exe = tmp_path / f"read_npy.{'c' if lang == 'c' else 'rs'}", tmp_path / "read_npy"
    src.write_text(_doc_example(lang))
    subprocess.run([a.format(exe=exe, src=src) for a in build], check=True, capture_output=True, timeout=300)
    case = golden.load_cases("sdpa/mask_bool_b11s_padding")[0]
    path = exported / "sdpa/mask_bool_b11s_padding/inputs/query.npy"
    out = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    first = float(out.rsplit("first", 1)[1])
    assert first == case.inputs["query"].flat[0]
    shape = case.inputs["query"].shape
    assert (f"{len(shape)} dims, {case.inputs['query'].size} values" if lang == "c" else f"shape {list(shape)}") in out


def test_paged_integer_inputs_export_as_int64_and_outside_outputs_verify(tmp_path):
    """A paged case's block table and cache lengths are written as exact int64 '<i8' arrays, and
    outputs computed from the exported files (the reference stands in for a CUDA kernel reading
    them) score with verify-outputs."""
    case_id = "sdpa_paged/p16_partial_gqa_l3"
    dest = tmp_path / "out"
    assert main(["golden", "export", str(dest), "--select", case_id]) == 0
    entry = json.loads((dest / "index.json").read_text())["cases"][0]
    for name in ("block_table", "cache_lengths"):
        assert entry["inputs"][name]["dtype"] == "int64" and entry["inputs"][name]["npy_descr"] == "<i8"
    inputs = {n: np.load(dest / e["path"]) for n, e in entry["inputs"].items()}
    case = golden.load_cases(case_id)[0]
    for name, arr in case.inputs.items():
        assert np.array_equal(inputs[name], arr) and inputs[name].dtype == (np.int64 if arr.dtype.kind == "i" else arr.dtype)
    from attnconf.reference.paged import sdpa_paged

    f32 = {n: a.astype(np.float32) if a.dtype == np.float64 else a.astype(np.int32) for n, a in inputs.items()}
    out, lse = sdpa_paged(f32["query"], f32["key_pages"], f32["value_pages"], f32["block_table"],
                          f32["cache_lengths"], precision="float32", **entry["options"])
    np.savez(tmp_path / "outs.npz", **{f"{case_id}/output": out, f"{case_id}/lse": lse.astype(np.float32)})
    assert main(["verify-outputs", str(tmp_path / "outs.npz"), "--select", case_id,
                 "--json", str(tmp_path / "v.json")]) == 0
