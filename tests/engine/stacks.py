"""Synthetic spec repositories of any size, for round-trip and scale tests: the benchmarks' stack writer."""

from __future__ import annotations

from bench.stacks import write_stack

__all__ = ["write_stack"]
