"""MessageBinding: mutual auth on an existing REST/SOAP message and (optionally) its functions.

A binding owns only ``use_mutual_auth`` and ``protocol_name`` of the records it binds. Its canonical
fields are nested by part: ``{"message": {...}, "functions": {"<name>": {...}}}``. Removing a binding
restores the values found before it took ownership (kept in the inventory); it never deletes a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtls_config.resources.common import LiveRecord, LiveResource, ref_value, to_bool

KIND = "MessageBinding"
OWNED = ("use_mutual_auth", "protocol_name")


@dataclass(frozen=True)
class MessageTables:
    message: str
    function: str
    parent_field: str  # the function's reference to its message
    endpoint_field: str


TABLES = {
    "rest": MessageTables("sys_rest_message", "sys_rest_message_fn", "rest_message", "rest_endpoint"),
    "soap": MessageTables("sys_soap_message", "sys_soap_message_function", "soap_message", "soap_endpoint"),
}


def part_fields(protocol: str) -> dict[str, Any]:
    return {"use_mutual_auth": True, "protocol_name": protocol}


def canonical_fields(protocol: str, function_names: list[str]) -> dict[str, Any]:
    return {
        "message": part_fields(protocol),
        "functions": {fn: part_fields(protocol) for fn in sorted(function_names)},
    }


def record_fields(record: LiveRecord, profile_names: Mapping[str, str]) -> dict[str, Any]:
    profile_id = ref_value(record.values.get("protocol_name"))
    protocol = profile_names.get(profile_id, f"(sys_id {profile_id})" if profile_id else "")
    return {"use_mutual_auth": to_bool(record.get("use_mutual_auth")), "protocol_name": protocol}


def live(
    address: str,
    name: str,
    message: LiveRecord,
    functions: Mapping[str, LiveRecord],
    wanted_functions: list[str],
    profile_names: Mapping[str, str],
) -> LiveResource:
    records: dict[str, LiveRecord] = {"message": message}
    fn_fields: dict[str, Any] = {}
    for fn in wanted_functions:
        rec = functions.get(fn)
        if rec is not None:
            records[f"fn:{fn}"] = rec
            fn_fields[fn] = record_fields(rec, profile_names)
    fields = {"message": record_fields(message, profile_names), "functions": fn_fields}
    return LiveResource(address, KIND, name, message.table, records, fields)


def originals(record: LiveRecord) -> dict[str, str]:
    """The owned fields' raw values before a binding takes them over (restored on removal)."""
    return {
        "use_mutual_auth": record.get("use_mutual_auth") or "false",
        "protocol_name": ref_value(record.values.get("protocol_name")),
    }
