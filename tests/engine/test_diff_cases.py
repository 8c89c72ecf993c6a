"""Table-driven diff tests: one JSON file per case in tests/cases/diff/ (live + desired -> expected changes).

Live records are given as the Table API returns them (strings, reference links, wrapped PEM) and go
through the same canonicalisation as observed ones, so the cases also pin the normalisation rules.
Placeholders: @PEM1 / @PEM2 (two certificates), @PEM1_WRAPPED (@PEM1 re-wrapped with CRLF at 76
columns), @FP1 (the fingerprint of @PEM1), @DIGEST:<password>:<salt>, @SHA:<text>.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mtls_config.desired import Desired
from mtls_config.diff import diff
from mtls_config.inventory import Inventory
from mtls_config.observe import Live
from mtls_config.resources import key_store, message_binding, protocol_profile, trust_store_cert
from mtls_config.resources.common import Attachment, DesiredResource, LiveRecord
from mtls_config.secrets import SecretValue

CASES = Path(__file__).resolve().parents[1] / "cases" / "diff"
NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


@cache
def _pem(i: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"partner {i}")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(i).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=400))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    if not isinstance(value, str) or not value.startswith("@"):
        return value
    if value in ("@PEM1", "@PEM2"):
        return _pem(int(value[-1]))
    if value == "@PEM1_WRAPPED":
        body = "".join(_pem(1).splitlines()[1:-1])
        lines = [body[i : i + 76] for i in range(0, len(body), 76)]
        return "\r\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"]) + "\r\n"
    if value == "@FP1":
        return trust_store_cert.fingerprint_pem(_pem(1))
    if value.startswith("@DIGEST:"):
        _, password, salt = value.split(":")
        return SecretValue(password.encode(), "test").salted_digest(salt)
    if value.startswith("@SHA:"):
        return hashlib.sha256(value[5:].encode()).hexdigest()
    raise ValueError(f"unknown placeholder {value}")


def _desired(item: dict[str, Any]) -> DesiredResource:
    kind, name, spec = item["kind"], item["name"], item.get("spec", {})
    address = f"{kind}/{name}"
    adopt = bool(item.get("adopt", False))
    if kind == "KeyStore":
        fields = key_store.canonical_fields(**spec)
        password = SecretValue(item["password"].encode(), "test")
        return DesiredResource(address, kind, name, key_store.TABLE, fields, adopt, None, password)
    if kind == "TrustStoreCert":
        spec = dict(spec)
        spec["fingerprint"] = trust_store_cert.fingerprint_pem(spec["fingerprint"])
        return DesiredResource(
            address, kind, name, trust_store_cert.TABLE, trust_store_cert.canonical_fields(**spec), adopt
        )
    if kind == "ProtocolProfile":
        fields = protocol_profile.canonical_fields(**spec)
        return DesiredResource(
            address, kind, name, protocol_profile.TABLE, fields, adopt, depends_on=(f"KeyStore/{spec['key_store']}",)
        )
    fields = message_binding.canonical_fields(spec["protocol"], spec.get("functions", []))
    return DesiredResource(address, kind, name, "sys_rest_message", fields, adopt, target=item["target"])


def _live(item: dict[str, Any]) -> Any:
    kind, name = item["kind"], item["name"]
    address = f"{kind}/{name}"
    if kind == "MessageBinding":
        msg = LiveRecord(
            "sys_rest_message", item["message"]["sys_id"], item["message"]["mod"], item["message"]["values"]
        )
        fns = {
            fn: LiveRecord("sys_rest_message_fn", r["sys_id"], r["mod"], r["values"])
            for fn, r in item["functions"].items()
        }
        return message_binding.live(address, name, msg, fns, sorted(fns), item["profile_names"])
    table = protocol_profile.TABLE if kind == "ProtocolProfile" else "sys_certificate"
    record = LiveRecord(table, item["sys_id"], item["mod"], {k: v for k, v in item["record"].items()})
    if kind == "ProtocolProfile":
        return protocol_profile.live(address, name, record, item["certificate_names"])
    atts = tuple(Attachment(f"a{i}", "f", 10, "application/octet-stream") for i in range(item.get("attachments", 0)))
    module = key_store if kind == "KeyStore" else trust_store_cert
    return module.live(address, name, record, atts, item.get("digest"))


def _run(case: dict[str, Any]) -> dict[str, Any]:
    desired = Desired(tuple(_desired(d) for d in case["desired"]), "sha256:test")
    lives = [_live(item) for item in case["live"]]
    # a desired KeyStore may meet a TrustStoreCert record of the same name: key the live view by desired address
    by_address = {}
    for item, res in zip(case["live"], lives, strict=True):
        wanted = [d.address for d in desired.resources if d.name == item["name"]]
        by_address[wanted[0] if wanted else res.address] = res
    opaque = {
        f"{i['kind']}/{i['name']}": hashlib.sha256(i["record"]["key_store_password"].encode()).hexdigest()
        for i in case["live"]
        if i.get("record", {}).get("key_store_password")
    }
    live = Live(
        "t", Inventory.model_validate(case["inventory"]), None, None, by_address, case.get("binding_errors", {}), opaque
    )
    result = diff(desired, live, prune=bool(case.get("prune", False)), now=NOW)
    changes = []
    for c in result.changes:
        changes.append(
            {
                "address": c.address,
                "action": c.action,
                "fields": sorted(f.field for f in c.fields),
                "values": {f.field: [f.before, f.after] for f in c.fields},
                "reason": c.reason,
                "importing": c.importing,
                "sensitive": c.sensitive_changed,
            }
        )
    return {"changes": changes, "findings": [[f.address, f.severity, f.message] for f in result.findings]}


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, want in expected.items():
        have = actual.get(key)
        if key == "reason":
            if want not in str(have):
                return False
        elif key == "values":
            if any(have.get(f) != v for f, v in want.items()):  # type: ignore[union-attr]
                return False
        elif have != want:
            return False
    return True


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_diff_case(path: Path) -> None:
    case = _placeholders(json.loads(path.read_text()))
    actual = _run(case)
    ok = len(actual["changes"]) == len(case["expected"]) and all(
        _matches(e, a) for e, a in zip(case["expected"], actual["changes"], strict=True)
    )
    if "findings" in case:
        want_findings = case["findings"]
        ok = (
            ok
            and len(want_findings) == len(actual["findings"])
            and all(
                w[0] == a[0] and w[1] == a[1] and w[2] in a[2]
                for w, a in zip(want_findings, actual["findings"], strict=True)
            )
        )
    if not ok:
        want = json.dumps(
            {"changes": case["expected"], "findings": case.get("findings")}, indent=1, sort_keys=True, default=str
        )
        have = json.dumps(actual, indent=1, sort_keys=True, default=str)
        diff_text = "\n".join(
            difflib.unified_diff(want.splitlines(), have.splitlines(), "expected", "actual", lineterm="")
        )
        pytest.fail(f"{path.name}: diff result differs\n{diff_text}")


def test_every_kind_has_cases() -> None:
    kinds = {
        json.loads(p.read_text())["desired"][0]["kind"]
        for p in CASES.glob("*.json")
        if json.loads(p.read_text())["desired"]
    }
    assert kinds == {"KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding"}
