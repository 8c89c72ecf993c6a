"""Ctrl-C and SIGTERM: ``mtls-config apply`` and ``import`` run as their own processes against the emulator served
on a real socket (with latency, as an instance has), and a signal reaches them at a request each case names:
before the first write, while taking the lock, while the inventory is written, mid-phase, and a second signal
during the clean-up. The command must stop cleanly: exit 128 + the signal's number, say "interrupted", what was
applied and what was not (per resource), the journal's path, that the lock was given back, that a re-run
converges; no traceback. Then the lock must be free (``lock status``), and a re-run must converge with no
duplicates and plan "No changes".

One data file per case in ``cases/interrupt/``: the command, the signals (each at the n-th request matching a
method, a path, a text in the query and a text in the body, decoded batch items included), the exit code, lines
the output must hold, and what the lock may be afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.inventory import PROPERTY_PREFIX
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import local_settings
from tests.engine.stacks import write_stack
from tests.reliability.cli_runner import Finished, Zygote, base_env
from tests.reliability.harness import assert_converged, count, project, read_body, replaying, request_text

CASES = sorted((Path(__file__).parent / "cases" / "interrupt").glob("*.json"))
KEYSTORE_PASSWORD = "demo-keystore-password"  # the example keystore's


class SignalAt:
    """ASGI wrapper: at each armed request, send the client process its signal, then let the instance carry the
    request out as usual (the write lands while the client is being stopped: the worst moment)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state
        self.lock = threading.Lock()
        self.arm([])

    def arm(self, signals: list[dict[str, Any]]) -> None:
        with self.lock:
            self.pending = [dict(s, seen=0) for s in signals]
            self.sent: list[str] = []
            self.pid: int | None = None
            self.pid_known = threading.Event()

    def target(self, pid: int) -> None:
        self.pid = pid
        self.pid_known.set()

    def _matches(self, at: dict[str, Any], scope: Any, body: str) -> bool:
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
        return (
            scope["method"] == at.get("method", scope["method"])
            and re.fullmatch(at.get("path", ".*"), scope["path"]) is not None
            and at.get("query", "") in query
            and at.get("body", "") in body
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator") or not self.pending:
            await self.app(scope, receive, send)
            return
        raw = await read_body(receive)
        body = request_text(raw)
        fire: str | None = None
        with self.lock:
            if self.pending:
                armed = self.pending[0]
                if self._matches(armed["at"], scope, body):
                    armed["seen"] += 1
                    if armed["seen"] == armed["at"].get("nth", 1):
                        self.pending.pop(0)
                        fire = armed["signal"]
                        self.sent.append(fire)
        if fire is not None:
            await asyncio.to_thread(self.pid_known.wait, 30)
            assert self.pid is not None
            os.kill(self.pid, getattr(signal, fire))
        await self.app(scope, replaying(raw), send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SignalAt, str]]:
    switch = SignalAt(create_app(EmulatorConfig(latency_ms=40)))
    with ThreadedServer(switch) as server:  # type: ignore[arg-type]
        yield switch, server.url


async def _hand_made(client: InstanceClient, jks: bytes) -> None:
    """A set-up made by hand, for 'import' to adopt: a keystore with its file and a profile using it."""
    ks = await client.create(
        "sys_certificate",
        {"name": "Legacy client", "type": "key_store", "active": "true", "key_store_password": KEYSTORE_PASSWORD},
        input_display_value=True,
    )
    await client.upload_attachment("sys_certificate", ks["sys_id"], "legacy.jks", jks)
    await client.create(
        "sys_protocol_profile", {"protocol": "legacy", "default_port": "8443", "keystore": ks["sys_id"]}
    )


def _lock_state(zygote: Zygote, url: str, root: Path, env: dict[str, str], logs: Path, pid: int) -> str:
    status = zygote.run(["lock", "status", "--instance", url], cwd=root, env=env, logs=logs)
    if status.status == 0 and "is not locked" in status.out:
        return "free"
    assert status.status == 2 and f":{pid}" in status.out and "is gone" in status.out, status
    return "held by the stopped run"


def _check_output(case: dict[str, Any], done: Finished) -> None:
    text = done.out + done.err
    assert "Traceback" not in text, text
    assert done.status == case["exit"], (done.status, text[-3000:])
    for line in case["output"]:
        assert line in done.err, f"missing from stderr:\n{line}\n--- it was:\n{done.err}"
    for pattern in case.get("output_patterns", []):
        assert re.search(pattern, done.err, re.MULTILINE), f"no line matches {pattern!r}:\n{done.err}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_signal_stops_the_command_cleanly_and_a_rerun_converges(
    path: Path, served: tuple[SignalAt, str], zygote: Zygote, tmp_path: Path
) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    switch, url = served
    switch.state.backend.reset(seed=True)
    env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
    logs = tmp_path / "logs"
    root = tmp_path / "stack"
    if case["command"] in ("plan", "drift"):  # read-only: stopped cleanly, nothing to converge
        write_stack(root / "specs", 12)
        project(root, "interrupted", "specs")
        argv = [case["command"], *case.get("args", []), "--instance", url]
    elif case["command"] == "apply":
        # "resources": a stack whose inventory needs part records (a small one's head holds it, packed)
        write_stack(root / "specs", case.get("resources", 12))
        project(root, "interrupted", "specs")
        argv = ["apply", "--auto-approve", *case.get("args", []), "--instance", url]
    else:
        root.mkdir()
        project(root, "adopter", "specs")
        jks = Path(__file__).resolve().parents[2] / "specs/examples/two-partners/keystores/globex-client.jks"

        async def setup() -> None:
            async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=switch.app)) as c:
                await _hand_made(c, jks.read_bytes())

        asyncio.run(setup())
        argv = ["import", "--out", "specs", "--instance", url]

    switch.arm(case["signals"])
    pid = zygote.start(argv, cwd=root, env=env, logs=logs)
    switch.target(pid)
    stopped = zygote.wait(pid)
    assert switch.sent == [s["signal"] for s in case["signals"]], f"not every signal was sent: {switch.sent}"
    switch.arm([])
    _check_output(case, stopped)

    lock = _lock_state(zygote, url, root, env, logs, pid)
    assert lock in case["lock_after"], (lock, stopped.err)
    if case["command"] in ("plan", "drift"):
        assert not (root / "report.xml").exists(), "an interrupted drift wrote a report"
        count("interrupted_runs")
        return

    rerun_argv = argv if case["command"] == "apply" else [*argv, "--force"]
    rerun = zygote.run(rerun_argv, cwd=root, env=env, logs=logs)
    assert rerun.status == 0 and "Traceback" not in rerun.out + rerun.err, rerun
    for line in case.get("rerun_output", []):
        assert line in rerun.out, f"missing from the re-run's output:\n{line}\n--- it was:\n{rerun.out}"
    if lock != "free":
        assert "took over the lock" in rerun.err and f":{pid}" in rerun.err, rerun.err

    plan_env = dict(env, MTLS_KEYSTORE_PASSWORD_LEGACY_CLIENT=KEYSTORE_PASSWORD)
    planned = zygote.run(["plan", "--instance", url], cwd=root, env=plan_env, logs=logs)
    assert planned.status == 0 and "No changes" in planned.out, planned
    if case["command"] == "apply":
        specs = load_specs([root / "specs"], root=root)

        async def check() -> None:
            async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=switch.app)) as c:
                await assert_converged(c, specs, "interrupted", journal_dirs=[root / ".mtls-config" / "journal"])

        asyncio.run(check())
    else:

        async def inventories() -> list[str]:
            async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=switch.app)) as c:
                rows = await c.list("sys_properties", query=f"nameSTARTSWITH{PROPERTY_PREFIX}", fields=["name"])
                return sorted(r["name"] for r in rows)

        assert asyncio.run(inventories()) == [PROPERTY_PREFIX + "adopter"]
    count("interrupted_runs")


def _fresh_stack(switch: SignalAt, tmp_path: Path, stack: str, n: int) -> Path:
    """A fresh instance (nothing armed) and a project of ``n`` resources to apply to it."""
    switch.state.backend.reset(seed=True)
    switch.arm([])
    root = tmp_path / "stack"
    write_stack(root / "specs", n)
    project(root, stack, "specs")
    return root


def _at_the_prompt(url: str, root: Path, then: Any) -> tuple[int, str]:
    """``apply`` on a terminal (a pty) until its confirmation prompt shows, then ``then(process, terminal)``; read
    until the process ends (a child writing into a terminal nobody reads blocks once the buffer is full). Returns
    the exit code and all the terminal showed."""
    import pty
    import select
    import subprocess
    import time

    from tests.reliability.cli_runner import CLI

    main_fd, child_fd = pty.openpty()
    env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
    proc = subprocess.Popen(
        [*CLI, "apply", "--instance", url], cwd=root, env=env, stdin=child_fd, stdout=child_fd, stderr=child_fd
    )
    os.close(child_fd)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"Only 'yes' is accepted" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 1)
            if ready:
                seen += os.read(main_fd, 65536)
        assert b"Only 'yes' is accepted" in seen, seen.decode(errors="replace")
        then(proc, main_fd)
        deadline = time.monotonic() + 60
        code = None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the other side closed
                    chunk = b""
                seen += chunk
            if not chunk and (code := proc.poll()) is not None:
                break
        assert code is not None, "still running 60 s after the prompt's answer:\n" + seen.decode(errors="replace")
        # What the process wrote just before it ended may reach this side of the terminal after its end was seen
        # (the kernel passes it on asynchronously): read on until the terminal says its other side is closed.
        while select.select([main_fd], [], [], 5)[0]:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: everything written was read, and the other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(main_fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, seen.decode(errors="replace")


def test_ctrl_c_at_the_confirmation_prompt(served: tuple[SignalAt, str], tmp_path: Path) -> None:
    """apply on a terminal waits for 'yes': Ctrl-C there ends the wait at once (the prompt holds the event loop,
    so the handler raises into it), nothing is written, and no lock is left."""
    switch, url = served
    root = _fresh_stack(switch, tmp_path, "prompted", 4)
    code, text = _at_the_prompt(url, root, lambda proc, terminal: proc.send_signal(signal.SIGINT))
    assert code == 130, text
    assert "interrupted (SIGINT): stopped at the confirmation prompt, before anything was written" in text, text
    assert "Nothing was applied." in text and "Traceback" not in text, text

    async def untouched() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=switch.app)) as c:
            assert await c.list("sys_protocol_profile", query="protocolSTARTSWITHp", fields=["sys_id"]) == []
            assert await c.list("sys_properties", query="nameSTARTSWITHmtls_config.", fields=["name"]) == []

    asyncio.run(untouched())


@pytest.mark.parametrize(("answer", "expected"), [("yes", 0), ("no", 1), ("y", 1)])
def test_the_answer_typed_at_the_prompt_is_the_one_apply_acts_on(
    served: tuple[SignalAt, str], tmp_path: Path, answer: str, expected: int
) -> None:
    """The line typed at the prompt is the answer apply acts on: 'yes' applies, anything else cancels and writes
    nothing."""
    switch, url = served
    root = _fresh_stack(switch, tmp_path, "answered", 2)
    code, text = _at_the_prompt(url, root, lambda proc, terminal: os.write(terminal, answer.encode() + b"\n"))
    assert code == expected, text
    assert "Traceback" not in text, text

    async def certificates() -> list[dict[str, Any]]:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=switch.app)) as c:
            return await c.list("sys_certificate", query="nameSTARTSWITHtc-", fields=["name"])

    if answer == "yes":
        assert "Apply finished: 2 applied, 0 failed" in text, text
        assert sorted(r["name"] for r in asyncio.run(certificates())) == ["tc-00000", "tc-00001"]
    else:
        assert "Apply cancelled; nothing was changed." in text, text
        assert asyncio.run(certificates()) == []


def test_the_commands_worker_threads_leave_signals_to_the_main_thread() -> None:
    """A command's loop runs its thread work (the specs read, the desired state built) in threads that block SIGINT
    and SIGTERM: the kernel gives a process's signal to any thread not blocking it, and one a worker took would wake
    nothing of the main thread's (a confirmation prompt then waits on, unstopped). The main thread keeps them."""
    from mtls_config.cli.interrupt import run_command

    async def masks() -> tuple[set[int], set[int]]:
        worker = await asyncio.to_thread(signal.pthread_sigmask, signal.SIG_BLOCK, [])
        main = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        return set(worker), set(main)

    worker, main = run_command(masks())
    assert {signal.SIGINT, signal.SIGTERM} <= worker
    assert not {signal.SIGINT, signal.SIGTERM} & main
