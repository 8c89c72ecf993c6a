"""Checking what the instance answered before anything uses it, and every path before a request goes out.

The engine trusts the rows the client hands it: a ``sys_id`` goes into URLs (``../sys_user/x`` would be
normalised by httpx into another table), a ``sys_mod_count`` into arithmetic (``"1e999"`` overflows), and
nesting into recursive code. So the client checks, at its boundary:

- JSON bodies parse with bounded nesting (``mtls_config.jsontext``);
- every record is a flat mapping (a field is text, a number, a boolean, null, or a reference/display object of
  those), its ``sys_id`` and every ``*_sys_id`` field 32 hex characters, its counters and sizes whole numbers;
- every request path is one of the API's shapes, with table names and 32-hex sys_ids only.

A failed check is a ``BadResponse`` naming the field (a value is shown shortened). Never imports httpx, the
emulator or the CLI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mtls_config.errors import BadResponse
from mtls_config.jsontext import loads

SYS_ID = re.compile(r"^[0-9a-fA-F]{32}$")
WHOLE_NUMBER = re.compile(r"^[0-9]{1,18}$")
NUMBER_FIELDS = frozenset({"sys_mod_count", "size_bytes", "size_compressed"})
MAX_ANSWER_DEPTH = 16  # a Table API answer is 3-4 levels deep, a batch reply 4
_PATHS = (
    re.compile(r"^/api/now/(?:v[0-9]+/)?table/[A-Za-z0-9_]+(?:/[0-9a-fA-F]{32})?$"),
    re.compile(r"^/api/now/(?:v[0-9]+/)?attachment(?:/file|/[0-9a-fA-F]{32}(?:/file)?)?$"),
    re.compile(r"^/api/now/v1/batch$"),
    re.compile(r"^/oauth_token\.do$"),
)


def shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_answer(body: bytes, what: str) -> Any:
    """A JSON answer body; ``ValueError`` (not JSON, or nested too deep) is for the caller to word."""
    return loads(body, max_depth=MAX_ANSWER_DEPTH)


def check_record(row: Any, op: str) -> dict[str, Any]:
    """``row`` if it is a record the engine can use; ``BadResponse`` naming the field otherwise."""
    if not isinstance(row, dict):
        raise BadResponse(f"{op}: the instance answered a record that is not an object")
    for name, value in row.items():
        if not isinstance(name, str):  # pragma: no cover - JSON object keys are always text
            raise BadResponse(f"{op}: the instance answered a record with a field name that is not text")
        if isinstance(value, dict):
            if not all(v is None or isinstance(v, str | int | float | bool) for v in value.values()):
                raise BadResponse(f"{op}: field {name} of a record is nested (a reference holds only text)")
        elif isinstance(value, list):
            raise BadResponse(f"{op}: field {name} of a record is a list; the Table API answers text")
        if name == "sys_id" or name.endswith("_sys_id"):
            raw = value.get("value") if isinstance(value, dict) else value
            empty_ok = name != "sys_id"
            if not (isinstance(raw, str) and (SYS_ID.match(raw) or (empty_ok and raw == ""))):
                if name == "sys_id" and raw is None:
                    continue  # a record without a sys_id: its reader says what it needed it for
                raise BadResponse(
                    f"{op}: the instance answered {name} {shown(raw)}, which is not 32 hex characters",
                    hint="a proxy or a customisation may be rewriting answers; mtls-config never puts such a value "
                    "into a URL",
                )
        elif name in NUMBER_FIELDS:
            raw = value.get("value") if isinstance(value, dict) else value
            text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
            if text not in (None, "") and not (isinstance(text, str) and WHOLE_NUMBER.match(text)):
                raise BadResponse(f"{op}: the instance answered {name} {shown(raw)}, which is not a whole number")
    return row


def check_records(rows: Iterable[Any], op: str) -> list[dict[str, Any]]:
    """``check_record`` of every row, in order. A page of flat text records (what the Table API answers to the
    engine's reads) is checked column by column instead: one pass of C code per column over the page's values,
    where a loop per field of every record was a third of a plan's instance side (issue 18). Whatever that cannot
    vouch for goes through ``check_record`` row by row, which decides as it always did (and words the error)."""
    rows = rows if isinstance(rows, list) else list(rows)
    if _plain_page(rows):
        return rows
    return [check_record(row, op) for row in rows]


_PLAIN_VALUES = frozenset({str, type(None)})
_HEX = re.compile(r"[0-9a-fA-F]*")
_DIGITS = re.compile(r"[0-9]*")


def _plain_page(rows: list[Any]) -> bool:
    """Whether every row is a dict of text (or null) values whose sys_id columns hold 32 hex characters (or ""
    for a ``*_sys_id`` reference) and whose counters are "" or up to 18 digits: rows ``check_record`` passes as
    they are. False means only "not vouched for here"."""
    layouts: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if type(row) is not dict or not _PLAIN_VALUES.issuperset(map(type, row.values())):
            return False
        layouts.setdefault(tuple(row), []).append(row)
    for names, group in layouts.items():
        for name in names:
            if type(name) is not str:  # pragma: no cover - JSON object keys are always text
                return False
            is_id = name == "sys_id" or name.endswith("_sys_id")
            if not is_id and name not in NUMBER_FIELDS:
                continue
            values = [row[name] for row in group]
            if None in values:
                return False
            lengths = set(map(len, values))
            joined = "".join(values)
            if is_id:
                if not (lengths <= ({32} if name == "sys_id" else {0, 32}) and _HEX.fullmatch(joined)):
                    return False
            elif not (max(lengths) <= 18 and _DIGITS.fullmatch(joined)):
                return False
    return True


def check_path(method: str, path: str) -> None:
    """Refuse to send a request whose path is not one of the API's shapes (a sys_id from the instance holding
    ``../`` or ``?`` would send it to another table)."""
    if not any(pattern.match(path) for pattern in _PATHS):
        raise BadResponse(
            f"refusing to send {method} {shown(path, 120)}: not a Table, Attachment or Batch API path with a table "
            "name and a 32-hex sys_id",
            hint="a value the instance answered (a sys_id) is not what the Table API gives; check for a proxy "
            "rewriting answers",
        )
