"""Hostile or odd inputs to the commands (issue 22): one line, exit 2, never "internal error" —
or, where the input is right after all (big-endian outputs), accepted."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from attnconf.cli import main
from attnconf.reference.golden import load_cases

CASE = "sdpa/causal_tl_square_l9"


def one_line_exit_2(capsys, *args, words=()):
    try:
        code = main(list(args))
    except SystemExit as exc:          # argparse errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "internal error" not in err and "Traceback" not in err, (code, err)
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    return lines[0]


@pytest.fixture(autouse=True)
def _here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_report_of_deeply_nested_json(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    code = main(["report", "deep.json", "--html", "r.html"])
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err and "nested too deeply" in err, err


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_non_finite_numeric_options(capsys, value):
    one_line_exit_2(capsys, "run", "--adapter", "numpy-reference", f"--timeout={value}",
                    words=("--timeout", "finite"))
    one_line_exit_2(capsys, "bench", "--quick", f"--max-exponent={value}", words=("--max-exponent", "finite"))
    one_line_exit_2(capsys, "run", "--adapter", "numpy-reference", f"--memory-limit={value}",
                    words=("--memory-limit",))


def _expected():
    return load_cases(CASE)[0].expected["output"]


def test_big_endian_outputs_are_the_right_answer(tmp_path, capsys):
    np.savez(tmp_path / "be.npz", **{f"{CASE}/output": _expected().astype(">f8")})
    code = main(["verify-outputs", "be.npz", "--select", CASE, "--json", "r.json"])
    assert code == 0, capsys.readouterr()
    recs = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [(r["status"], r["dtype"]) for r in recs] == [("pass", "float64")]


@pytest.mark.parametrize("name", ["outptu", "lse"])
def test_misspelled_or_extra_output_names_are_named(tmp_path, capsys, name):
    np.savez(tmp_path / "o.npz", **{f"{CASE}/output": _expected(), f"{CASE}/{name}": _expected()})
    one_line_exit_2(capsys, "verify-outputs", "o.npz", "--json", "r.json",
                    words=(f"'{CASE}/{name}'", "(output)"))


def test_object_dtype_outputs_say_so(tmp_path, capsys):
    bad = np.empty(_expected().shape, dtype=object)
    bad[...] = 1.0
    np.savez(tmp_path / "o.npz", **{f"{CASE}/output": bad})
    one_line_exit_2(capsys, "verify-outputs", "o.npz", "--json", "r.json", words=("object-dtype",))


def test_a_framework_tensor_from_a_numpy_function_fails_like_a_list(tmp_path, capsys):
    """One type contract for every non-array return: not this framework's array -> fail by name."""
    pytest.importorskip("torch")
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    try:
        for fn in ("sdpa_torch_tensor", "sdpa_list"):
            code = main(["run", "--sdpa", f"zoo.misbehaving:{fn}", "--framework", "numpy", "--no-isolation",
                         "--no-checks", "--no-expectations", "--select", CASE, "--dtype", "float32",
                         "--json", f"{fn}.json"])
            rec = json.loads((tmp_path / f"{fn}.json").read_text())["results"][0]
            assert code == 1 and rec["status"] == "fail" and "output should be an array" in rec["message"], rec
    finally:
        sys.path.pop(0)


@pytest.fixture
def deep(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def test_deeply_nested_expectations_results_and_manifest(tmp_path, capsys, deep):
    one_line_exit_2(capsys, "run", "--adapter", "numpy-reference", "--no-checks", "--select", CASE,
                    "--expectations", str(deep), "--json", "r.json", words=("nests deeper",))
    one_line_exit_2(capsys, "expectations", "list", str(deep), words=("nests deeper",))
    one_line_exit_2(capsys, "expectations", "update", "--results", str(deep), "--out", "e.json",
                    words=("nests deeper",))
    import shutil

    from attnconf.reference import golden

    gd = tmp_path / "goldens"
    shutil.copytree(golden.resolve_dir(), gd)
    shutil.copy(deep, gd / "manifest.json")
    one_line_exit_2(capsys, "golden", "list", "--golden-dir", str(gd), words=("manifest", "nests deeper"))
