"""Concurrent runs: the stack lock (one winner, a clear message naming the holder and the expiry for the
other), its expiry and take-over, its release on failure, and two real ``mtls-config apply`` processes
racing for the same stack on a served emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.errors import LockError, MtlsConfigError
from mtls_config.lock import (
    LOCK_PREFIX,
    acquire,
    force_release,
    lock_sys_id,
    lock_ttl,
    read_lock,
    release,
    stack_lock,
)
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import local_settings
from tests.engine.stacks import write_stack
from tests.reliability.cli_runner import Zygote, base_env
from tests.reliability.harness import Meeting, assert_converged, count, project

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


@pytest.mark.anyio
async def test_a_held_lock_stops_a_second_run_naming_holder_and_expiry(client: InstanceClient) -> None:
    held = await acquire(client, "s", holder="alice@ci-7:4242", ttl=dt.timedelta(minutes=30), now=T0)
    with pytest.raises(LockError) as caught:
        await acquire(client, "s", holder="bob@laptop:1", now=T0 + dt.timedelta(minutes=5))
    message = str(caught.value)
    assert "alice@ci-7:4242" in message and "2026-11-27T09:30:00Z" in message and "25 min" in message
    assert "mtls-config lock release" in message
    assert await release(client, held)
    assert await read_lock(client, "s") is None
    again = await acquire(client, "s", holder="bob@laptop:1", now=T0 + dt.timedelta(minutes=6))
    assert again.sys_id == lock_sys_id("s")
    # Written on every apply: it must not flush the instance's caches, nor travel in update sets.
    flags = await client.get("sys_properties", again.sys_id, fields=["ignore_cache", "is_private"])
    assert flags == {"ignore_cache": "true", "is_private": "true"}


@pytest.mark.anyio
async def test_an_expired_lock_is_taken_over_and_the_old_holder_cannot_release_it(client: InstanceClient) -> None:
    old = await acquire(client, "s", holder="dead@host:1", ttl=dt.timedelta(seconds=60), now=T0)
    new = await acquire(client, "s", holder="live@host:2", now=T0 + dt.timedelta(seconds=61))
    info = await read_lock(client, "s")
    assert info is not None and info.holder == "live@host:2" and info.token == new.token
    assert not await release(client, old)  # no longer the dead run's lock: left alone
    assert (await read_lock(client, "s")) is not None
    assert await release(client, new)


@pytest.mark.anyio
async def test_racing_runs_get_exactly_one_lock(client: InstanceClient) -> None:
    for round_ in range(10):
        outcomes = await asyncio.gather(
            *(acquire(client, "race", holder=f"run{i}@h:{i}", now=T0) for i in range(5)), return_exceptions=True
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1, (round_, outcomes)
        assert all(isinstance(e, LockError) and winners[0].holder in str(e) for e in losers), losers
        rows = await client.list("sys_properties", query=f"name={LOCK_PREFIX}race", fields=["sys_id"])
        assert len(rows) == 1
        await release(client, winners[0])
        count("lock_races")


@pytest.mark.anyio
async def test_racing_take_overs_of_an_expired_lock_never_give_two_winners(client: InstanceClient) -> None:
    for round_ in range(10):
        await acquire(client, "race", holder="dead@h:0", ttl=dt.timedelta(seconds=1), now=T0)
        later = T0 + dt.timedelta(minutes=1)
        outcomes = await asyncio.gather(
            *(acquire(client, "race", holder=f"run{i}@h:{i}", now=later) for i in range(4)), return_exceptions=True
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(winners) <= 1, (round_, outcomes)
        assert all(isinstance(o, LockError) for o in outcomes if isinstance(o, BaseException)), outcomes
        info = await read_lock(client, "race")
        if winners:
            assert info is not None and info.token == winners[0].token
        await force_release(client, "race")


@pytest.mark.anyio
async def test_the_lock_is_released_when_the_apply_fails(client: InstanceClient) -> None:
    with pytest.raises(MtlsConfigError, match="boom"):
        async with stack_lock(client, "s"):
            assert await read_lock(client, "s") is not None
            raise MtlsConfigError("boom")
    assert await read_lock(client, "s") is None


def test_lock_ttl_comes_from_the_environment() -> None:
    assert lock_ttl({}) == dt.timedelta(minutes=2)  # a dead run's lock frees itself within two minutes
    assert lock_ttl({"MTLS_CONFIG_LOCK_TTL": "90"}) == dt.timedelta(seconds=90)
    for bad in ("soon", "-1", "0"):
        with pytest.raises(LockError, match="MTLS_CONFIG_LOCK_TTL"):
            lock_ttl({"MTLS_CONFIG_LOCK_TTL": bad})


def test_two_applies_at_once_one_wins_the_other_stops_clearly(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    write_stack(root / "specs", 12)
    project(root, "concurrent", "specs")
    # The first insert of a lock record is held until the second arrives (or 10 s pass): the two applies reach
    # the lock at the same moment whatever their start-up times.
    gate = Meeting(create_app(EmulatorConfig()), LOCK_PREFIX, wait=10)
    env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
    with ThreadedServer(gate) as server, Zygote() as zygote:  # type: ignore[arg-type]
        argv = ["apply", "--auto-approve", "--instance", server.url]
        pids = [zygote.start(argv, cwd=root, env=env, logs=tmp_path / "logs") for _ in range(2)]
        results = [zygote.wait(pid) for pid in pids]
        assert gate.both.is_set(), "the two runs did not meet at the lock"
        assert sorted(r.status for r in results) == [0, 1], results
        winner = next(r for r in results if r.status == 0)
        loser = next(r for r in results if r.status == 1)
        winner_pid = pids[results.index(winner)]
        assert "12 applied, 0 failed" in winner.out
        assert "is locked: another apply is running" in loser.err and f":{winner_pid}" in loser.err, loser.err
        assert "expires at" in loser.err and "Traceback" not in loser.err
        specs = load_specs([root / "specs"], root=root)

        async def check() -> None:
            async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=gate.app)) as c:
                await assert_converged(c, specs, "concurrent", journal_dirs=[root / ".mtls-config" / "journal"])

        asyncio.run(check())
        count("concurrent_apply_races")


@pytest.mark.anyio
async def test_a_long_apply_keeps_its_lock_alive_until_it_is_taken_away(client: InstanceClient) -> None:
    beats: list[float] = []
    hold = asyncio.Event()

    async def beat(seconds: float) -> None:  # the keeper's sleep: each call is one third of the lifetime
        beats.append(seconds)
        if len(beats) > 3:
            await hold.wait()

    async def until(condition: Any) -> None:
        for _ in range(10_000):
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError("the keeper did not get there")

    def clock() -> dt.datetime:  # each renewal happens 30 s after the one before
        return T0 + dt.timedelta(seconds=30 * len(beats))

    async with stack_lock(client, "long", ttl=dt.timedelta(seconds=90), sleep=beat, clock=clock) as held:
        await until(lambda: len(beats) > 3)
        info = await read_lock(client, "long")
        assert info is not None and info.token == held.token
        assert info.mod_count == 3 and beats[:3] == [30.0, 30.0, 30.0]  # renewed on each of 3 beats
        assert info.expires == T0 + dt.timedelta(seconds=90 + 90) and info.acquired == T0
        await force_release(client, "long")  # an operator removes it: the keeper must not bring it back
        hold.set()
        for _ in range(200):  # let the keeper run its fourth beat: it finds the lock gone and stops
            await asyncio.sleep(0)
        assert await read_lock(client, "long") is None and len(beats) == 4
    assert await read_lock(client, "long") is None
