"""Workloads: in-process generation, smoke tests and benchmarks, with their measured figures."""
