"""`attnconf accuracy`: the table, its verdicts and its exit codes (0 all bounds hold, 1 not, 2 usage)."""
from __future__ import annotations

from attnconf import cli
from attnconf.reference import accuracy


def test_accuracy_command_passes_and_prints_every_path(capsys):
    assert cli.main(["accuracy", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("sdpa output", "sdpa_vjp dq/dk/dv", "mha output", "encoding, p <= 1e6+777",
                 "naive float64 (contrast)", "exact", "all bounds hold"):
        assert text in out
    assert "FAIL" not in out


def test_accuracy_command_fails_when_a_bound_is_violated(capsys, monkeypatch):
    # a bound no float64 result can meet (0 ulp while errors are > 0) must flip the verdict
    monkeypatch.setattr(accuracy, "BOUND_DEFAULT_ENCODING", 0.0)
    assert cli.main(["accuracy", "--seeds", "1"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_accuracy_command_usage_error(capsys):
    assert cli.main(["accuracy", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "attnconf: --seeds should be >= 1, but got 0"
