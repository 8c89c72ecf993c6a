"""The diff cases of tests/cases/diff/: how a case file becomes a desired state and a live state.

One JSON file per case (live + desired -> expected changes and findings). Live records are given as the Table
API returns them (strings, reference links, wrapped PEM) and go through the same canonicalisation as observed
ones, so the cases also pin the normalisation rules. Placeholders: @PEM1 / @PEM2 (two certificates), @PEM1_WRAPPED
(@PEM1 re-wrapped with CRLF at 76 columns), @FP1 (the fingerprint of @PEM1), @DIGEST:<password>:<salt>,
@SHA:<text>.

The certificates are Ed25519 with fixed keys and dates, so that a case gives the same plan every run (the golden
plans of tests/golden/ hold it).

Beyond the records: a live MessageBinding's ``functions`` are those it owns and ``other_functions`` the message's
others (its ``type``: rest, soap, oauth or connection); a desired certificate's ``spec.notification`` holds the
notification fields it manages (``certificate.notification_fields``); ``names`` (table -> sys_id -> name) are the
referenced records the instance holds (users, groups); ``properties`` (name -> value) are the
``glide.httpclient.protocol.*`` system properties.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from mtls_config.desired import Desired
from mtls_config.diff import DiffResult, diff
from mtls_config.inventory import Inventory
from mtls_config.observe import Live
from mtls_config.resources import certificate, key_store, message_binding, protocol_profile, trust_store_cert
from mtls_config.resources.common import Attachment, Content, DesiredResource, LiveRecord
from mtls_config.secrets import SecretValue
from tests.pki import self_signed

CASES = Path(__file__).resolve().parents[1] / "cases" / "diff"
NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


@cache
def pem(i: int) -> str:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"diff case key {i}".encode()).digest())
    partner = self_signed(
        f"partner {i}", key=key, serial=i, not_before=NOW - dt.timedelta(days=1),
        not_after=NOW + dt.timedelta(days=400), extensions=False,
    )  # fmt: skip
    return partner.pem.decode()


def placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [placeholders(v) for v in value]
    if not isinstance(value, str) or not value.startswith("@"):
        return value
    if value in ("@PEM1", "@PEM2"):
        return pem(int(value[-1]))
    if value == "@PEM1_WRAPPED":
        body = "".join(pem(1).splitlines()[1:-1])
        lines = [body[i : i + 76] for i in range(0, len(body), 76)]
        return "\r\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"]) + "\r\n"
    if value == "@FP1":
        return trust_store_cert.fingerprint_pem(pem(1))
    if value.startswith("@DIGEST:"):
        _, password, salt = value.split(":")
        return SecretValue(password.encode(), "test").salted_digest(salt)
    if value.startswith("@SHA:"):
        return hashlib.sha256(value[5:].encode()).hexdigest()
    raise ValueError(f"unknown placeholder {value}")


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = placeholders(json.loads(path.read_text()))
    return case


def _content(item: dict[str, Any], digest: str) -> Content | None:
    """A desired file: ``{"file_name", "text", "content_type"}`` (its digest is the spec's)."""
    found = item.get("content")
    if found is None:
        return None
    return Content(
        found["text"].encode(), found["file_name"], found.get("content_type", "application/octet-stream"), digest
    )


def _desired(item: dict[str, Any]) -> DesiredResource:
    kind, name, spec = item["kind"], item["name"], item.get("spec", {})
    address = f"{kind}/{name}"
    adopt = bool(item.get("adopt", False))
    if kind == "KeyStore":
        fields = key_store.canonical_fields(**spec)
        password = SecretValue(item["password"].encode(), "test")
        content = _content(item, fields["keystore_file"])
        return DesiredResource(address, kind, name, key_store.TABLE, fields, adopt, content, password)
    if kind == "TrustStoreCert":
        spec = dict(spec)
        pem_text = spec["fingerprint"]
        spec["fingerprint"] = trust_store_cert.fingerprint_pem(pem_text)
        fields = trust_store_cert.canonical_fields(**spec)
        info = {"pem_text": trust_store_cert.normalise_pem(pem_text)} if spec["format"] == "pem" else {}
        content = _content(item, fields["certificate"])
        return DesiredResource(address, kind, name, trust_store_cert.TABLE, fields, adopt, content, info=info)
    if kind == "ProtocolProfile":
        fields = protocol_profile.canonical_fields(**spec)
        return DesiredResource(
            address, kind, name, protocol_profile.TABLE, fields, adopt, depends_on=(f"KeyStore/{spec['key_store']}",)
        )
    fields = message_binding.canonical_fields(spec["protocol"], spec.get("functions", []))
    table = message_binding.TARGETS[item["target"]["type"]].message
    return DesiredResource(address, kind, name, table, fields, adopt, target=item["target"])


def _live(item: dict[str, Any]) -> Any:
    kind, name = item["kind"], item["name"]
    address = f"{kind}/{name}"
    if kind == "MessageBinding":
        target = message_binding.TARGETS[item.get("type", "rest")]
        msg = LiveRecord(target.message, item["message"]["sys_id"], item["message"]["mod"], item["message"]["values"])
        every = {**item.get("functions", {}), **item.get("other_functions", {})}
        fns = {fn: LiveRecord(str(target.function), r["sys_id"], r["mod"], r["values"]) for fn, r in every.items()}
        owned = sorted(item.get("functions", {}))
        return message_binding.live(address, name, msg, fns, owned, item["profile_names"])
    table = protocol_profile.TABLE if kind == "ProtocolProfile" else "sys_certificate"
    record = LiveRecord(table, item["sys_id"], item["mod"], {k: v for k, v in item["record"].items()})
    if kind == "ProtocolProfile":
        return protocol_profile.live(address, name, record, item["certificate_names"])
    atts = tuple(Attachment(f"a{i}", "f", 10, "application/octet-stream") for i in range(item.get("attachments", 0)))
    module = key_store if kind == "KeyStore" else trust_store_cert
    return module.live(address, name, record, atts, item.get("digest"))


def states(case: dict[str, Any]) -> tuple[Desired, Live]:
    desired = Desired(tuple(_desired(d) for d in case["desired"]), "sha256:test")
    lives = [_live(item) for item in case["live"]]
    names = case.get("names", {})
    # a desired KeyStore may meet a TrustStoreCert record of the same name: key the live view by desired address
    by_address = {}
    for item, res in zip(case["live"], lives, strict=True):
        wanted = [d for d in desired.resources if d.name == item["name"]]
        if wanted and wanted[0].table == certificate.TABLE:
            res = certificate.with_notification(res, wanted[0], names)
        by_address[wanted[0].address if wanted else res.address] = res
    opaque = {
        f"{i['kind']}/{i['name']}": hashlib.sha256(i["record"]["key_store_password"].encode()).hexdigest()
        for i in case["live"]
        if i.get("record", {}).get("key_store_password")
    }
    properties = tuple(
        LiveRecord("sys_properties", f"p{i}", 0, {"name": k, "value": v})
        for i, (k, v) in enumerate(sorted(case.get("properties", {}).items()))
    )
    live = Live(
        "t", Inventory.model_validate(case["inventory"]), None, None, by_address, case.get("binding_errors", {}), opaque,
        names=names, listed={protocol_profile.PROPERTIES_READ: properties},
    )  # fmt: skip
    return desired, live


def run_diff(case: dict[str, Any]) -> tuple[Desired, Live, DiffResult]:
    desired, live = states(case)
    return desired, live, diff(desired, live, prune=bool(case.get("prune", False)), now=NOW)
