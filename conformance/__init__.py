"""The conformance suite: tolerance rule, agreement checks, invariants, semantic profiles, results.

Runs as `attnconf run` and as `pytest --pyargs attnconf.conformance`.
"""
