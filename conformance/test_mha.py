"""Conformance tests for spec section mha (the multi-head attention layer): agreement with the golden cases.

Parametrised by the attnconf pytest plugin (conformance/plugin.py) over adapter x golden case x
dtype, e.g. `pytest --pyargs attnconf.conformance --attnconf-adapter torch-math`; ids read
`[ADAPTER-DTYPE-CASE]`. No conftest: the plugin supplies options and parameters.
Must not loop over adapters or dtypes inside a test.
"""
OPERATION = "multi_head_attention"


def test_agreement(attnconf_item, attnconf_session):
    """The output agrees with the golden value under the tolerance rule (spec/tolerance.md)."""
    attnconf_session.check(attnconf_item)
