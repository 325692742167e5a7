"""Dtype lists are parsed once (attnconf.dtypes.parse_dtypes) for `attnconf run --dtype` and
pytest's --attnconf-dtype, and the conformance layer does not import the command layer."""
import re
from pathlib import Path

import pytest

from attnconf.dtypes import parse_dtypes
from attnconf.errors import UsageError

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"


def test_a_list_keeps_its_order_once_each():
    assert parse_dtypes(" float32,float16 ,float32,") == ("float32", "float16")


@pytest.mark.parametrize("text, option, message", [
    ("complex", "--dtype", "--dtype should be one of float64, float32, float16, bfloat16, int64, but got 'complex'"),
    ("flaot32", "--dtype", "--dtype should be one of float64, float32, float16, bfloat16, int64, but got 'flaot32' "
                           "(did you mean 'float32'?)"),
    (" , ", "--attnconf-dtype",
     "--attnconf-dtype should list one or more of float64, float32, float16, bfloat16, but got ' , '"),
])
def test_a_bad_list_names_the_option(text, option, message):
    with pytest.raises(UsageError) as info:
        parse_dtypes(text, option=option)
    assert str(info.value) == message


def test_the_cli_parses_with_the_same_function():
    from attnconf.commands import run

    assert run.parse_dtypes is parse_dtypes


def test_conformance_does_not_import_the_command_layer():
    offenders = [str(p.relative_to(CONFORMANCE)) for p in sorted(CONFORMANCE.rglob("*.py"))
                 if re.search(r"\battnconf\.commands\b|\bfrom attnconf import commands\b",
                              p.read_text(encoding="utf-8"))]
    assert offenders == [], f"conformance modules should not import attnconf.commands, but these do: {offenders}"
