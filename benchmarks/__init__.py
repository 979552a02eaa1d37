"""Benchmarks of the exporter with their baselines measured side by side in the same run.

``python -m benchmarks`` (or ``make bench``) runs them all and prints a summary table of ratios;
each module also runs alone (``python -m benchmarks.bench_ingest``). See benchmarks/README.md.
"""
