"""Benchmark adapters behind one registry (`evals.base.BENCHMARKS`), each writing a `BenchmarkResult`."""
