"""Benchmarks for Direct Push: run from the repository root, `python -m bench.<name>`."""
