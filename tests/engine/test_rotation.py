"""Certificate rotation as docs/recipes/rotation.md describes it: new keystore, repoint, retire old, one apply."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from tests.engine.conftest import open_local


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_rotation_creates_before_it_destroys(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    spec = stack_dir / "resources" / "acme-payments.yaml"
    text = spec.read_text()
    # the renewed keystore under a new name (same demo parts: what matters is the record dance)
    shutil.copy(stack_dir / "certs" / "acme-client.pem", stack_dir / "certs" / "acme-client-2027.pem")
    text = text.replace("name: Acme Payments client\n", "name: Acme Payments client 2027\n", 1)
    text = text.replace("cert: ../certs/acme-client.pem", "cert: ../certs/acme-client-2027.pem")
    text = text.replace("keyStore: Acme Payments client\n", "keyStore: Acme Payments client 2027\n")
    spec.write_text(text)

    code, out, _ = run(["plan", "--prune", "--json"], capsys)
    assert code == 2
    changes = [(c["address"], c["action"]) for c in json.loads(out)["resource_changes"] if c["action"] != "no-op"]
    assert changes == [
        ("KeyStore/Acme Payments client 2027", "create"),
        ("ProtocolProfile/acmemtls", "update"),
        ("KeyStore/Acme Payments client", "delete"),
    ]
    code, out, err = run(["apply", "--prune", "--auto-approve"], capsys)
    assert code == 0, out + err

    async def check() -> None:
        async with open_local(stack_dir) as c:
            names = {r["name"]: r["sys_id"] for r in await c.list("sys_certificate", fields=["name", "sys_id"])}
            assert "Acme Payments client" not in names
            profile = (await c.list("sys_protocol_profile", query="protocol=acmemtls", fields=["keystore"]))[0]
            assert profile["keystore"] == names["Acme Payments client 2027"]

    asyncio.run(check())
    journal = sorted((stack_dir / ".mtls-config" / "journal").glob("*.jsonl"))[-1]
    steps = [json.loads(line) for line in journal.read_text().splitlines()]
    done = [s["address"] for s in steps if s.get("status") == "applied"]
    # the profile was repointed before the old keystore was deleted
    assert done.index("ProtocolProfile/acmemtls") < done.index("KeyStore/Acme Payments client")
    assert done.index("KeyStore/Acme Payments client 2027") < done.index("ProtocolProfile/acmemtls")
    assert run(["plan"], capsys)[0] == 0
