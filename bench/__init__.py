"""Benchmarks of loopml against its peers; run ``python -m bench --help``."""
