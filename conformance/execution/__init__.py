"""Execution: `runner` (the one check loop: plan the cases, call, judge, apply expectations,
write), `isolation` (the in-process and worker executors of one executor protocol) and
`verify_outputs` (judging outputs an implementation in any language wrote to files).
"""
