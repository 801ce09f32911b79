"""Benchmarks (print numbers; not tests)."""
