"""Reading instance rows into the engine's records: natural-key queries, attachment listings, row parsing.

The primitives observe, apply, import and the inventory store share. Only reads. Never imports the client,
the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mtls_config.errors import BadResponse, PlanError
from mtls_config.instance import Instance
from mtls_config.resources.common import Attachment, LiveRecord, live_record_made, ref_value, to_int

_TEXT_ONLY = frozenset({str})


def live_record(table: str, row: Mapping[str, Any]) -> LiveRecord:
    """``row`` as a record of text values (a reference's sys_id for a reference object, "" for null). A row all of
    text (what the engine's reads get) is held as it is, not copied: a plan holds one per resource (issue 18)."""
    sys_id = row.get("sys_id")
    if not isinstance(sys_id, str) or not sys_id:
        raise BadResponse(f"a {table} record came back without a sys_id")
    if _TEXT_ONLY.issuperset(map(type, row.values())):
        values = row
    else:
        values = {k: v if isinstance(v, str) else ref_value(v) for k, v in row.items()}
    return live_record_made(table, sys_id, mod_count_of(values.get("sys_mod_count")), values)


# The counts most records have, as the instance writes them: looked up, not parsed (two reads of 20 000 rows a plan).
_SMALL_COUNTS = {str(n): n for n in range(1000)}


def mod_count_of(value: str | None) -> int:
    """A record's ``sys_mod_count`` text as a number (``to_int``; 0 for none)."""
    count = _SMALL_COUNTS.get(value) if value is not None else None
    return count if count is not None else to_int(value) or 0


def attachment_of(row: dict[str, Any]) -> Attachment:
    return Attachment(
        sys_id=str(row.get("sys_id", "")),
        file_name=str(row.get("file_name", "")),
        size=to_int(str(row.get("size_bytes", ""))) or 0,
        content_type=str(row.get("content_type", "")),
    )


def attachments_by_record(rows: Iterable[dict[str, Any]]) -> dict[str, list[Attachment]]:
    """Attachment metadata rows as ``Attachment``s, by the sys_id of the record each is attached to, in sys_id order."""
    grouped: dict[str, list[Attachment]] = {}
    for row in rows:
        grouped.setdefault(str(row.get("table_sys_id", "")), []).append(attachment_of(row))
    for group in grouped.values():
        group.sort(key=lambda a: a.sys_id)
    return grouped


async def read_in(
    client: Instance, table: str, field_name: str, values: Iterable[str], fields: Sequence[str] | None
) -> list[LiveRecord]:
    """Records whose ``field_name`` is one of ``values`` (with ``fields``, or every column when None): the client
    sends one query per URL-sized chunk, all at once, with large pages. A ``^`` cannot be put in an encoded query at
    all: such a value is a plan error."""
    wanted = sorted(set(values))
    if not wanted:
        return []
    caret = [v for v in wanted if "^" in v]
    if caret:
        raise PlanError(
            f"cannot look up {table} records by {field_name} {caret[0]!r}: "
            "the Table API's encoded queries cannot hold a '^'",
            hint="rename the record (and the spec) without '^'",
        )
    rows = await client.list_in(
        table, field_name, wanted, fields=None if fields is None else list(fields), page_size=10000
    )
    return [live_record(table, row) for row in rows]
