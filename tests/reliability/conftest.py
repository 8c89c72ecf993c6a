"""Fixtures of the reliability suite and its report: the figures (faults injected, kills survived, inputs
tried, secrets found, records lost) are printed at the end of the run, and written as JSON to the file that
MTLS_CONFIG_RELIABILITY_RESULTS names, if it is set (never into the source tree by default)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from tests.engine.conftest import local_settings
from tests.reliability.cli_runner import Zygote
from tests.reliability.harness import FIGURES, FULL

RESULTS = (
    Path(os.environ["MTLS_CONFIG_RELIABILITY_RESULTS"]) if os.environ.get("MTLS_CONFIG_RELIABILITY_RESULTS") else None
)
REPORTED = ("faults_injected", "kills_survived", "inputs_tried", "secrets_found", "records_lost")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    """A pre-imported CLI process that forks a child per command (``cli_runner.Zygote``), shared by a module."""
    with Zygote() as z:
        yield z


@pytest.fixture
async def client() -> AsyncIterator[InstanceClient]:
    """A client of a fresh in-process emulator, as the embedded instance's user."""
    app = create_app(EmulatorConfig())
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
        yield c


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not FIGURES or RESULTS is None:
        return
    figures = {name: FIGURES.get(name, 0) for name in REPORTED}
    figures.update({k: v for k, v in sorted(FIGURES.items()) if k not in figures})
    data = {"size": "full" if FULL else "ci", "passed": exitstatus == 0, "figures": figures}
    RESULTS.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section(f"mtls-config reliability figures ({'full' if FULL else 'ci'} size)")
    for name in REPORTED:
        terminalreporter.write_line(f"{name:>24}: {FIGURES.get(name, 0)}")
    for name, value in sorted(FIGURES.items()):
        if name not in REPORTED:
            terminalreporter.write_line(f"{name:>24}: {value}")
    if RESULTS is not None:
        terminalreporter.write_line(f"{'written to':>24}: {RESULTS}")
