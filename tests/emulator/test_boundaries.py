"""The emulator's boundaries: it imports neither the engine, the client nor the keystore toolkit (it judges
them independently), its backend knows nothing of HTTP, and credentials never come back in answers or logs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette

import mtls_config.emulator
from mtls_config.emulator import create_app
from tests.emulator.conftest import asgi_client, emulator_config

EMULATOR_DIR = Path(mtls_config.emulator.__file__).parent
FORBIDDEN = ("mtls_config.keystore", "mtls_config.client", "mtls_config.engine", "mtls_config.apply", "mtls_config.cli")


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    return set(out.split())


def test_emulator_imports_none_of_the_code_it_tests() -> None:
    loaded = _modules_after_import("mtls_config.emulator")
    assert not [m for m in loaded if m.startswith(FORBIDDEN)]


@pytest.mark.parametrize(
    "module",
    [
        "models",
        "store",
        "auth",
        "rules",
        "seed",
        "catalog",
        "fields",
        "query",
        "tables",
        "certificates",
        "config",
        "exceptions",
    ],
)
def test_backend_modules_import_no_http(module: str) -> None:
    """Static check: the package's __init__ pulls in the app, so a runtime check cannot isolate these modules."""
    tree = ast.parse((EMULATOR_DIR / f"{module}.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [m for m in imported if m.split(".")[0] in ("starlette", "httpx", "uvicorn")]
    assert not [m for m in imported if m.startswith("mtls_config.") and not m.startswith("mtls_config.emulator")]


@pytest.mark.anyio
async def test_credentials_never_come_back(app: Starlette) -> None:
    canary = "canary-Wrong-Pa55-3c9d"
    async with asgi_client(app, auth=("admin", canary)) as client:
        r = await client.get("/api/now/table/sys_user")
        assert r.status_code == 401 and canary not in r.text and canary not in str(r.headers)
    async with asgi_client(app, auth=None) as client:
        r = await client.post(
            "/oauth_token.do", data={"grant_type": "client_credentials", "client_id": "cli-id", "client_secret": canary}
        )
        assert r.status_code == 401 and canary not in r.text
    async with asgi_client(app) as client:
        log = (await client.get("/_emulator/requests")).text
    assert "/oauth_token.do" in log and canary not in log


def test_sys_user_records_carry_no_password() -> None:
    # The emulated users' passwords live only in the config, in memory; they are never stored or served.
    app = create_app(emulator_config())
    assert app.state.backend.records("sys_user")[0].get("password") is None
