"""Benchmarks: programs that print figures (`make bench`)."""
