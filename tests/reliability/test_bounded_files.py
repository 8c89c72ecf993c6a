"""Every file the tool reads is a regular file read with a cap: a device, FIFO, socket or folder where a file is
expected is refused by name (a FIFO nobody writes to must not hang the run), and a file larger than its kind
allows is refused before it is read (a 1 GB keystore costs no memory). No MemoryError, no hang, no traceback.

One data file per case in ``cases/files/``: what to make where (``make``), how to point the example stack's
specs at it (``edit``), the command, and the lines its output must hold (validate lists lint findings on stdout,
every other error is on stderr). In them ``@PATH@`` is the made path as the
spec or the command names it and ``@ABS@`` its absolute path. Each command runs in-process in a worker thread: one
still running after ``HANG_SECONDS`` is a hang (the test then unblocks it by opening the FIFO, and fails).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mtls_config.cli.main import main
from mtls_config.errors import UnreadableFile
from mtls_config.files import KEYSTORE, KINDS, read_file
from tests.reliability.harness import count, example_repo

CASES = sorted((Path(__file__).parent / "cases" / "files").glob("*.json"))
HANG_SECONDS = 30


@contextmanager
def _made(repo: Path, make: dict[str, Any]) -> Iterator[Path]:
    kind = make["kind"]
    if kind == "device":
        yield Path(make["path"])
        return
    path = repo / make["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    listener: socket.socket | None = None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cwd = Path.cwd()
        os.chdir(path.parent)  # a relative bind: socket paths are limited to about 100 bytes
        try:
            listener.bind(path.name)
        finally:
            os.chdir(cwd)
    elif kind == "folder":
        path.mkdir()
    elif kind == "sparse":
        with path.open("wb") as out:
            out.truncate(make["size"])  # no disk used: the size is what a reader would face
    else:
        raise AssertionError(kind)
    try:
        yield path
    finally:
        if listener is not None:
            listener.close()


def _unblock(path: Path) -> None:
    """Open a FIFO for writing and close it: a reader stuck in open() or read() gets end-of-file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def _run(argv: list[str], made: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["code"] = main(argv)
        except BaseException as exc:
            outcome["raised"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(HANG_SECONDS)
    hung = worker.is_alive()
    if hung:
        _unblock(made)
        worker.join(10)
    out, err = capsys.readouterr()
    assert not hung, f"{argv} hung on {made}: {err}"
    assert "raised" not in outcome, f"{argv} raised {outcome.get('raised')!r}"
    return outcome["code"], out, err


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_file_that_is_not_a_regular_file_or_too_large_is_refused_clearly(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    repo = example_repo(tmp_path, monkeypatch)
    with _made(repo, case["make"]) as made:
        named = case["make"].get("named", case["make"]["path"])
        for file, old, new in case.get("edit", []):
            spec = repo / file
            text = spec.read_text(encoding="utf-8")
            assert old in text, (file, old)
            spec.write_text(text.replace(old, new.replace("@PATH@", named)), encoding="utf-8")
        argv = [a.replace("@PATH@", named) for a in case["args"]]
        limit = case.get("max_memory_mib")
        if limit is not None:
            tracemalloc.start()
        try:
            code, out, err = _run(argv, made, capsys)
            peak = tracemalloc.get_traced_memory()[1] if limit is not None else 0
        finally:
            if limit is not None:
                tracemalloc.stop()
    assert "Traceback" not in out + err and "MemoryError" not in out + err
    assert code == case["exit"], (code, out, err)
    for line in case["output"]:
        expected = line.replace("@PATH@", named).replace("@ABS@", str(made if made.is_absolute() else repo / made))
        assert expected in out + err, f"missing from the output:\n{expected}\n--- it was:\n{out}{err}"
    if limit is not None:
        assert peak < limit * 1024 * 1024, f"the run held {peak / 2**20:.1f} MiB at its peak"
    count("inputs_tried")


def test_the_reader_reads_no_more_than_its_cap(tmp_path: Path) -> None:
    """A file past its kind's cap is refused from its size alone, or, if it grows after that look, after cap + 1
    bytes: /dev/zero is refused by type, a sparse 1 GB keystore without a byte of it read."""
    huge = tmp_path / "huge.jks"
    with huge.open("wb") as out:
        out.truncate(1 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableFile, match=r"is 1073741824 bytes; a keystore file may be at most"):
            read_file(huge, KEYSTORE)
        assert tracemalloc.get_traced_memory()[1] < 1024 * 1024
    finally:
        tracemalloc.stop()
    for kind in KINDS:
        with pytest.raises(UnreadableFile, match="is a character device, not a regular file"):
            read_file("/dev/zero", kind)
        exact = tmp_path / f"{kind.label}-at-cap"
        with exact.open("wb") as out:
            out.truncate(kind.cap)
        assert len(read_file(exact, kind)) == kind.cap  # the cap itself is allowed
