"""Run the ``mtls-config`` CLI as separate, killable processes: a fresh interpreter (``fresh``) or a fork of
the pre-imported zygote (``Zygote.start``), with stdout/stderr captured to files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from mtls_config.cli.main import run; run()"]


@dataclass(frozen=True)
class Finished:
    status: int  # exit code, or -signal when killed
    out: str
    err: str


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN_", "MTLS_"))}
    env.update({"NO_COLOR": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200"})
    env.update(extra)
    return env


def fresh(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> Finished:
    """The CLI in a new interpreter, as a user runs it."""
    done = subprocess.run([*CLI, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Finished(done.returncode, done.stdout, done.stderr)


class Zygote:
    """``with Zygote() as z: pid = z.start(argv, cwd, env, tmp); ...; z.wait(pid)``"""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.zygote"],
            cwd=REPO,
            env=base_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.outputs: dict[int, tuple[Path, Path]] = {}

    def _ask(self, request: dict[str, object]) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the CLI zygote died")
        answer: dict[str, int] = json.loads(line)
        return answer

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], logs: Path) -> int:
        logs.mkdir(parents=True, exist_ok=True)
        n = len(self.outputs)
        out, err = logs / f"{n}.out", logs / f"{n}.err"
        pid = self._ask({"op": "run", "argv": argv, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err)})[
            "pid"
        ]
        self.outputs[pid] = (out, err)
        return pid

    def wait(self, pid: int) -> Finished:
        status = self._ask({"op": "wait", "pid": pid})["status"]
        out, err = self.outputs[pid]
        return Finished(status, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"))

    def run(self, argv: list[str], *, cwd: Path, env: dict[str, str], logs: Path) -> Finished:
        return self.wait(self.start(argv, cwd=cwd, env=env, logs=logs))

    @staticmethod
    def kill(pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
