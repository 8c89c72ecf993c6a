"""Deadlines against slow instances, on real sockets (``slow_servers``): one that accepts and never answers, one
that drips a byte every half second, one that answers 429 with ``Retry-After: 99999``. Every command that talks
to an instance ends within its ``--timeout`` (a little slack for a loaded machine), says which request was slow
and for how long, and sends no more than the credential check's one request meanwhile.

One data file per command case in ``cases/slow/``; the client-level cases below cover a stalled read (no byte
for the read timeout) and the credential gate without a command limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.client.deadline import Deadline
from mtls_config.errors import InstanceTimeout, InstanceUnreachable
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from tests.reliability.harness import count, example_repo
from tests.reliability.slow_servers import slow_server

CASES = sorted((Path(__file__).parent / "cases" / "slow").glob("*.json"))
SLACK = 8.0  # seconds beyond the limit a loaded 2-CPU machine may take to start and wind the command down


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_slow_instance_costs_no_more_than_the_time_limit(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    example_repo(tmp_path, monkeypatch, password="slow-instance-password")
    with slow_server(case["server"], interval=case.get("interval", 1.0)) as (server, url):
        started = time.monotonic()
        code = main([*case["args"], "--instance", url])
        took = time.monotonic() - started
        sent = server.requests
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == case["exit"], (code, out, err)
    for line in case["output"]:
        assert line in out + err, f"missing from the output:\n{line}\n--- it was:\n{out}{err}"
    assert took <= case["seconds"] + SLACK, f"took {took:.1f} s with a limit of {case['seconds']} s"
    assert sent <= case["max_requests"], f"{sent} requests reached the server"
    count("slow_instance_runs")


def _settings(url: str, **changes: float | int | None) -> InstanceSettings:
    settings = InstanceSettings(
        url=url, auth=BasicAuth("admin", SecretValue(b"slow-instance-password", "test")), max_retries=2
    )
    return InstanceSettings(**{**settings.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_stalled_read_fails_as_a_stall() -> None:
    """Headers, then nothing: after the read timeout without a byte the attempt fails, saying it stalled, and is
    retried; the whole request gives up after its attempts, long before any command limit."""
    with slow_server("stall") as (server, url):
        async with InstanceClient(_settings(url, timeout=0.5, max_retries=1)) as client:
            started = time.monotonic()
            with pytest.raises(InstanceUnreachable) as caught:
                await client.list("sys_certificate")
            took = time.monotonic() - started
        sent = server.requests
    message = str(caught.value)
    assert "the connection stalled: no byte from the instance for 0.5 s" in message, message
    assert "after 2 attempts" in message and sent == 2
    assert took < 10


@pytest.mark.anyio
async def test_the_credential_gate_costs_one_requests_attempts_not_every_requests() -> None:
    """Twenty reads queued behind the first, which checks the credentials, against an instance that never
    answers: the first one's attempts are the only requests sent; the others fail at once, unsent, saying why.
    A request made after that is sent again: the client is not written off for good."""
    with slow_server("silent") as (server, url):
        async with InstanceClient(_settings(url, timeout=0.3, max_retries=2)) as client:
            started = time.monotonic()
            outcomes = await asyncio.gather(*(client.list(f"sys_table_{i}") for i in range(20)), return_exceptions=True)
            took = time.monotonic() - started
            sent = server.requests
            # Only those queued meanwhile fail unsent: a later request tries again (the instance may be back).
            with pytest.raises(InstanceUnreachable, match="after 3 attempts"):
                await client.list("later")
            sent_later = server.requests - sent
    assert all(isinstance(o, InstanceUnreachable) for o in outcomes), outcomes
    unsent = [o for o in outcomes if "was not sent: an earlier request found the instance unreachable" in str(o)]
    assert len(unsent) == 19 and sent == 3, (sent, [str(o) for o in outcomes][:3])
    assert took < 15 and sent_later == 3


@pytest.mark.anyio
async def test_the_command_limit_bounds_the_queue_at_the_gate() -> None:
    """With a command limit shorter than the first request's attempts, the queued requests give up at the limit
    too, naming the request they waited behind."""
    with slow_server("silent") as (server, url):
        async with InstanceClient(_settings(url, timeout=30, command_timeout=1.5)) as client:
            started = time.monotonic()
            outcomes = await asyncio.gather(*(client.list(f"t{i}") for i in range(5)), return_exceptions=True)
            took = time.monotonic() - started
        sent = server.requests
    assert all(isinstance(o, InstanceTimeout) for o in outcomes), outcomes
    texts = [str(o) for o in outcomes]
    assert sum("queued behind GET /api/now/table/t" in t for t in texts) == 4, texts
    assert sum("the instance had not finished answering" in t for t in texts) == 1, texts
    assert sent == 1 and took < 1.5 + SLACK


def test_a_paused_deadline_does_not_count_the_pause() -> None:
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])
    now[0] += 4
    with deadline.paused():  # a person reading the plan before answering 'yes'
        now[0] += 1000
    assert deadline.remaining() == pytest.approx(6)
    assert not deadline.expired()
    now[0] += 6
    assert deadline.expired()
    assert Deadline(None).remaining() is None
