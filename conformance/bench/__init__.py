"""Speed benchmarks: peak probe, flop counts, timing, scaling fit, memory, sweeps (spec/performance.md).

For what: `attnconf bench` and `pytest --pyargs attnconf.conformance.bench --benchmark-json …`
measure every adapter's throughput against this machine's matrix-multiply peak, measured in the
same run, and the scaling exponent in L. Figures land in the results JSON's `benchmarks` section.
Must not: judge conformance by speed unless the user sets a budget (clause perf.*: performance is
reported, not judged), import a framework at module level, or time anything it did not synchronise.
"""
