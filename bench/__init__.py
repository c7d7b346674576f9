"""Benchmarks that measure the runner beside plain huey in the same run."""
