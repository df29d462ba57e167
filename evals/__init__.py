"""Benchmark adapters behind one registry (`evals.registry`), each writing a `BenchmarkResult`."""
