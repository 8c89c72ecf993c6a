"""Crash tests: ``mtls-config apply`` runs as its own process against the emulator served on a real socket and
is SIGKILLed at seeded points; a re-run must converge with nothing duplicated, orphaned, half-made or lost.

The kill is exact, not timed: a wrapper around the emulator counts API requests and, at request k, either
kills the process before the instance sees the request, or lets the instance carry it out and kills the
process before the answer leaves (the worst moment: the write happened, the run never learnt of it).
A killed run that had taken the stack lock leaves it behind, and the lock heals: the re-run, on the same
machine, takes it over at once (saying so) and succeeds without any 'lock release'. A lock the dead run left
when nothing was left to apply (the re-run takes no lock) is shown by ``mtls-config lock status`` as held by a
process that is gone, and ``mtls-config lock release`` clears it without --force.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.lock import force_release, lock_sys_id, read_lock
from mtls_config.spec.loader import load_specs
from mtls_config.spec.project import load_project
from tests.engine.conftest import local_settings, open_local, refuse
from tests.engine.stacks import write_stack
from tests.reliability.cli_runner import Zygote, base_env, fresh
from tests.reliability.harness import FULL, assert_converged, count, project, seed_counts

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"
KILL_POINTS = 60 if FULL else 20
SEED = 20261127


class KillSwitch:
    """ASGI wrapper: at API request number ``at`` SIGKILL the client process (``before`` the instance handles
    the request, or ``after`` it did and before it answers). Control endpoints are not counted."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state
        self.lock = threading.Lock()
        self.arm(None, "before")

    def arm(self, at: int | None, mode: str) -> None:
        with self.lock:
            self.count = 0
            self.at = at
            self.mode = mode
            self.fired = False
            self.pid: int | None = None
            self.pid_known = threading.Event()

    def target(self, pid: int) -> None:
        self.pid = pid
        self.pid_known.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.count += 1
            fire = self.at is not None and self.count == self.at and not self.fired
            self.fired = self.fired or fire
        if not fire:
            await self.app(scope, receive, send)
            return
        await asyncio.to_thread(self.pid_known.wait, 30)
        if self.mode == "after":

            async def discard(message: Any) -> None:
                return None

            await self.app(scope, receive, discard)
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[KillSwitch, str]]:
    switch = KillSwitch(create_app(EmulatorConfig()))
    with ThreadedServer(switch) as server:  # type: ignore[arg-type]
        yield switch, server.url


def _stack(tmp: Path, which: str) -> tuple[Path, str]:
    if which == "example":
        root = tmp / "example"
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mtls-config"))
        (root / ".git").mkdir(exist_ok=True)
        return root, load_project(root).project.stack
    root = tmp / "synthetic"
    write_stack(root / "specs", 12)
    project(root, "crash-synthetic", "specs")
    return root, "crash-synthetic"


async def _check(app: Any, root: Path, stack: str, seeded: dict[str, int] | None) -> dict[str, int]:
    project_file = load_project(root)
    specs = load_specs(project_file.spec_paths(), root=project_file.root)
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
        if seeded is None:
            return await seed_counts(client)
        await assert_converged(client, specs, stack, journal_dirs=[root / ".mtls-config" / "journal"], seeded=seeded)
        return seeded


async def _lock_holder(app: Any, stack: str) -> str | None:
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
        info = await read_lock(client, stack)
        return info.holder if info else None


def _plan_points(n_full: dict[str, int]) -> list[tuple[str, int, str]]:
    rng = random.Random(SEED)
    points = []
    for i in range(KILL_POINTS):
        which = ("synthetic", "example")[i % 2]
        points.append((which, rng.randint(1, n_full[which] - 1), ("before", "after")[(i // 2) % 2]))
    return points


def _release_dead_lock(
    zygote: Zygote, url: str, root: Path, env: dict[str, str], logs: Path, pid: int, *, app: Any, cli: bool
) -> None:
    """Check the lock names the dead run, known to be gone, and clear it: through the CLI (status, then a
    release that needs no --force, the holder being gone from this machine) the first times, then directly (the
    same library calls, without two more processes)."""
    if not cli:
        stack = load_project(root).project.stack

        async def clear() -> None:
            async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
                info = await read_lock(client, stack)
                assert info is not None and info.holder.endswith(f":{pid}") and info.holder_gone(), info
                await force_release(client, stack)

        asyncio.run(clear())
        return
    status = zygote.run(["lock", "status", "--instance", url], cwd=root, env=env, logs=logs)
    assert status.status == 2 and f":{pid}" in status.out and "is gone" in status.out, status
    released = zygote.run(["lock", "release", "--instance", url], cwd=root, env=env, logs=logs)
    assert released.status == 0 and "released" in released.out, released


def test_sigkill_at_seeded_points_then_rerun_converges(
    served: tuple[KillSwitch, str], zygote: Zygote, tmp_path: Path
) -> None:
    switch, url = served
    app = switch.app
    env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
    apply = ["apply", "--auto-approve", "--instance", url]

    # A reference run of each stack, uninterrupted, in a fresh interpreter: how many requests a full apply makes.
    n_full = {}
    for which in ("synthetic", "example"):
        app.state.backend.reset(seed=True)
        root, _stack_name = _stack(tmp_path / f"ref-{which}", which)
        switch.arm(None, "before")
        # One in a fresh interpreter exactly as a user runs it; the zygote's forks run the same main().
        done = (
            fresh(apply, cwd=root, env=env)
            if which == "example"
            else zygote.run(apply, cwd=root, env=env, logs=tmp_path / "ref")
        )
        assert done.status == 0, done.out + done.err
        n_full[which] = switch.count
    assert min(n_full.values()) > 10, n_full

    kills = 0
    took_over = 0
    locked_after_kill = 0
    for i, (which, at, mode) in enumerate(_plan_points(n_full)):
        app.state.backend.reset(seed=True)
        root, stack = _stack(tmp_path / f"p{i:03d}", which)
        seeded = asyncio.run(_check(app, root, stack, None))
        logs = tmp_path / f"p{i:03d}-logs"

        switch.arm(at, mode)
        pid = zygote.start(apply, cwd=root, env=env, logs=logs)
        switch.target(pid)
        killed = zygote.wait(pid)
        assert killed.status == -signal.SIGKILL, (i, which, at, mode, killed)
        kills += 1
        switch.arm(None, "before")

        # At once, on the same machine, without 'lock release': a lock the dead run held is taken over.
        rerun = zygote.run(apply, cwd=root, env=env, logs=logs)
        assert rerun.status == 0, (i, which, at, mode, rerun.out[-2000:], rerun.err[-2000:])
        assert "Traceback" not in rerun.out + rerun.err
        if "took over the lock" in rerun.err:
            assert f":{pid}" in rerun.err and "no longer running" in rerun.err, rerun.err
            took_over += 1
        # Killed after its last write but before giving the lock back: nothing left to apply, so the re-run
        # took no lock; the dead run's lock is still there until it expires or is released.
        if "No changes" in rerun.out and asyncio.run(_lock_holder(app, stack)) is not None:
            _release_dead_lock(zygote, url, root, env, logs, pid, app=app, cli=locked_after_kill < 3)
            locked_after_kill += 1
        asyncio.run(_check(app, root, stack, seeded))
        count("kills_survived")
    count("kills_left_lock", took_over + locked_after_kill)
    count("dead_locks_taken_over", took_over)
    assert kills == KILL_POINTS
    assert took_over > 0  # some kills landed while the lock was held, and the re-run took it over


class RefuseInventoryUpdates:
    """ASGI wrapper: updates of the stack's inventory head are refused (403), as if the run died right before
    its final inventory write. The pending inventory is written first, by creating the head; the lock's own
    record is left alone."""

    def __init__(self, app: Any, stack: str) -> None:
        self.app = app
        self.state = app.state
        self.lock_path = f"/sys_properties/{lock_sys_id(stack)}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] == "PATCH"
            and "/sys_properties/" in path
            and not path.endswith(self.lock_path)
        ):
            await refuse(send)
            return
        await self.app(scope, receive, send)


def test_a_rerun_journals_what_a_dead_run_finished_without_journaling(tmp_path: Path) -> None:
    """Regression: records a killed run wrote but never journaled were confirmed by the re-run silently, so no
    journal accounted for them."""
    from mtls_config.engine import apply_planned, make_planned
    from mtls_config.errors import MtlsConfigError

    root, stack = _stack(tmp_path, "synthetic")
    specs = load_specs([root / "specs"], root=root)
    app = create_app(EmulatorConfig())

    async def main() -> None:
        dying = httpx.ASGITransport(app=RefuseInventoryUpdates(app, stack))  # type: ignore[arg-type]
        async with InstanceClient(local_settings(), transport=dying) as client:
            planned = await make_planned(client, specs, instance_name="t", stack=stack)
            with pytest.raises(MtlsConfigError) as caught:
                await apply_planned(client, planned, journal_path=tmp_path / "lost.jsonl")
            assert "sys_properties" in str(caught.value), caught.value
        (tmp_path / "lost.jsonl").unlink()  # the dead run's journal lines never reached the disk
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            info = await read_lock(client, stack)
            assert info is None  # the failed run gave its lock back
            planned = await make_planned(client, specs, instance_name="t", stack=stack)
            await apply_planned(client, planned, journal_path=tmp_path / "journal" / "rerun.jsonl")
            await assert_converged(client, specs, stack, journal_dirs=[tmp_path / "journal"])

    asyncio.run(main())


LOCAL_KILLS = 20 if FULL else 6


async def _check_local(root: Path, stack: str, pid: int) -> None:
    async with open_local(root) as client:
        project_file = load_project(root)
        specs = load_specs(project_file.spec_paths(), root=project_file.root)
        info = await read_lock(client, stack)
        if info is not None:  # killed after its last write, before giving the lock back
            assert info.holder.endswith(f":{pid}") and info.holder_gone(), info
            await force_release(client, stack)
        await assert_converged(client, specs, stack, journal_dirs=[root / ".mtls-config" / "journal"])


def test_sigkill_of_an_apply_to_the_embedded_local_instance(zygote: Zygote, tmp_path: Path) -> None:
    """The default target is the local instance stored on disk (SQLite, in the CLI's own process): a kill there
    also interrupts the instance mid-write. Kills are timed (seeded delays), as there is no server to count on."""
    import time

    rng = random.Random(SEED + 1)
    env = base_env()
    apply = ["apply", "--auto-approve"]
    durations = []
    for n in range(3):  # how long a whole apply takes here (the first one pays for warm-up)
        reference = _stack(tmp_path / f"ref{n}", "example")[0]
        started = time.monotonic()
        done = zygote.run(apply, cwd=reference, env=env, logs=tmp_path / "ref-logs")
        assert done.status == 0, done.err
        durations.append(time.monotonic() - started)
    full = min(durations)
    killed_mid_run = 0
    for i in range(LOCAL_KILLS):
        root, stack = _stack(tmp_path / f"l{i:02d}", "example")
        logs = tmp_path / f"l{i:02d}-logs"
        pid = zygote.start(apply, cwd=root, env=env, logs=logs)
        time.sleep(rng.uniform(0.05, 0.95) * full)  # the kill point is a moment, not a request
        Zygote.kill(pid)
        result = zygote.wait(pid)
        killed_mid_run += result.status == -signal.SIGKILL
        rerun = zygote.run(apply, cwd=root, env=env, logs=logs)  # at once, no 'lock release'
        assert rerun.status == 0 and "Traceback" not in rerun.out + rerun.err, (i, rerun)

        asyncio.run(_check_local(root, stack, pid))
        count("kills_survived", result.status == -signal.SIGKILL)
        count("local_instance_kills", result.status == -signal.SIGKILL)
    assert killed_mid_run >= LOCAL_KILLS // 2, "most kills came after the run had finished: widen the window"


def test_a_state_file_whose_seeding_was_interrupted_is_seeded_when_opened_again(tmp_path: Path) -> None:
    """Regression: a process killed while seeding a new local instance left a state file without the seed
    messages, and since the file existed it was never seeded again (every later apply failed on bindings)."""
    import sqlite3

    from mtls_config.emulator.models import Backend

    for stage in ("file only", "seed pending"):
        db = tmp_path / f"{stage.replace(' ', '-')}.db"
        if stage == "file only":
            db.touch()  # killed right after creating the file
        else:  # killed while seeding: the marker says so
            Backend(EmulatorConfig(db_path=db, seed_data=True)).close()
            with sqlite3.connect(db) as raw:
                raw.execute("DELETE FROM records WHERE tbl LIKE 'sys_soap%'")
                raw.execute("UPDATE meta SET value='pending' WHERE key='seed'")
            raw.close()
        backend = Backend(EmulatorConfig(db_path=db, seed_data=True))
        try:
            assert {r["name"] for r in backend.records("sys_soap_message")} >= {"Globex Orders"}, stage
        finally:
            backend.close()
    # A file made on purpose without seed data stays without it (emulator reset --no-seed, seed_data=False).
    db = tmp_path / "unseeded.db"
    Backend(EmulatorConfig(db_path=db, seed_data=False)).close()
    backend = Backend(EmulatorConfig(db_path=db, seed_data=True))
    try:
        assert backend.records("sys_soap_message") == []
    finally:
        backend.close()
