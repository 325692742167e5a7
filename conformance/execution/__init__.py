"""Execution: `runner` (the one check loop: plan the cases, call, judge, apply expectations,
write), `isolation` (the worker executor: implementations run in child processes, `worker` being the child
side and `wire` their framing) and
`verify_outputs` (judging outputs an implementation in any language wrote to files).
"""
