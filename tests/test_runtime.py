"""The console script tunes the cycle collector for its own process; importing the library never does."""

from __future__ import annotations

import subprocess
import sys

from mtls_config.runtime import GC_THRESHOLDS

SHOW_AT_EXIT = "import atexit, gc, sys; atexit.register(lambda: print(gc.get_threshold()));"


def _printed(code: str) -> list[str]:
    """What ``code`` prints, then the collector's thresholds as the process ends."""
    done = subprocess.run([sys.executable, "-c", SHOW_AT_EXIT + code], capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()


def test_the_command_runs_with_the_tuned_collector() -> None:
    code = "from mtls_config.cli.main import run; sys.argv = ['mtls-config', '--version']; run()"
    assert _printed(code)[-1] == str(GC_THRESHOLDS)


def test_importing_the_library_leaves_the_host_programs_collector_alone() -> None:
    code = "import gc; before = gc.get_threshold(); import mtls_config.engine, mtls_config.cli.main; print(before)"
    before, after = _printed(code)[-2:]
    assert before == after != str(GC_THRESHOLDS)
