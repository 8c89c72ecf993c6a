"""Fixtures shared by every test folder. Keep this small and generic; put area-specific fixtures in the
area's own ``conftest.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_STACK = REPO_ROOT / "specs" / "examples" / "two-partners"


@pytest.fixture
def anyio_backend() -> str:
    """anyio's pytest plugin runs ``@pytest.mark.anyio`` tests on asyncio only (no trio dependency)."""
    return "asyncio"


@pytest.fixture
def spec_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty spec repository: a folder with a ``.git`` marker (so project-file discovery stops there),
    also the working directory, so messages show paths relative to it."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    monkeypatch.chdir(repo)
    return repo
