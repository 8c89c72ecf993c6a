"""The import procedure as a library call: specs and files written (keystores owner-only), nothing overwritten
without ``force``, and the inventory stored only when the files are written."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mtls_config.client import InstanceClient
from mtls_config.errors import PlanError
from mtls_config.importer import import_to
from mtls_config.inventory_store import read_inventory
from tests.engine.conftest import hand_made_keystore

pytestmark = pytest.mark.anyio


async def test_import_writes_the_files_and_owns_the_records(tmp_path: Path, client: InstanceClient) -> None:
    await hand_made_keystore(client)
    result = await import_to(client, "s", tmp_path / "out")
    assert result.imported == ["KeyStore/Legacy client"]
    keystore = tmp_path / "out" / "files" / "legacy-client.jks"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600  # holds a private key
    assert "Legacy client" in (tmp_path / "out" / "keystores.yaml").read_text()
    inventory, _, _ = await read_inventory(client, "s")
    assert sorted(inventory.resources) == ["KeyStore/Legacy client"]


async def test_import_refuses_to_overwrite_and_then_owns_nothing(tmp_path: Path, client: InstanceClient) -> None:
    await hand_made_keystore(client)
    out = tmp_path / "out"
    (out / "files").mkdir(parents=True)
    (out / "files" / "legacy-client.jks").write_bytes(b"someone's file")
    with pytest.raises(
        PlanError, match=r"already holds 1 file that import would write \(e\.g\. .*legacy-client\.jks\)"
    ) as caught:
        await import_to(client, "s", out)
    assert "--force" in str(caught.value)
    assert (out / "files" / "legacy-client.jks").read_bytes() == b"someone's file"
    assert not (out / "keystores.yaml").exists()
    inventory, record, _ = await read_inventory(client, "s")
    assert record is None and not inventory.resources
    await import_to(client, "s", out, force=True)
    assert (out / "files" / "legacy-client.jks").read_bytes() != b"someone's file"


async def test_import_splits_what_it_writes_so_that_every_file_loads(tmp_path: Path, client: InstanceClient) -> None:
    """5000 trust-store certificates are 1.07 MB of specs, more than a spec file may hold (1 MiB): import writes
    them in files of at most half of it, each of which the loader reads (issue 18)."""
    from mtls_config.files import SPEC
    from mtls_config.operations import Create
    from mtls_config.spec.loader import load_specs
    from tests.pki import CA, new_key

    pem = CA.root("partner.example", key=new_key("ec-p256")).pem.decode()
    n = 5000
    creates = [
        Create(
            "sys_certificate",
            f"{i:032x}",
            {
                "name": f"partner-{i:05d}",
                "type": "trust_store",
                "format": "pem",
                "pem_certificate": pem,
                "active": "true",
            },
        )
        for i in range(n)
    ]
    for start in range(0, n, 500):
        await client.write_batch(creates[start : start + 500])
    out = tmp_path / "out"
    result = await import_to(client, "s", out)
    assert len(result.imported) == n
    written = sorted(out.glob("trust-store-certs*.yaml"))
    assert [p.name for p in written] == [
        "trust-store-certs-2.yaml",
        "trust-store-certs-3.yaml",
        "trust-store-certs.yaml",
    ]
    assert sum(p.stat().st_size for p in written) > SPEC.cap  # one file would not load
    assert all(p.stat().st_size <= SPEC.cap // 2 for p in written)
    specs = load_specs([out], root=out)
    assert sum(1 for address in specs.origins if address.startswith("TrustStoreCert/")) == n
