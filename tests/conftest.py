"""Fixtures shared by every test folder, and the suite's promise to write nothing into the source tree.

Keep this small and generic; put area-specific fixtures in the area's own ``conftest.py``.

What tests and tools would leave in the checkout goes to one folder under the system's temporary directory
instead (``MTLS_CONFIG_TEST_HOME`` chooses another): bytecode (``sys.pycache_prefix``, inherited by the CLI
subprocesses the tests start), hypothesis's example database and caches; pytest's own cache is off
(``-p no:cacheprovider`` in pyproject.toml). At the end of the session ``git status --porcelain --ignored`` must
be what it was at the start, or the run fails, naming what appeared. Python writes the bytecode of
``tests/__init__.py`` and of this file before any of it runs; ``.ci/run`` sets PYTHONPYCACHEPREFIX for those two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mtls_config.redaction import REVEALED

if TYPE_CHECKING:
    from tests.pki import CA

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_STACK = REPO_ROOT / "specs" / "examples" / "two-partners"
TEST_HOME = Path(
    os.environ.get("MTLS_CONFIG_TEST_HOME") or Path(tempfile.gettempdir()) / f"mtls-config-tests-{os.getuid()}"
)

if not sys.pycache_prefix:
    sys.pycache_prefix = str(TEST_HOME / "pycache")
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix


def _hypothesis_out_of_tree() -> None:
    try:
        from hypothesis import configuration, settings
        from hypothesis.database import DirectoryBasedExampleDatabase
    except ImportError:  # the dev extras are not installed: the property tests skip
        return
    configuration.set_hypothesis_home_dir(TEST_HOME / "hypothesis")
    settings.register_profile(
        "mtls-config", database=DirectoryBasedExampleDatabase(TEST_HOME / "hypothesis" / "examples")
    )
    settings.load_profile("mtls-config")


_hypothesis_out_of_tree()


def _tree_status() -> str | None:
    """``git status --porcelain --ignored`` of the checkout, or None outside a git work tree."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--ignored"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TREE_BEFORE] = _tree_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_TREE_BEFORE, None)
    after = _tree_status()
    if before is None or after is None or before == after:
        return
    appeared = sorted(set(after.splitlines()) - set(before.splitlines()))
    gone = sorted(set(before.splitlines()) - set(after.splitlines()))
    session.config.stash[_TREE_CHANGES] = [
        *(f"appeared: {line}" for line in appeared),
        *(f"gone: {line}" for line in gone),
    ]
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    changes = terminalreporter.config.stash.get(_TREE_CHANGES, [])
    if changes:
        terminalreporter.section("the test suite changed the source tree (git status --porcelain --ignored)", red=True)
        for line in changes:
            terminalreporter.write_line(line)
        terminalreporter.write_line("the run fails: the suite must write nothing into the checkout")


_TREE_BEFORE = pytest.StashKey[str | None]()
_TREE_CHANGES = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def _secrets_of_one_run() -> None:
    """The registry of revealed secrets lives as long as a process, which for the CLI is one run; here each test
    is a run, so that a password one test uses (``admin``) is not masked in the messages another test reads."""
    REVEALED.clear()


@pytest.fixture
def anyio_backend() -> str:
    """anyio's pytest plugin runs ``@pytest.mark.anyio`` tests on asyncio only (no trio dependency)."""
    return "asyncio"


@pytest.fixture(scope="session")
def cert_authority() -> CA:
    """The session's test CA (EC P-256), for tests that need certificates from some CA; areas with their own
    hierarchies (keystore, verify) build them with ``tests.pki`` in their conftest. Like httpx's fixture of
    the same name."""
    from tests.pki import CA, dn  # imported here: after the bytecode prefix above is set

    return CA.root(dn("mtls-config Test CA", organization="mtls-config tests"))


def copy_example(target: Path) -> Path:
    """A private copy of the example spec repository at ``target``, without its embedded instance
    (``.mtls-config/``), as the quickstart makes one."""
    shutil.copytree(EXAMPLE_STACK, target, ignore=shutil.ignore_patterns(".mtls-config"))
    return target


@pytest.fixture
def example_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example spec repository (``copy_example``), a repository root (``.git``), as the working
    directory."""
    repo = copy_example(tmp_path / "two-partners")
    (repo / ".git").mkdir()
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture
def spec_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty spec repository: a folder with a ``.git`` marker (so project-file discovery stops there),
    also the working directory, so messages show paths relative to it."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    monkeypatch.chdir(repo)
    return repo


# Tests that run twice: against the emulator always, and against a real instance when MTLS_CONFIG_TEST_INSTANCE is
# set (marked real_instance; docs/contract-tests.md). ``@pytest.fixture(params=BOTH_TARGETS)``.
REAL_INSTANCE = os.environ.get("MTLS_CONFIG_TEST_INSTANCE", "")
BOTH_TARGETS = [
    "emulator",
    pytest.param(
        "real",
        marks=[
            pytest.mark.real_instance,
            pytest.mark.skipif(not REAL_INSTANCE, reason="MTLS_CONFIG_TEST_INSTANCE is not set"),
        ],
    ),
]


def real_instance_credentials() -> tuple[str, str]:
    """The real instance's user and password (MTLS_CONFIG_TEST_USERNAME / MTLS_CONFIG_TEST_PASSWORD)."""
    return os.environ.get("MTLS_CONFIG_TEST_USERNAME", "admin"), os.environ.get("MTLS_CONFIG_TEST_PASSWORD", "")
