"""Each command imports only what it uses: `--version`, `--help` and `validate` run in a fresh process without
the engine, the HTTP client, pyjks or the emulator's web stack, and the root's listing of the lazily imported
commands is true to the commands themselves."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import typer.main

from mtls_config import __version__
from mtls_config.cli.helptext import command_tree
from mtls_config.cli.lazy import LazyCommands, first_paragraph
from mtls_config.cli.main import LAZY_COMMANDS, app, main

from .conftest import EXAMPLE_STACK

# Dumps the names of the imported modules (not those marked absent: None) to the file named by the first argument when the process exits
# (after the command's own exit), then runs the command line with the remaining arguments.
RUN_AND_DUMP = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(m for m, v in sys.modules.items() if v))))\n"
    "sys.argv[0] = 'mtls-config'\n"
    "from mtls_config.cli.main import run\n"
    "run()\n"
)

# What no command needs before it talks to an instance, handles a keystore file or serves the emulator.
INSTANCE_AND_ENGINE = [
    "httpx",
    "httpcore",
    "anyio",
    "deepdiff",
    "starlette",
    "uvicorn",
    "mtls_config.client",
    "mtls_config.engine",
    "mtls_config.observe",
    "mtls_config.diff",
    "mtls_config.plan",
    "mtls_config.apply",
    "mtls_config.emulator",
    "mtls_config.verify",
    "mtls_config.cli.reconcile",
    "mtls_config.cli.verify",
    "mtls_config.cli.lock",
    "mtls_config.cli.emulator",
    "mtls_config.cli.target",
    "mtls_config.cli.doctor",
    "mtls_config.doctor",
]
KEYSTORE_FILES = ["jks", "pyasn1", "Cryptodome", "mtls_config.keystore", "mtls_config.cli.keystore"]
# typer's help renderer (rich's markdown, pygments through rich's traceback): only help needs it
HELP_RENDERING = ["typer.rich_utils", "rich.markdown", "rich.traceback", "markdown_it", "pygments"]


def imported_by(argv: list[str], tmp_path: Path, cwd: Path | None = None) -> tuple[set[str], str]:
    """The modules a fresh ``mtls-config ARGV`` process imported, and what it printed."""
    dump = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_DUMP, str(dump), *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**env, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(dump.read_text())
    return set(modules), done.stdout


def loaded(modules: set[str], names: list[str]) -> list[str]:
    """The names (packages or modules) that were imported, a package counting when any module of it was."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_version_imports_neither_the_engine_nor_keystores_nor_the_help_renderer(tmp_path: Path) -> None:
    modules, out = imported_by(["--version"], tmp_path)
    assert out == f"mtls-config {__version__}\n"
    assert loaded(modules, [*INSTANCE_AND_ENGINE, *KEYSTORE_FILES, *HELP_RENDERING]) == []
    # nor the spec models: --version reads no spec
    assert loaded(modules, ["pydantic", "yaml", "cryptography", "mtls_config.spec"]) == []


def test_help_lists_every_command_without_importing_them(tmp_path: Path) -> None:
    modules, out = imported_by(["--help"], tmp_path)
    visible = [c.name for c in LAZY_COMMANDS if not c.hidden]
    assert len(visible) >= 9
    for name in ["validate", "schema", *visible]:
        assert f"│ {name} " in out, name
    assert loaded(modules, [*INSTANCE_AND_ENGINE, *KEYSTORE_FILES, "cryptography", "mtls_config.spec"]) == []


def test_validate_imports_what_checking_specs_and_keystores_needs_and_nothing_of_an_instance(tmp_path: Path) -> None:
    modules, out = imported_by(["validate", str(EXAMPLE_STACK)], tmp_path)
    assert out.startswith("valid: 8 resources in 2 files")
    assert loaded(modules, [*INSTANCE_AND_ENGINE, *HELP_RENDERING]) == []
    # what it does need: the example's keystores are JKS files, linted
    assert loaded(modules, ["pydantic", "yaml", "cryptography", "jks"]) == ["pydantic", "yaml", "cryptography", "jks"]


# PyCryptodome's DSA arithmetic: only a DSA signature to check needs it (pyjks brings PyCryptodome's ciphers alone)
DSA_ARITHMETIC = ["Cryptodome.PublicKey", "Cryptodome.Signature", "Cryptodome.Math"]


def test_validate_of_jks_keystores_leaves_the_dsa_arithmetic_unloaded(tmp_path: Path) -> None:
    modules, out = imported_by(["validate", str(EXAMPLE_STACK)], tmp_path)
    assert out.startswith("valid: 8 resources in 2 files")
    assert loaded(modules, ["jks", *DSA_ARITHMETIC]) == ["jks"]


def test_validate_of_pem_files_loads_neither_pyjks_nor_pycryptodome(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    pem = (EXAMPLE_STACK / "certs" / "acme-server-ca.pem").read_text()
    body = pem.strip().replace("\n", "\n    ")
    (specs / "certs.yaml").write_text(
        f"apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: acme-ca}}\nspec:\n  pem: |\n    {body}\n"
    )
    modules, out = imported_by(["validate", str(specs)], tmp_path, cwd=tmp_path)
    assert out.startswith("valid: 1 resource"), out
    assert loaded(modules, ["cryptography", "mtls_config.keystore"]) == ["cryptography", "mtls_config.keystore"]
    assert loaded(modules, ["jks", "pyasn1", "Cryptodome"]) == []


def test_a_command_imports_its_module_when_it_runs(tmp_path: Path) -> None:
    modules, out = imported_by(["lock", "--help"], tmp_path)
    assert "status" in out and "release" in out
    assert loaded(modules, ["mtls_config.cli.lock"]) == ["mtls_config.cli.lock"]
    assert loaded(modules, ["mtls_config.cli.reconcile", "mtls_config.cli.emulator", "starlette", "jks"]) == []


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["plan", "--no-such-option"], "--no-such-option"),  # a usage error, raised by click's parser
        (["validate", "no-such-folder"], "no-such-folder"),  # a command that fails (typer.Exit with 1)
        (["no-such-command"], "no-such-command"),
    ],
)
def test_errors_in_a_fresh_process_exit_1_without_a_traceback(argv: list[str], said: str, tmp_path: Path) -> None:
    # In a fresh process typer's help module is not loaded, unlike in a test process that rendered help before:
    # the error paths of main() must work without it.
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    done = subprocess.run(
        [sys.executable, "-c", "from mtls_config.cli.main import run; run()", *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert said in done.stderr


def test_the_listing_is_true_to_each_command() -> None:
    root = typer.main.get_command(app)
    commands = root.commands  # type: ignore[attr-defined]
    assert isinstance(commands, LazyCommands)
    for spec in LAZY_COMMANDS:
        command = commands[spec.name]  # imports its module and builds its commands
        assert first_paragraph(command.help) == spec.help, spec.name
        assert command.hidden == spec.hidden, spec.name
    # every command of the root is either built up front or listed
    assert list(commands) == ["validate", "schema", *(spec.name for spec in LAZY_COMMANDS)]


def test_help_from_the_listing_reads_the_same_as_from_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")

    def root_help(load_everything: bool) -> str:
        root = command_tree(app)
        if load_everything:
            for name in list(root.commands):  # type: ignore[attr-defined]
                root.commands[name]  # type: ignore[attr-defined]
        out = io.StringIO()
        with redirect_stdout(out):
            root.main(["--help"], prog_name="mtls-config", standalone_mode=False)
        return out.getvalue()

    listed = root_help(load_everything=False)
    assert "Check spec files" in listed and "Keystore chores" in listed
    assert listed == root_help(load_everything=True)


def test_a_misspelt_command_suggests_a_lazily_listed_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plna"]) == 1
    assert capsys.readouterr().err == (
        "error: unknown command 'plna'\n  hint: did you mean 'plan'? 'mtls-config --help' lists the commands\n"
    )


def test_a_module_that_registers_other_commands_than_listed_is_an_error() -> None:
    root = typer.main.get_command(app)
    commands = root.commands  # type: ignore[attr-defined]
    assert isinstance(commands, LazyCommands)
    wrong = LazyCommands({}, [type(LAZY_COMMANDS[0])("plan", "mtls_config.cli.reconcile", "x")], {})
    with pytest.raises(RuntimeError, match=r"registers \['apply', 'drift', 'import', 'plan'\].*says \['plan'\]"):
        wrong["plan"]


def test_the_engine_imports_deepdiff_only_to_compare_nested_fields() -> None:
    # deepdiff (with numpy) costs more CPU to import than a plan of 1000 unchanged resources spends diffing
    code = (
        "import sys, mtls_config.cli.reconcile, mtls_config.engine\n"
        "from mtls_config.diff import _field_changes\n"
        "assert _field_changes({'a': 1}, {'a': 2})\n"
        "print('deepdiff' in sys.modules)\n"
        "_field_changes({'m': {'x': [1]}}, {'m': {'x': [2]}})\n"
        "print('deepdiff' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


# Dumps the names of the modules the main thread imported before the run's first request was sent (the thread
# that reads the specs meanwhile imports beside it), then lets the command go on.
DUMP_AT_FIRST_REQUEST = (
    "import json, sys, threading\n"
    "out = sys.argv.pop(1)\n"
    "sys.argv[0] = 'mtls-config'\n"
    "main_imports = set(sys.modules)\n"
    "class Watch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if threading.current_thread() is threading.main_thread():\n"
    "            main_imports.add(name)\n"
    "        return None\n"
    "sys.meta_path.insert(0, Watch())\n"
    "from mtls_config.cli.main import run\n"
    "import mtls_config.client.instance as instance\n"
    "exchange = instance.InstanceClient._exchange\n"
    "async def first(self, *a, **k):\n"
    "    if not any(True for _ in open(out)):\n"
    "        open(out, 'w').write(json.dumps(sorted(main_imports)))\n"
    "    return await exchange(self, *a, **k)\n"
    "instance.InstanceClient._exchange = first\n"
    "run()\n"
)


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"], ["drift"]])
def test_a_runs_first_request_goes_out_before_the_engine_and_the_kinds_load(command: list[str], tmp_path: Path) -> None:
    """plan, apply and drift send the account's roles before they import the engine, the kinds, the keystore code,
    the lock and inventory records, the spec models and the renderers: those load in the thread that reads the specs while the request is out
    (``fleet.load_with_engine``), no longer a part of every run's start before its first round trip (issue 18)."""
    from mtls_config.emulator import EmulatorConfig, create_app
    from mtls_config.emulator.server import ThreadedServer
    from tests.engine.conftest import ACCOUNTS, ADMIN

    dump = tmp_path / "modules.json"
    dump.write_text("")
    stack = tmp_path / "stack"
    shutil.copytree(EXAMPLE_STACK, stack)  # apply keeps its journal beside the specs: never in the checkout
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    with ThreadedServer(create_app(EmulatorConfig(users=ACCOUNTS))) as server:
        env.update(SN_INSTANCE=server.url, SN_USERNAME=ADMIN[0], SN_PASSWORD=ADMIN[1], COLUMNS="120")
        done = subprocess.run(
            [sys.executable, "-c", DUMP_AT_FIRST_REQUEST, str(dump), *command, str(stack)],
            capture_output=True, text=True, check=False, env=env, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode in (0, 2), done.stderr
    modules = set(json.loads(dump.read_text()))
    assert "mtls_config.client" in modules
    later = [
        "mtls_config.engine", "mtls_config.resources.registry", "mtls_config.keystore", "mtls_config.render",
        "mtls_config.diff", "mtls_config.plan", "mtls_config.apply", "deepdiff", *KEYSTORE_FILES,
        "mtls_config.lock", "mtls_config.inventory_store",  # read after the roles, not needed to send them
        "mtls_config.spec.loader", "mtls_config.spec.models",  # the specs' own: their thread loads them
    ]  # fmt: skip
    assert loaded(modules, later) == []
