"""OpenContainer benchmarks: ``python -m benchmarks [--repeat N] [--only SCENARIO] [--quick]``.

Each scenario measures our side and its peers in the same run with interleaved repetitions
(ours, peer, ours, peer, ...) and reports medians; see benchmarks/README.md.
"""
