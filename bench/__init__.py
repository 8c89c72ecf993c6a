"""Benchmarks of plan/apply/drift against the emulator served over a real socket with injected latency.

``python -m bench`` (see bench/README.md). Measures our engine side by side with a per-record baseline and
a one-round-trip-per-table floor. Not part of the installed package; imports mtls_config, never the reverse.
"""
