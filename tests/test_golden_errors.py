"""Bad golden files and bad command lines: one line naming the file, exit 2; a changed output: exit 1.

Works on tmp copies of the shipped goldens; must never modify the shipped files.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from attnconf.cli import main
from attnconf.errors import SetupError
from attnconf.reference import golden


@pytest.fixture()
def copy(tmp_path):
    dest = tmp_path / "golden"
    shutil.copytree(golden.resolve_dir(), dest, ignore=shutil.ignore_patterns("*.tmp", "__pycache__"))
    return dest


def _rewrite_sha(directory, name):
    path = directory / golden.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"][name]["sha256"] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest))


def _missing(d):
    (d / "mha.npz").unlink()
    return "mha.npz"


def _truncated(d):
    data = (d / "mha.npz").read_bytes()
    (d / "mha.npz").write_bytes(data[: len(data) // 2])
    return "mha.npz"


def _flipped_byte(d):
    data = bytearray((d / "sdpa.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (d / "sdpa.npz").write_bytes(bytes(data))
    return "sdpa.npz"


def _garbage_with_matching_sha(d):
    (d / "encoding.npz").write_bytes(b"not a zip archive at all")
    _rewrite_sha(d, "encoding.npz")
    return "encoding.npz"


def _directory_instead_of_file(d):
    (d / "sdpa_vjp.npz").unlink()
    (d / "sdpa_vjp.npz").mkdir()
    return "sdpa_vjp.npz"


def _missing_manifest(d):
    (d / golden.MANIFEST).unlink()
    return golden.MANIFEST


def _truncated_manifest(d):
    text = (d / golden.MANIFEST).read_text()
    (d / golden.MANIFEST).write_text(text[: len(text) // 2])
    return golden.MANIFEST


def _newer_manifest(d):
    manifest = json.loads((d / golden.MANIFEST).read_text())
    manifest["format_version"] = golden.FORMAT_VERSION + 1
    (d / golden.MANIFEST).write_text(json.dumps(manifest))
    return golden.MANIFEST


def _malformed_record(d):
    manifest = json.loads((d / golden.MANIFEST).read_text())
    del manifest["cases"][0]["key"]
    (d / golden.MANIFEST).write_text(json.dumps(manifest))
    return golden.MANIFEST


BREAKERS = [_missing, _truncated, _flipped_byte, _garbage_with_matching_sha, _directory_instead_of_file,
            _missing_manifest, _truncated_manifest, _newer_manifest, _malformed_record]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__.strip("_"))
def test_load_cases_names_the_bad_file(copy, breaker):
    name = breaker(copy)
    with pytest.raises(SetupError) as info:
        golden.load_cases(golden_dir=copy)
    message = str(info.value)
    assert str(copy / name) in message and "\n" not in message


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__.strip("_"))
def test_cli_verify_exits_2_with_one_line_naming_the_file(copy, breaker, capsys):
    name = breaker(copy)
    assert main(["golden", "verify", "--golden-dir", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("attnconf: ") and name in err


def test_verify_checks_unselected_files_too(copy):
    _flipped_byte(copy)  # sdpa.npz
    with pytest.raises(SetupError, match="sdpa.npz"):
        golden.verify(copy, select="enc/base_500")


def test_changed_output_is_a_mismatch_exit_1(copy, capsys):
    case_id = "sdpa/gqa_h6_hkv3"
    record = next(r for r in golden.read_manifest(copy)["cases"] if r["id"] == case_id)
    path = copy / record["file"]
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    key = f"{record['key']}.expected.output"
    arrays[key] = arrays[key].copy()
    arrays[key].flat[5] += 4 * 2.0 ** -52 * arrays[f"{record['key']}.scale.output"].flat[5]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    _rewrite_sha(copy, record["file"])
    report = golden.verify(copy, select=case_id)
    assert not report["ok"] and report["mismatches"][0]["case"] == case_id
    assert 3.0 <= report["mismatches"][0]["max_ulp"] <= 5.0
    assert main(["golden", "verify", "--golden-dir", str(copy), "--select", case_id]) == 1
    assert f"MISMATCH {case_id} output" in capsys.readouterr().out


def test_env_var_selects_the_golden_dir(copy, monkeypatch):
    _missing(copy)
    monkeypatch.setenv(golden.ENV_VAR, str(copy))
    with pytest.raises(SetupError, match="mha.npz"):
        golden.load_cases()
    monkeypatch.setenv(golden.ENV_VAR, str(copy.parent / "nowhere"))
    with pytest.raises(SetupError, match="manifest.json is missing"):
        golden.load_cases()


@pytest.mark.parametrize("argv, fragment", [
    (["golden"], "golden action should be one of"),
    (["golden", "frobnicate"], "invalid choice"),
    (["golden", "export"], "required: DIR"),
    (["golden", "verify", "--bogus"], "unrecognized arguments"),
    (["golden", "list", "--select", "no-such-case-anywhere"], "--select should match"),
])
def test_cli_usage_errors_are_one_line_exit_2(argv, fragment, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors leave through SystemExit(2)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err


def test_cli_export_to_a_file_or_foreign_dir_is_exit_2(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("x")
    assert main(["golden", "export", str(target)]) == 2
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    assert main(["golden", "export", str(tmp_path / "foreign")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "should be a directory" in err[0] and "should be empty or a previous export" in err[1]
    assert (tmp_path / "foreign" / "keep.txt").read_text() == "mine"


def test_subprocess_verify_bad_file_no_traceback(copy):
    _truncated(copy)
    proc = subprocess.run([sys.executable, "-m", "attnconf", "golden", "verify", "--golden-dir", str(copy)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "mha.npz" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_list_prints_ids_and_clauses(capsys):
    assert main(["golden", "list", "--select", "enc/t2t_d*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [l.split("\t")[0] for l in lines] == ["enc/t2t_d1", "enc/t2t_d2", "enc/t2t_d3"]
    assert all("enc.frequencies.t2t" in l for l in lines)
