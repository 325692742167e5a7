"""Conformance tests of every registered operation without a module of its own: agreement with the golden cases.

The operations are attnconf.operations.operations() (a plug-in's too, registered by entry point:
docs/plugins.md) less those a module here names by OPERATION (test_sdpa.py, test_gradients.py,
test_mha.py, test_encoding.py, whose test ids stay as they were). Parametrised by the attnconf
pytest plugin (conformance/plugin.py) over adapter x golden case x dtype; ids read
`[ADAPTER-DTYPE-CASE]`, e.g. `[toy-numpy-float64-toy/n8_alpha2]`. Not collected while every
registered operation has a module of its own. Must not loop over adapters or dtypes inside a test.
"""


def test_agreement(attnconf_item, attnconf_session):
    """The output agrees with the golden value under the tolerance rule (spec/tolerance.md)."""
    attnconf_session.check(attnconf_item)
