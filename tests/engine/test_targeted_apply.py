"""apply --target/--exclude: what is left out of the run is left alone, on the instance and in the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_change_left_out_by_target_is_still_planned_afterwards(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A targeted apply must not record, for resources it did not touch, that the instance holds the new
    content: the inventory vouches for attachments, so that would hide the pending change for good."""
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    # Two changes in the specs: a new DER certificate for Globex, a new description for Acme's CA.
    issuing = x509.load_pem_x509_certificate((stack_dir / "certs" / "demo-issuing-ca.pem").read_bytes())
    (stack_dir / "certs" / "globex-server.der").write_bytes(issuing.public_bytes(Encoding.DER))
    acme = stack_dir / "resources" / "acme-payments.yaml"
    acme.write_text(acme.read_text().replace("CA that issued Acme's API server certificate", "Acme's server CA"))

    code, out, err = run(["apply", "--auto-approve", "--target", "TrustStoreCert/Acme Payments server CA"], capsys)
    assert code == 0, out + err
    assert "1 applied" in out

    code, out, _ = run(["plan"], capsys)
    assert code == 2, out
    assert "TrustStoreCert/Globex orders server" in out and "certificate" in out


def test_excluding_a_missing_dependency_skips_its_dependants(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A profile whose keystore is neither on the instance nor in this run is not created pointing at nothing."""
    import asyncio

    from tests.engine.conftest import open_local

    code, out, err = run(["apply", "--auto-approve", "--exclude", "KeyStore/Acme Payments client"], capsys)
    assert code == 1, out + err
    assert "ProtocolProfile/acmemtls" in out and "skipped" in out

    async def profiles() -> list[dict[str, str]]:
        async with open_local(stack_dir) as c:
            return await c.list("sys_protocol_profile", query="protocol=acmemtls", fields=["keystore"])

    assert asyncio.run(profiles()) == []
    code, out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 0, out + err
    assert run(["plan"], capsys)[0] == 0
