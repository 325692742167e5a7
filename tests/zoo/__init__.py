"""A zoo of misbehaving plug-ins: implementations that crash, hang, eat memory or return garbage.

Used by tests/test_isolation_*.py and tests/test_bad_input_*.py to show that such an
implementation costs only its own cases. Every function here follows the bare-function plug-in
signature of the README (`--sdpa zoo.sdpa:NAME --framework numpy`). Never import these from
product code.
"""
