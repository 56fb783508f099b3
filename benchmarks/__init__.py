"""Peer comparisons. Each ``bench_*.py`` module has a ``main()`` that runs our path and the
peer's in the same process on the same data and writes JSON to ``benchmarks/results/``."""
