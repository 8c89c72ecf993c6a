"""A command's result never goes through ``repr()``: Python 3.11's ``asyncio.run`` formats its main task (and
so the task's result) twice on the way out, which for a plan was the whole tree of desired and live state,
diff and plan (14% of a plan's CPU, 23% of a drift's, at 5000 resources). The CLI runs its coroutines through
``concurrency.run_coroutine``, whose main task holds no result."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.concurrency import run_coroutine
from mtls_config.engine import Planned


class Counted:
    reprs = 0

    def __repr__(self) -> str:
        Counted.reprs += 1
        return "Counted()"


def test_run_coroutine_returns_the_result_without_formatting_it() -> None:
    Counted.reprs = 0

    async def work() -> Counted:
        return Counted()

    assert isinstance(run_coroutine(work()), Counted)
    assert Counted.reprs == 0


def test_run_coroutine_raises_what_the_coroutine_raises() -> None:
    async def work() -> int:
        raise LookupError("no such record")

    with pytest.raises(LookupError, match="no such record"):
        run_coroutine(work())


@pytest.mark.parametrize("argv", [["plan"], ["drift"], ["apply", "--auto-approve"]], ids=" ".join)
def test_commands_never_format_the_planned_tree(
    argv: list[str], stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    formatted: list[int] = []

    def counting_repr(self: Planned) -> str:
        formatted.append(1)
        return "Planned(...)"

    monkeypatch.setattr(Planned, "__repr__", counting_repr)
    assert main(argv) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
    assert formatted == []


def test_every_coroutine_the_package_runs_goes_through_run_coroutine() -> None:
    package = Path(__file__).resolve().parents[2] / "mtls_config"
    callers = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "concurrency.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "asyncio.run(" in line
    ]
    assert callers == [], "run coroutines with mtls_config.concurrency.run_coroutine"
