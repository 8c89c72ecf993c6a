"""The desired state keeps no second copy of what the specs hold: a trust certificate's PEM text is the spec's own
string when the spec already has it in the form sent to the instance (held for memory: 540 bytes a certificate).
And the live side does not work out again what the desired state knows: the fingerprint of that text."""

from __future__ import annotations

from pathlib import Path

from mtls_config.desired import build_desired
from mtls_config.resources.common import LiveRecord
from mtls_config.resources.kind import Index
from mtls_config.resources.trust_store_cert import KIND, normalise_pem
from mtls_config.spec.loader import load_specs
from mtls_config.spec.models import TrustStoreCert
from tests.conftest import EXAMPLE_STACK


def test_a_canonical_pem_is_shared_and_any_other_is_sent_in_canonical_form(tmp_path: Path) -> None:
    canonical = normalise_pem((EXAMPLE_STACK / "certs" / "acme-server-ca.pem").read_text())
    rewrapped = canonical.replace("\n", "\r\n")
    docs = []
    cases = (("canonical", canonical), ("crlf", rewrapped), ("indented", "  " + canonical), ("blank", canonical + "\n"))
    for name, pem in cases:
        block = pem.replace("\r\n", "\\r\\n").replace("\n", "\\n")
        docs.append(
            f'apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: {name}}}\nspec:\n  pem: "{block}"\n'
        )
    for name, pem in (("file", canonical), ("crlf-file", rewrapped)):  # read from a file: sent as its text
        (tmp_path / f"{name}.pem").write_bytes(pem.encode())
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: {name}}}\nspec:\n  file: {name}.pem\n"
        )
    (tmp_path / "certs.yaml").write_text("---\n".join(docs))
    specs = load_specs([tmp_path], root=tmp_path)
    desired = {r.name: r for r in build_desired(specs, environ={}).resources}
    given = {r.name: r.spec.pem for r in specs.of_kind(TrustStoreCert)}
    assert given["crlf"] == rewrapped and given["indented"] == "  " + canonical and given["blank"] == canonical + "\n"
    assert desired["canonical"].info["pem_text"] is given["canonical"]
    for name in ("crlf", "indented", "blank", "file", "crlf-file"):
        assert desired[name].info["pem_text"] == canonical != given[name]
        assert desired[name].fields == desired["canonical"].fields


def test_the_live_view_of_a_record_holding_the_text_sent_is_the_one_read_without_the_desired_state(
    tmp_path: Path,
) -> None:
    """A record that holds the text the plan sends has the desired state's fingerprint, not parsed again; what a
    record holds otherwise (re-wrapped, another certificate, damaged, nothing) is read as always: the view of every
    record is the one ``live`` gives without the desired state."""
    own = (EXAMPLE_STACK / "certs" / "acme-server-ca.pem").read_text()
    other = (EXAMPLE_STACK / "certs" / "demo-root-ca.pem").read_text()
    block = own.replace("\n", "\\n")
    (tmp_path / "certs.yaml").write_text(
        f'apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: partner}}\nspec:\n  pem: "{block}"\n'
    )
    d = build_desired(load_specs([tmp_path], root=tmp_path), environ={}).resources[0]
    sent = d.info["pem_text"]
    assert isinstance(sent, str)
    texts = {
        "sent": sent,
        "rewrapped": sent.replace("\n", "\r\n"),
        "other": normalise_pem(other),
        "damaged": sent.replace(sent[100:140], "A" * 40),
        "empty": "",
    }
    index = Index({}, {}, {})
    views = {}
    for name, text in texts.items():
        record = LiveRecord(
            "sys_certificate", f"id-{name}", 1, {"name": "partner", "format": "pem", "pem_certificate": text}
        )
        views[name] = KIND.live_of(d, {"": record}, index)
        assert views[name] == KIND.live(d.address, d.name, {"": record}, index)
    fingerprints = {name: view.fields["certificate"] for name, view in views.items()}
    assert fingerprints["sent"] == fingerprints["rewrapped"] == d.fields["certificate"]
    assert fingerprints["other"] not in (None, d.fields["certificate"])
    assert fingerprints["damaged"] is None and fingerprints["empty"] is None
