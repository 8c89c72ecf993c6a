"""Process-wide settings for a run of mtls-config, applied by the entry points that own their process.

A run is short and builds large, mostly acyclic structures (parsed specs, instance answers, plans). With
CPython's default thresholds the cycle collector starts a pass every 700 allocations and, as the run's
objects pile up, full passes over all of them: about 0.1 s of a 1000-resource plan, for almost no garbage
(reference counting frees nearly everything). Fewer, larger passes keep that time for the work; mypy makes
the same trade.

Library code never calls this: importing mtls_config must not change the host program's collector.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 20)  # CPython's defaults: (700, 10, 10)


def tune_process() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
