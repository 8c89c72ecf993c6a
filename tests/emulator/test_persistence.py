"""SQLite persistence: a new database is seeded once; records, attachments and password2 values survive a
restart (the per-instance key is kept with them); the CLI's seed and reset commands work on the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.emulator import create_app
from mtls_config.emulator.models import Backend
from tests.emulator.conftest import asgi_client, emulator_config

pytestmark = pytest.mark.anyio
CANARY = "canary-Persisted-Pa55-77aa"


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "instance.db"
    app = create_app(emulator_config(db_path=db))
    async with asgi_client(app) as client:
        r = await client.post(
            "/api/now/table/sys_certificate", json={"name": "ks", "type": "key_store", "key_store_password": CANARY}
        )
        cert_id = r.json()["result"]["sys_id"]
        r = await client.post(
            "/api/now/attachment/file",
            params={"table_name": "sys_certificate", "table_sys_id": cert_id, "file_name": "ks.jks"},
            content=b"keystore-bytes",
            headers={"Content-Type": "application/octet-stream"},
        )
        attachment_id = r.json()["result"]["sys_id"]
        await client.patch(f"/api/now/table/sys_certificate/{cert_id}", json={"active": "false"})
    app.state.backend.close()
    assert CANARY.encode() not in db.read_bytes()

    again = create_app(emulator_config(db_path=db))
    backend: Backend = again.state.backend
    assert len(backend.records("sys_rest_message")) == 2  # seeded once, not twice
    record = backend.record("sys_certificate", cert_id)
    assert record is not None and record["active"] == "false" and record["sys_mod_count"] == "1"
    assert backend.reveal_password("sys_certificate", cert_id, "key_store_password") == CANARY
    async with asgi_client(again) as client:
        r = await client.get(f"/api/now/attachment/{attachment_id}/file")
    assert r.content == b"keystore-bytes"
    backend.close()


def test_existing_database_is_not_reseeded(tmp_path: Path) -> None:
    db = tmp_path / "instance.db"
    backend = Backend(emulator_config(db_path=db, seed_data=False))
    backend.close()
    backend = Backend(emulator_config(db_path=db))
    assert backend.records("sys_rest_message") == []
    backend.close()


def test_cli_seed_and_reset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    assert main(["emulator", "seed", "--db", str(db)]) == 0
    assert main(["emulator", "seed", "--db", str(db)]) == 0
    backend = Backend(emulator_config(db_path=db, seed_data=False))
    assert len(backend.records("sys_rest_message")) == 2
    backend.close()
    assert main(["emulator", "reset", "--db", str(db), "--no-seed"]) == 0
    backend = Backend(emulator_config(db_path=db, seed_data=False))
    assert backend.records("sys_rest_message") == []
    backend.close()
    assert "reset" in capsys.readouterr().out


def test_order_survives_updates_and_restarts(tmp_path: Path) -> None:
    db = tmp_path / "order.db"
    backend = Backend(emulator_config(db_path=db, seed_data=False))
    admin = backend.user("admin")
    assert admin is not None
    ids = [backend.insert("sys_properties", {"name": f"p{i}"}, admin)["sys_id"] for i in range(3)]
    backend.update("sys_properties", ids[0], {"value": "changed"}, admin)
    backend.close()
    backend = Backend(emulator_config(db_path=db, seed_data=False))
    assert [r["sys_id"] for r in backend.records("sys_properties")] == ids
    later = backend.insert("sys_properties", {"name": "p3"}, admin)["sys_id"]
    backend.close()
    backend = Backend(emulator_config(db_path=db, seed_data=False))
    assert [r["sys_id"] for r in backend.records("sys_properties")] == [*ids, later]
    backend.close()
