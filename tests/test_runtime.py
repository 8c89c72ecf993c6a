"""The console script tunes the cycle collector and the threads' switch interval for its own process; importing the
library never does."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mtls_config.runtime import GC_THRESHOLDS, SWITCH_INTERVAL

from .conftest import EXAMPLE_STACK

SHOW_AT_EXIT = "import atexit, gc, sys; atexit.register(lambda: print((gc.get_threshold(), sys.getswitchinterval())));"
TUNED = str((GC_THRESHOLDS, SWITCH_INTERVAL))


def _printed(code: str) -> list[str]:
    """What ``code`` prints, then the collector's thresholds and the switch interval as the process ends."""
    done = subprocess.run([sys.executable, "-c", SHOW_AT_EXIT + code], capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()


def test_the_command_runs_with_the_tuned_collector() -> None:
    code = "from mtls_config.cli.main import run; sys.argv = ['mtls-config', '--version']; run()"
    assert _printed(code)[-1] == TUNED


def test_importing_the_library_leaves_the_host_programs_collector_alone() -> None:
    code = (
        "import gc; before = (gc.get_threshold(), sys.getswitchinterval());"
        "import mtls_config.engine, mtls_config.cli.main; print(before)"
    )
    before, after = _printed(code)[-2:]
    assert before == after != TUNED


def test_a_process_of_ours_loads_httpx_without_its_own_cli() -> None:
    # httpx imports its command-line client (rich's syntax highlighting, pygments' lexers) whenever click, rich and
    # pygments are installed; our process never runs it. (The console script calls tune_process: the first test.)
    code = (
        "from mtls_config.runtime import tune_process; tune_process();"
        "import mtls_config.client, httpx;"
        "print(sorted(m for m, v in sys.modules.items() if v is not None and m.startswith(('httpx._main', 'pygments', 'rich'))));"
        "print(callable(httpx.main), httpx.AsyncClient.__name__)"
    )
    loaded, works = _printed(code)[-3:-1]
    assert loaded == "[]"
    assert works == "True AsyncClient"


def test_importing_the_library_leaves_httpxs_cli_to_the_host_program() -> None:
    code = "import mtls_config.engine, mtls_config.client, mtls_config.cli.main; print('httpx._main' in sys.modules)"
    assert _printed(code)[-2] == "True"


def test_a_command_runs_without_the_cycle_collector_and_apply_writes_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan's reads and comparisons run with the cycle collector off (a tenth of a large plan's CPU, for a few
    thousand unreachable objects), apply's writes with it on (their answers leave cycles holding their bodies), and
    the collector is as it was after each command. Seen from inside: the state when each request goes out."""
    from mtls_config.cli.main import main
    from mtls_config.client.instance import InstanceClient
    from tests.engine.conftest import as_user, serve
    from tests.engine.stacks import write_stack

    seen: list[tuple[str, bool]] = []
    exchange = InstanceClient._exchange

    async def watched(self: InstanceClient, *args: Any, **kwargs: Any) -> Any:
        request = args[0] if args else kwargs.get("request")
        seen.append((getattr(request, "method", "?"), gc.isenabled()))
        return await exchange(self, *args, **kwargs)

    monkeypatch.setattr(InstanceClient, "_exchange", watched)
    write_stack(tmp_path, 8)
    (tmp_path / "mtls-config.yaml").write_text("stack: collector\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    as_user(monkeypatch, "admin")
    assert gc.isenabled()
    with serve() as server:
        monkeypatch.setenv("SN_INSTANCE", server.url)
        assert main(["plan"]) == 2
        assert seen and not any(enabled for _, enabled in seen), seen
        assert gc.isenabled()
        seen.clear()
        assert main(["apply", "--auto-approve"]) == 0
    reads = [enabled for method, enabled in seen if method == "GET"]
    writes = [enabled for method, enabled in seen if method in ("POST", "PATCH", "DELETE")]
    assert reads[0] is False  # the plan's first read
    assert writes and all(writes), seen  # the lock, the inventory, the batches
    assert gc.isenabled()
    capsys.readouterr()


def test_what_a_block_without_the_collector_kept_is_aged_unscanned_and_its_garbage_still_collectable() -> None:
    """The first pass after a plan would scan everything the plan made and kept: it goes to the oldest generation
    unscanned instead, and the cycles the block dropped are still found by a full pass."""
    from mtls_config.runtime import cycle_collector

    gc.collect()
    assert gc.isenabled()
    with cycle_collector(False):
        kept = [[i] for i in range(5000)]
        dropped: list[Any] = []
        dropped.append(dropped)  # a cycle nothing else holds
        del dropped
        assert gc.get_count()[0] >= 5000
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(kept) in oldest and id(kept[-1]) in oldest
    assert gc.get_freeze_count() == 0
    assert gc.collect() >= 1


def test_a_host_programs_frozen_objects_stay_frozen() -> None:
    from mtls_config.runtime import cycle_collector

    marker: list[Any] = []
    gc.freeze()
    try:
        with cycle_collector(False):
            made = [[i] for i in range(100)]
        assert gc.get_freeze_count() > 0 and made
        assert not any(o is marker for o in gc.get_objects())  # still frozen: in no generation the collector scans
    finally:
        gc.unfreeze()
    assert any(o is marker for o in gc.get_objects())


def test_the_console_script_ends_without_scanning_what_it_made() -> None:
    code = (
        "import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0));"
        "from mtls_config.cli.main import run; sys.argv = ['mtls-config', '--version']; run()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "frozen True"
    assert done.stdout.strip().splitlines()[0].startswith("mtls-config")


def test_a_process_of_ours_reads_a_jceks_keystore_through_pycryptodomes_ctypes_binding(tmp_path: Path) -> None:
    """PyCryptodome parses C declarations with pycparser as it loads through cffi (20 ms of a command reading a JKS):
    a process of ours marks cffi absent, and PyCryptodome's ctypes binding decrypts a JCEKS key (Triple DES)
    made by keytool."""
    from tests.keystore.conftest import STORE_PASSWORD, keytool, store_args

    keytool("-genkeypair", *store_args("store.jceks"), "-storetype", "JCEKS", "-keypass", STORE_PASSWORD,
            "-alias", "client", "-keyalg", "EC", "-dname", "CN=ctypes.test", "-validity", "30", cwd=tmp_path)  # fmt: skip
    code = (
        "from mtls_config.runtime import tune_process; tune_process();"
        "from pathlib import Path; from mtls_config.secrets import SecretValue;"
        "from mtls_config.keystore.store import load_key_entry;"
        f"key = load_key_entry(Path({str(tmp_path / 'store.jceks')!r}).read_bytes(), SecretValue({STORE_PASSWORD!r}.encode(), 'test'));"
        "import Cryptodome.Util._raw_api as raw;"
        "print(key.alias, key.chain[0].subject.rfc4514_string(), raw.backend);"
        "print(sorted(m for m, v in sys.modules.items() if v is not None and m.startswith(('cffi', 'pycparser'))))"
    )
    done = subprocess.run([sys.executable, "-c", "import sys;" + code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    found, loaded = done.stdout.strip().splitlines()[-2:]
    assert found == "client CN=ctypes.test ctypes"
    assert loaded == "[]"


# Runs the console script (or, with --host, calls main() as a host program would) with an atexit handler that
# says so: a command that is done ends the console script's process without the interpreter's clean-up.
RUN_MARKED = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('the interpreter cleaned up'))\n"
    "sys.argv[0] = 'mtls-config'\n"
    "if sys.argv[1] == '--host':\n"
    "    from mtls_config.cli.main import main\n"
    "    print('main returned', main(sys.argv[2:]))\n"
    "else:\n"
    "    from mtls_config.cli.main import run\n"
    "    run()\n"
)


def _command(stack: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN_")}  # the embedded local instance
    env.update(COLUMNS="120", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-c", RUN_MARKED, *args], capture_output=True, text=True, check=False, cwd=stack, env=env
    )


def test_a_command_that_is_done_ends_the_console_scripts_process_with_all_it_said_and_wrote(tmp_path: Path) -> None:
    """plan, apply and drift end the process as soon as they are done (``runtime.end``): what they made is not freed
    object by object, nor the interpreter taken down. Their output, exit code, saved plan and the local instance's
    state are all there; a host program calling ``main`` gets the code back and its process goes on."""
    stack = tmp_path / "stack"
    shutil.copytree(EXAMPLE_STACK, stack)
    planned = _command(stack, "plan", "--out", "plan.json")
    assert planned.returncode == 2, planned.stderr
    assert "to create" in planned.stdout and "Saved the plan to plan.json" in planned.stdout.splitlines()[-1]
    assert "cleaned up" not in planned.stdout
    saved = json.loads((stack / "plan.json").read_text(encoding="utf-8"))
    assert saved["resource_changes"] and {c["action"] for c in saved["resource_changes"]} == {"create"}

    applied = _command(stack, "apply", "plan.json")
    assert applied.returncode == 0, applied.stderr
    assert "Apply finished" in applied.stdout and "cleaned up" not in applied.stdout

    again = _command(stack, "plan", "--format", "json")  # the local instance kept what apply wrote
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)["summary"]
    assert summary["no-op"] == len(saved["resource_changes"]) and sum(summary.values()) == summary["no-op"]
    assert "cleaned up" not in again.stdout

    host = _command(stack, "--host", "drift")
    assert host.returncode == 0, host.stderr
    assert host.stdout.splitlines()[-2:] == ["main returned 0", "the interpreter cleaned up"]


def test_a_command_that_fails_or_returns_ends_the_usual_way(tmp_path: Path) -> None:
    """Only a command that is done ends at once; an error, and a command that returns (validate), end as Python does."""
    stack = tmp_path / "stack"
    shutil.copytree(EXAMPLE_STACK, stack)
    validated = _command(stack, "validate")
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.splitlines()[-1] == "the interpreter cleaned up"
    (stack / "resources" / "broken.yaml").write_text("kind: KeyStore\nmetadata: {}\n", encoding="utf-8")
    failed = _command(stack, "plan")
    assert failed.returncode == 1
    assert "broken.yaml" in failed.stdout + failed.stderr
    assert failed.stdout.splitlines()[-1] == "the interpreter cleaned up"
