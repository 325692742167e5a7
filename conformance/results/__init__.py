"""Results: `record` (the one record type, its status enum and JSON form), `files` (the results
JSON written as a run goes and read back validated) and `repro` (the one owner of the command
that reruns a record).
"""
