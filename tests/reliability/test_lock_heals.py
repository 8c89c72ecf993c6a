"""Locks that heal: a dead holder's lock is taken over at once on its own machine (saying so), never on another
machine or container, nor from a live process; the lease is short; the 'locked' hint gives the exact command
that clears it; a release on the way out never raises and is bounded in time.

The done-when of issue 17: an apply SIGKILLed while it holds the lock, followed at once by another apply on the
same machine, succeeds without 'lock release' (real processes, a socket-served emulator).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.errors import InstanceError, LockError
from mtls_config.lock import (
    DEFAULT_TTL,
    ProcessIdentity,
    acquire,
    lock_sys_id,
    process_gone,
    read_lock,
    release_quietly,
    stack_lock,
    this_process,
)
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import local_settings, open_local
from tests.engine.stacks import write_stack
from tests.reliability.cli_runner import Zygote, base_env
from tests.reliability.harness import assert_converged, count, project

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def _dead_process() -> ProcessIdentity:
    """The identity of a process of this machine that has finished (and been collected)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return replace(this_process(), pid=child.pid, started=None)


def test_the_lease_frees_a_dead_holders_lock_within_two_minutes() -> None:
    assert dt.timedelta(minutes=2) >= DEFAULT_TTL


def test_which_holders_are_gone() -> None:
    here = this_process()
    assert not process_gone(here, here)  # this very process
    dead = _dead_process()
    assert process_gone(dead, here)
    # Never on the word of another machine, boot or container: the same pid there means nothing here.
    assert not process_gone(replace(dead, host=here.host + "-other"), here)
    assert not process_gone(replace(dead, boot="another-boot"), here)
    assert not process_gone(replace(dead, pidns="pid:[1]"), here)
    # A live process of this machine (the parent of this one) is not gone.
    assert not process_gone(replace(here, pid=os.getppid(), started=None), here)
    if here.started is not None:  # Linux: a pid reused by another process is recognised by its start time
        assert process_gone(replace(here, pid=os.getppid(), started=1), here)
        assert process_gone(replace(here, started=here.started + 1), here)


def test_a_zombie_holder_is_gone() -> None:
    """A killed apply whose parent has not collected it yet still has its pid: it is gone all the same."""
    if this_process().started is None:
        pytest.skip("no /proc on this system: a zombie cannot be told from a live process")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(100):  # until the kernel has made it a zombie
            with open(f"/proc/{child.pid}/stat", encoding="ascii") as fh:  # the test's own look, not the tool's
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        assert process_gone(replace(this_process(), pid=child.pid, started=None))
    finally:
        child.wait()


@pytest.mark.anyio
async def test_a_dead_holders_lock_on_this_machine_is_taken_over_at_once(client: InstanceClient) -> None:
    dead = _dead_process()
    await acquire(client, "s", holder=f"ci@{dead.host}:{dead.pid}", ttl=dt.timedelta(minutes=2), now=T0, process=dead)
    told: list[str] = []
    # One minute later: far from expired, yet taken over, and the taker says from whom.
    later = T0 + dt.timedelta(minutes=1)
    async with stack_lock(client, "s", clock=lambda: later, notify=told.append) as held:
        assert held.taken_from is not None and held.taken_from.holder == f"ci@{dead.host}:{dead.pid}"
        info = await read_lock(client, "s")
        assert info is not None and info.token == held.token and info.process == held.process
    assert told == [f"took over the lock of stack 's' from ci@{dead.host}:{dead.pid}: that process ran on this "
                    "machine and is no longer running"]  # fmt: skip
    assert await read_lock(client, "s") is None


@pytest.mark.anyio
async def test_a_live_or_remote_holders_lock_is_not_taken_over(client: InstanceClient) -> None:
    dead = _dead_process()
    holders = {
        "live here": replace(this_process(), pid=os.getppid(), started=None),
        "dead elsewhere": replace(dead, host="another-runner"),
        "dead in another container": replace(dead, pidns="pid:[4026531999]"),
        "an earlier version's lock": None,
    }
    for label, process in holders.items():
        held = await acquire(client, label.replace(" ", "-"), holder="x@h:1", now=T0, process=process)
        if process is None:  # written without the identity, as before it was recorded
            await client.update(
                "sys_properties",
                held.sys_id,
                {"value": f'{{"holder": "x@h:{dead.pid}", "token": "t", "expires": "2026-11-27T09:02:00Z"}}'},
            )
        with pytest.raises(LockError, match="is locked") as caught:
            await acquire(client, label.replace(" ", "-"), now=T0 + dt.timedelta(minutes=1))
        assert "lock release --force" in str(caught.value), label


def test_the_locked_hint_gives_the_exact_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock another (live) run holds: the hint names 'lock status' and 'lock release --force' with the very
    options the apply found the instance with, and those commands work as given."""
    root = tmp_path / "stack"
    write_stack(root / "specs", 2)
    project(root, "hinted", "specs")
    app = create_app(EmulatorConfig())
    with ThreadedServer(app) as server:
        live = replace(this_process(), pid=os.getppid(), started=None)

        async def hold() -> None:
            async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
                await acquire(c, "hinted", holder="ci@runner:4242", process=live)

        asyncio.run(hold())
        monkeypatch.chdir(root)
        for name, value in {"SN_USERNAME": "admin", "SN_PASSWORD": "admin", "NO_COLOR": "1"}.items():
            monkeypatch.setenv(name, value)
        code = main(["apply", "--auto-approve", "--instance", server.url])
        err = capsys.readouterr().err
        assert code == 1 and "is locked" in err and "ci@runner:4242" in err, err
        release = f"mtls-config lock release --force --instance {server.url}"
        assert f"'mtls-config lock status --instance {server.url}'" in err and f"'{release}'" in err, err
        assert "frees itself at" in err
        # Without --force a live holder's lock stays, and the refusal names the command again.
        assert main(["lock", "release", "--instance", server.url]) == 1
        assert release in capsys.readouterr().err
        assert main(release.split()[1:]) == 0  # the command as the hint gives it
        assert main(["apply", "--auto-approve", "--instance", server.url]) == 0
        capsys.readouterr()


@pytest.mark.anyio
async def test_a_release_on_the_way_out_never_raises_and_is_bounded() -> None:
    """The release a cancelled run (Ctrl-C) makes on its way out: an instance that fails or never answers
    costs at most its time limit, and the caller gets False instead of an exception."""
    app = create_app(EmulatorConfig())
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
        held = await acquire(c, "s")

    async def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "boom"}})

    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    for handler, limit in ((broken, 15.0), (silent, 0.5)):
        async with InstanceClient(local_settings(), transport=httpx.MockTransport(handler)) as c:
            started = time.monotonic()
            assert await release_quietly(c, held, timeout=limit) is False
            assert time.monotonic() - started < limit + 5
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
        assert await release_quietly(c, held) is True
        assert await release_quietly(c, held) is False  # twice is harmless
        assert await read_lock(c, "s") is None


class KillWhileLocked:
    """ASGI wrapper: SIGKILL the client process at its first request after its lock record was created (the
    apply holds the lock and has begun writing)."""

    def __init__(self, app: Any, stack: str) -> None:
        self.app = app
        self.state = app.state
        self.lock_id = lock_sys_id(stack)
        self.locked = False
        self.pid: int | None = None
        self.pid_known = threading.Event()
        self.fired = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.locked and not self.fired:
            self.fired = True
            await asyncio.to_thread(self.pid_known.wait, 30)
            assert self.pid is not None
            os.kill(self.pid, signal.SIGKILL)
            return
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/sys_properties"):
            info = await self._lock()
            self.locked = self.locked or info

    async def _lock(self) -> bool:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=self.app)) as c:
            return await c.get("sys_properties", self.lock_id, fields=["sys_id"]) is not None


@pytest.mark.parametrize("instance", ["served", "local"])
def test_a_killed_apply_is_followed_at_once_by_one_that_succeeds(instance: str, tmp_path: Path) -> None:
    """The done-when of issue 17, on a socket-served emulator and on the embedded local instance (whose SQLite
    file the killed process was writing itself): SIGKILL while the apply holds the lock, then at once, with no
    'lock release', another apply on this machine takes the lock over, says so, and converges."""
    root = tmp_path / "stack"
    write_stack(root / "specs", 12)
    project(root, "healing", "specs")
    env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
    logs = tmp_path / "logs"
    with Zygote() as zygote:
        if instance == "served":
            switch = KillWhileLocked(create_app(EmulatorConfig()), "healing")
            with ThreadedServer(switch) as server:  # type: ignore[arg-type]
                argv = ["apply", "--auto-approve", "--instance", server.url]
                pid = zygote.start(argv, cwd=root, env=env, logs=logs)
                switch.pid = pid
                switch.pid_known.set()
                killed = zygote.wait(pid)
                assert killed.status == -signal.SIGKILL and switch.fired, killed
                rerun = zygote.run(argv, cwd=root, env=env, logs=logs)

                async def converged() -> None:
                    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=switch.app)) as c:
                        await assert_converged(c, specs, "healing", journal_dirs=[root / ".mtls-config" / "journal"])
        else:
            argv = ["apply", "--auto-approve"]
            made = zygote.run(["plan"], cwd=root, env=env, logs=logs)  # makes the local instance, takes no lock
            assert made.status == 2 and "Plan: 12 to create" in made.out, made  # 2: changes to apply
            pid = zygote.start(argv, cwd=root, env=env, logs=logs)
            holder = asyncio.run(_kill_once_locked(root, "healing", pid))
            killed = zygote.wait(pid)
            assert killed.status == -signal.SIGKILL and holder.endswith(f":{pid}"), (killed, holder)
            rerun = zygote.run(argv, cwd=root, env=env, logs=logs)

            async def converged() -> None:
                async with open_local(root) as c:
                    await assert_converged(c, specs, "healing", journal_dirs=[root / ".mtls-config" / "journal"])

        assert rerun.status == 0, rerun
        assert "note: took over the lock of stack 'healing' from" in rerun.err and f":{pid}: " in rerun.err
        assert "no longer running" in rerun.err and "Traceback" not in rerun.out + rerun.err
        specs = load_specs([root / "specs"], root=root)
        asyncio.run(converged())
    count("dead_locks_taken_over")


async def _kill_once_locked(root: Path, stack: str, pid: int) -> str:
    """Watch the local instance (as another client of its file) until the apply holds the lock, then SIGKILL it;
    the holder the lock names."""
    deadline = time.monotonic() + 120
    async with open_local(root) as c:
        while time.monotonic() < deadline:
            info = await read_lock(c, stack)
            if info is not None:
                os.kill(pid, signal.SIGKILL)
                return info.holder
            await asyncio.sleep(0.01)
    raise AssertionError("the apply never took the lock")


class AfterTheLockInsert(httpx.AsyncBaseTransport):
    """Lets the instance carry out the lock's insert, then misbehaves as a case says: ``lose`` its answer (the
    connection drops after the write) and fail the two reads that would find it (the client's look-up, the lock's
    own), fail the ``read`` that confirms it (403, not retried), or ``cancel`` the run right then (Ctrl-C)."""

    def __init__(self, app: Any, fault: str, stack: str) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.fault = fault
        self.lock_name = f"mtls_config.lock.{stack}"
        self.inserted = False
        self.failing_reads = {"lose": 2, "read": 1}.get(fault, 0)
        self.task: asyncio.Task[Any] | None = None

    @property
    def done(self) -> bool:
        return self.inserted and self.failing_reads == 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.inserted and request.method == "POST" and self.lock_name.encode() in request.content:
            response = await self.inner.handle_async_request(request)
            self.inserted = True
            if self.fault == "lose":
                raise httpx.ReadError("connection dropped after the write", request=request)
            if self.fault == "cancel":
                assert self.task is not None
                self.task.cancel()
            return response
        if self.inserted and self.failing_reads and request.method == "GET":
            self.failing_reads -= 1
            return httpx.Response(403, json={"error": {"message": "Operation Failed", "detail": "ACL"}})
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("fault", ["read", "lose", "cancel"])
def test_a_failed_acquire_leaves_no_lock_of_its_own(fault: str) -> None:
    """Regression (a faults-suite flake, seed 12 at full size): acquire raised after its insert had landed (the
    answer lost, then the read after it failed), and the lock stayed, held by no one, until it expired. The lock
    record carries a token chosen before sending: a failed acquire removes the record that has it."""
    app = create_app(EmulatorConfig())

    async def main() -> None:
        transport = AfterTheLockInsert(app, fault, "leaky")
        async with InstanceClient(replace(local_settings(), max_retries=0), transport=transport) as c:
            transport.task = asyncio.ensure_future(acquire(c, "leaky"))
            with pytest.raises((LockError, asyncio.CancelledError, InstanceError)):
                await transport.task
            assert transport.inserted and transport.done
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
            assert await read_lock(c, "leaky") is None, f"{fault}: the failed acquire left its lock"
            assert (await acquire(c, "leaky")).stack == "leaky"  # and the next run takes it at once

    asyncio.run(main())


def test_a_release_outlasts_one_request_that_fails_every_retry() -> None:
    """Regression (the full-size faults suite, seeds 3 and 11): the release's read of the lock failed all its
    retries (504 six times in a row), the lock stayed for its lease, and the next run stopped at it. The release
    is tried again within its time bound."""
    app = create_app(EmulatorConfig())

    class FailingReads(httpx.AsyncBaseTransport):
        def __init__(self, failures: int) -> None:
            self.inner = httpx.ASGITransport(app=app)
            self.failures = failures

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and self.failures:
                self.failures -= 1
                return httpx.Response(504, json={"error": {"message": "Server error", "detail": "injected fault"}})
            return await self.inner.handle_async_request(request)

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
            held = await acquire(c, "s")
        settings = replace(local_settings(), max_retries=2)
        async with InstanceClient(settings, transport=FailingReads(3), sleep=_no_wait) as c:  # one whole request
            assert await release_quietly(c, held) is True
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as c:
            assert await read_lock(c, "s") is None

    asyncio.run(main())


async def _no_wait(seconds: float) -> None:
    return None


class _ReleasedWhileRefused(httpx.AsyncBaseTransport):
    """The emulator, where another run gives its lock back just after the instance refused this run's insert of
    it (the refusal naming the duplicate sys_id): the read that follows finds no lock."""

    def __init__(self, app: Any, sys_id: str, wording: str | None = None) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.sys_id = sys_id
        self.released = False
        self.wording = wording  # the refusal's detail as another instance words it (None: the emulator's)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and response.status_code == 400 and not self.released:
            await response.aread()
            self.released = True
            gone = httpx.Request("DELETE", f"{request.url.scheme}://{request.url.host}/api/now/table/sys_properties/"
                                 f"{self.sys_id}", headers={"Authorization": request.headers["Authorization"]})  # fmt: skip
            assert (await self.inner.handle_async_request(gone)).status_code == 204
            if self.wording is not None:
                body = json.loads(response.content)
                assert "duplicate sys_id" in body["error"]["detail"]
                body["error"]["detail"] = self.wording
                return httpx.Response(400, json=body)
        return response


@pytest.mark.parametrize(
    "wording",
    [None, "Error during insert of sys_properties: Duplicate entry '{sys_id}' for key 'PRIMARY'"],
    ids=["emulator", "database"],
)
def test_a_lock_given_back_while_this_run_takes_it_is_said_so(wording: str | None) -> None:
    app = create_app(EmulatorConfig())
    sys_id = lock_sys_id("s")
    transport = _ReleasedWhileRefused(app, sys_id, wording.format(sys_id=sys_id) if wording else None)

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=transport) as client:
            await acquire(client, "s", holder="other@host:1", ttl=DEFAULT_TTL)  # the other run's lock
            with pytest.raises(LockError) as refused:
                await acquire(client, "s", holder="me@host:2", ttl=DEFAULT_TTL)
            assert transport.released
            assert "another apply held it and gave it back while this run was taking it" in refused.value.message
            assert refused.value.hint == "run apply again: its plan reads what the other apply wrote"
            assert await read_lock(client, "s") is None  # nothing of this run's left behind

    asyncio.run(main())
