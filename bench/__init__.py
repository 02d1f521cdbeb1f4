"""Benchmarks: `python -m bench`. Every ratio is taken within one run; absolute numbers are printed, never asserted."""
