"""ProtocolProfile: a ``sys_protocol_profile`` (protocol = the scheme, default_port, keystore reference)."""

from __future__ import annotations

from typing import Any

from mtls_config.resources.common import DesiredResource, LiveRecord, LiveResource, ref_value, to_int

KIND = "ProtocolProfile"
TABLE = "sys_protocol_profile"
RECORD_FIELDS = ("protocol", "default_port", "keystore")


def canonical_fields(*, port: int, key_store: str) -> dict[str, Any]:
    return {"default_port": port, "keystore": key_store}


def live(address: str, name: str, record: LiveRecord, certificate_names: dict[str, str]) -> LiveResource:
    keystore_id = ref_value(record.values.get("keystore"))
    keystore = certificate_names.get(keystore_id, f"(sys_id {keystore_id})" if keystore_id else "")
    fields = {"default_port": to_int(record.get("default_port")), "keystore": keystore}
    return LiveResource(address, KIND, name, TABLE, {"": record}, fields)


def payload(desired: DesiredResource, keystore_sys_id: str) -> dict[str, str]:
    return {
        "protocol": desired.name,
        "default_port": str(desired.fields["default_port"]),
        "keystore": keystore_sys_id,
    }
