"""Batch API values: what the engine asks for (``BatchRequest``) and what it gets back (``BatchResponse``),
and their JSON wire forms for ``POST /api/now/v1/batch`` (bodies base64-encoded both ways).

Never imports httpx, the emulator or the CLI.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtls_config.client.answers import check_record, check_records
from mtls_config.errors import BadResponse
from mtls_config.jsontext import loads
from mtls_config.redaction import redact

BATCH_PATH = "/api/now/v1/batch"
SAFE_METHODS = frozenset({"GET", "HEAD", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class BatchRequest:
    id: str
    method: str
    url: str  # path and query, e.g. "/api/now/table/sys_certificate?sysparm_limit=1"
    body: Mapping[str, Any] | None = field(default=None, repr=False)  # may hold the keystore password
    # A raw body instead of JSON (an attachment upload); the Batch API carries any body base64-encoded.
    content: bytes | None = field(default=None, repr=False)
    content_type: str = "application/json"

    def encoded_body(self) -> str | None:
        if self.content is not None:
            return base64.b64encode(self.content).decode("ascii")
        if self.body is None:
            return None
        return base64.b64encode(json.dumps(self.body, separators=(",", ":")).encode("utf-8")).decode("ascii")

    def wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.id,
            "method": self.method.upper(),
            "url": self.url,
            "headers": [
                {"name": "Accept", "value": "application/json"},
                {"name": "Content-Type", "value": self.content_type},
            ],
            "exclude_response_headers": False,
        }
        encoded = self.encoded_body()
        if encoded is not None:
            item["body"] = encoded
        return item

    def wire_size(self) -> int:
        return len(json.dumps(self.wire(), separators=(",", ":")))

    @property
    def safe_to_repeat(self) -> bool:
        return self.method.upper() in SAFE_METHODS


@dataclass(frozen=True)
class BatchResponse:
    id: str
    status: int
    body: Any  # decoded JSON, or None when the item had no (JSON) body
    headers: Mapping[str, str] = field(default_factory=dict)
    error_message: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def done(self, method: str) -> bool:
        """The item's effect holds: it succeeded, or it was a DELETE of a record already gone."""
        return self.ok or (method.upper() == "DELETE" and self.status == 404)


def parse_batch_reply(data: Any) -> tuple[list[BatchResponse], list[str]]:
    """``(serviced, unserviced ids)`` from a batch reply body."""
    if not isinstance(data, dict) or not isinstance(data.get("serviced_requests", []), list):
        raise BadResponse("the Batch API answered something that is not a batch reply")
    serviced = [_serviced(item) for item in data.get("serviced_requests") or []]
    unserviced: list[str] = []
    for item in data.get("unserviced_requests") or []:
        # Documented as "IDs of the requests"; accept request objects too, as some releases echo them.
        if isinstance(item, str):
            unserviced.append(item)
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            unserviced.append(item["id"])
        else:
            raise BadResponse("the Batch API listed an unserviced request without an id")
    return serviced, unserviced


def _serviced(item: Any) -> BatchResponse:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise BadResponse("the Batch API answered a serviced request without an id")
    try:
        status = int(item.get("status_code", 0))
    except (TypeError, ValueError, OverflowError):
        raise BadResponse(f"batch item {item['id']} has no readable status_code") from None
    headers = {
        str(h.get("name")): str(h.get("value"))
        for h in item.get("headers") or []
        if isinstance(h, dict) and h.get("name") is not None
    }
    body: Any = None
    raw = item.get("body")
    if isinstance(raw, str) and raw:
        try:
            decoded = base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadResponse(f"batch item {item['id']} has a body that is not base64") from None
        try:
            body = loads(decoded, max_depth=16)
        except ValueError:
            body = None
        result = body.get("result") if isinstance(body, dict) else None
        if isinstance(result, dict):
            check_record(result, f"batch item {item['id']}")
        elif isinstance(result, list):
            check_records(result, f"batch item {item['id']}")
    return BatchResponse(
        id=item["id"],
        status=status,
        body=body,
        headers=headers,
        error_message=redact(str(item.get("error_message") or "")),  # may echo the item's body
    )


def split_batches(requests: Sequence[BatchRequest], *, max_items: int, max_bytes: int) -> list[list[BatchRequest]]:
    """Consecutive groups of at most ``max_items`` requests and about ``max_bytes`` of JSON each."""
    groups: list[list[BatchRequest]] = []
    current: list[BatchRequest] = []
    size = 0
    for request in requests:
        item_size = request.wire_size() + 1
        if current and (len(current) >= max_items or size + item_size > max_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(request)
        size += item_size
    if current:
        groups.append(current)
    return groups
