"""import writes one file (and one password variable) per record even when two names make the same one."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.client import InstanceClient
from mtls_config.engine import make_planned
from mtls_config.importer import import_live
from mtls_config.inventory_store import store_inventory
from mtls_config.spec.loader import load_specs

pytestmark = pytest.mark.anyio
CERTS = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners" / "certs"


async def test_names_that_slug_alike_get_their_own_files_and_plan_noop(tmp_path: Path, client: InstanceClient) -> None:
    pems = [(CERTS / f).read_text() for f in ("acme-server-ca.pem", "demo-root-ca.pem")]
    # Two partners' CAs whose names differ only in case and punctuation, as hand-made records do.
    for name, pem in zip(("Partner CA", "partner-ca"), pems, strict=True):
        await client.create(
            "sys_certificate",
            {"name": name, "type": "trust_store", "format": "pem", "pem_certificate": pem, "active": "true"},
        )
    der = x509.load_pem_x509_certificate(pems[0].encode()).public_bytes(Encoding.DER)
    for name in ("Partner (DER)", "partner-der"):
        rec = await client.create("sys_certificate", {"name": name, "type": "trust_store", "format": "der"})
        await client.upload_attachment("sys_certificate", rec["sys_id"], "c.der", der, "application/pkix-cert")

    jks = (CERTS.parent / "keystores" / "globex-client.jks").read_bytes()
    for name in ("Hand client", "hand-client"):
        rec = await client.create(
            "sys_certificate",
            {"name": name, "type": "key_store", "active": "true", "key_store_password": "demo-keystore-password"},
            input_display_value=True,
        )
        await client.upload_attachment("sys_certificate", rec["sys_id"], "client.jks", jks)

    result = await import_live(client, "imported")
    assert len(result.imported) == 6
    files = [p for p in result.files if not p.endswith(".yaml")]
    assert len(files) == 6, files
    keystores = result.files["keystores.yaml"].decode()
    # each keystore its own password variable: they may well differ
    assert "MTLS_KEYSTORE_PASSWORD_HAND_CLIENT\n" in keystores and "MTLS_KEYSTORE_PASSWORD_HAND_CLIENT_2" in keystores
    out = tmp_path / "imported"
    for rel, data in result.files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    assert result.inventory is not None
    await store_inventory(client, "imported", result.inventory_record, result.inventory)
    environ = {f"MTLS_KEYSTORE_PASSWORD_HAND_CLIENT{s}": "demo-keystore-password" for s in ("", "_2")}
    specs = load_specs([out], root=out)
    planned = await make_planned(client, specs, instance_name="local", stack="imported", environ=environ)
    assert not planned.plan.has_changes and not planned.plan.errors, planned.plan.to_json()
