"""The desired state keeps no second copy of what the specs hold: a trust certificate's PEM text is the spec's own
string when the spec already has it in the form sent to the instance (held for memory: 540 bytes a certificate)."""

from __future__ import annotations

from pathlib import Path

from mtls_config.desired import build_desired
from mtls_config.resources.trust_store_cert import normalise_pem
from mtls_config.spec.loader import load_specs
from mtls_config.spec.models import TrustStoreCert
from tests.conftest import EXAMPLE_STACK


def test_a_canonical_pem_is_shared_and_any_other_is_sent_in_canonical_form(tmp_path: Path) -> None:
    canonical = normalise_pem((EXAMPLE_STACK / "certs" / "acme-server-ca.pem").read_text())
    rewrapped = canonical.replace("\n", "\r\n")
    docs = []
    for name, pem in (("canonical", canonical), ("crlf", rewrapped), ("indented", "  " + canonical)):
        block = pem.replace("\r\n", "\\r\\n").replace("\n", "\\n")
        docs.append(
            f'apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: {name}}}\nspec:\n  pem: "{block}"\n'
        )
    (tmp_path / "certs.yaml").write_text("---\n".join(docs))
    specs = load_specs([tmp_path], root=tmp_path)
    desired = {r.name: r for r in build_desired(specs, environ={}).resources}
    given = {r.name: r.spec.pem for r in specs.of_kind(TrustStoreCert)}
    assert given["crlf"] == rewrapped and given["indented"] == "  " + canonical
    assert desired["canonical"].info["pem_text"] is given["canonical"]
    for name in ("crlf", "indented"):
        assert desired[name].info["pem_text"] == canonical != given[name]
