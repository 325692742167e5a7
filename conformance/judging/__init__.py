"""Judging: how an implementation's output is compared with the reference.

`compare` (ulp distances of natural scale), `tolerance` (the one tolerance table of tol.rule;
the measurements behind it are conformance/tolerance_evidence.py, which runs adapters), `engine` (call an adapter on one case and
judge its output) and `expectations` (documented divergences that turn a fail into xfail).
"""
