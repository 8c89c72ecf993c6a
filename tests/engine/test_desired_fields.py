"""Each kind's desired state says, field by field and in order, what its ``canonical_fields`` says of the spec's
values (the certificate kinds build theirs straight from the spec, ``spec_record``, not through the keyword calls),
under the resource's own address and name; and every stage that walks the specs pairs a resource with its own
origin (``SpecSet.placed``), across kinds and files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.desired import build_desired
from mtls_config.engine import lint_findings
from mtls_config.resources import key_store, protocol_profile, trust_store_cert
from mtls_config.resources.certificate import notification_fields
from mtls_config.spec.loader import load_specs
from mtls_config.spec.models import KeyStore, ProtocolProfile, TrustStoreCert
from tests.conftest import EXAMPLE_STACK

_NOTIFICATIONS = (
    "",
    "  expirationNotification: true\n",
    "  expirationNotification: false\n",
    "  expirationNotification: {users: [zed, Amy], frequency: weekly}\n",
    "  expirationNotification: {enabled: true, groups: [PKI Operations, Ops]}\n",
    "  expirationNotification: {users: [], groups: [], frequency: daily}\n",
    "  expirationNotification: {frequency: monthly}\n",
)


def _stack(tmp_path: Path) -> Path:
    """Keystores, trust certificates (PEM inline and from a file, DER) and profiles, every notification shape,
    over two spec files whose documents interleave the kinds."""
    for folder in ("certs", "keystores", "demo-secrets"):
        shutil.copytree(EXAMPLE_STACK / folder, tmp_path / folder)
    pem = (EXAMPLE_STACK / "certs" / "acme-server-ca.pem").read_text()
    block = pem.replace("\n", "\\n")
    (tmp_path / "specs").mkdir()
    files: dict[str, list[str]] = {"a.yaml": [], "b.yaml": []}
    for i, notification in enumerate(_NOTIFICATIONS):
        docs = files["a.yaml" if i % 2 else "b.yaml"]
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: KeyStore\nmetadata: {{name: ks-{i}}}\nspec:\n"
            "  file: ../keystores/globex-client.jks\n  password: {fromFile: ../demo-secrets/keystore-password.txt}\n"
            f"  description: keystore {i}\n  warnDays: {10 + i}\n  active: {'true' if i % 3 else 'false'}\n"
            + notification
        )
        cert = (
            f'  pem: "{block}"\n'
            if i % 3 == 0
            else "  file: ../certs/acme-server-ca.pem\n"
            if i % 3 == 1
            else "  format: der\n  file: ../certs/ca.der\n"
        )
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: Cert {i}}}\nspec:\n{cert}"
            f"  description: cert {i}\n  warnDays: {20 + i}\n" + notification
        )
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: ProtocolProfile\nmetadata: {{name: p{'abcdefg'[i]}}}\nspec:\n"
            f"  port: {440 + i}\n  keyStore: ks-{i}\n"
        )
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    (tmp_path / "certs" / "ca.der").write_bytes(der)
    for name, docs in files.items():
        (tmp_path / "specs" / name).write_text("---\n".join(docs))
    return tmp_path


def test_each_kinds_desired_fields_are_its_canonical_fields_of_the_spec(tmp_path: Path) -> None:
    root = _stack(tmp_path)
    specs = load_specs([root / "specs"], root=root)
    desired = build_desired(specs, environ={})
    assert len(desired.resources) == 3 * len(_NOTIFICATIONS)
    for resource, d in zip(specs.resources, desired.resources, strict=True):
        expected: dict[str, Any]
        if isinstance(resource, KeyStore | TrustStoreCert):
            spec = resource.spec
            common = {
                "active": spec.active,
                "description": spec.description,
                "warn_days": spec.warn_days,
                "notify": spec.expiration_notification.enabled,
                "notification": notification_fields(spec.expiration_notification),
            }
            if isinstance(resource, KeyStore):
                assert d.content is not None
                expected = key_store.canonical_fields(format=spec.format, digest=d.content.digest, **common)
            else:
                fingerprint = d.fields[trust_store_cert.CERT_FIELD]
                assert isinstance(fingerprint, str) and fingerprint.startswith("sha256:")
                expected = trust_store_cert.canonical_fields(format=spec.format, fingerprint=fingerprint, **common)
        else:
            assert isinstance(resource, ProtocolProfile)
            expected = protocol_profile.canonical_fields(port=resource.spec.port, key_store=resource.spec.key_store)
        assert list(d.fields.items()) == list(expected.items()), resource.address  # the same values, in order
        assert (d.address, d.kind, d.name, d.adopt) == (
            resource.address,
            resource.kind,
            resource.name,
            resource.metadata.adopt,
        )
    notified = {d.name: d.fields for d in desired.resources if d.kind == "TrustStoreCert"}
    assert notified["Cert 3"]["notify_on_expiration"] == ["Amy", "zed"] and notified["Cert 3"]["frequency"] == "weekly"
    assert notified["Cert 6"]["frequency"] == "monthly" and "notify_groups" not in notified["Cert 6"]
    assert "notify_on_expiration" not in notified["Cert 0"] and notified["Cert 1"]["expiration_notification"] is True


def test_each_resource_is_placed_with_its_own_origin(tmp_path: Path) -> None:
    root = _stack(tmp_path)
    specs = load_specs([root / "specs"], root=root)
    placed = list(specs.placed())
    assert [r for r, _ in placed] == list(specs.resources)
    assert all(origin is specs.origins[r.address] for r, origin in placed)
    assert {origin.path.rsplit("/", 1)[-1] for _, origin in placed} == {"a.yaml", "b.yaml"}
    # lint's findings, each at its own resource: a keystore whose file is missing, certificates whose file is
    # damaged, in either file
    text = (root / "specs" / "b.yaml").read_text()
    (root / "specs" / "b.yaml").write_text(
        text.replace(
            "metadata: {name: ks-4}\nspec:\n  file: ../keystores/globex-client.jks",
            "metadata: {name: ks-4}\nspec:\n  file: ../keystores/missing.jks",
        )
    )
    (root / "keystores" / "missing.jks").write_bytes(b"")
    (root / "certs" / "ca.der").write_bytes(b"not a certificate")
    specs = load_specs([root / "specs"], root=root)
    (root / "keystores" / "missing.jks").unlink()
    found = {(f.address, f.message.split(":", 1)[0]) for f in lint_findings(specs, {}, None) if f.severity == "error"}
    assert found == {("KeyStore/ks-4", "K01"), ("TrustStoreCert/Cert 2", "T01"), ("TrustStoreCert/Cert 5", "T01")}
