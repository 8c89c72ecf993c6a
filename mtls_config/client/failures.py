"""Turning what the instance answered into the project's exception tree, once, at the boundary.

Every message built here passes through ``mtls_config.redaction`` (before it is shortened) so that a secret the
instance (or a proxy) echoes back, a keystore password in a request body as much as a credential or a token,
can never reach an error, a log line or a traceback.
Never imports the emulator or the CLI.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mtls_config.errors import (
    AuthenticationFailed,
    BadResponse,
    ConflictError,
    InstanceError,
    InstanceUnreachable,
    PermissionDenied,
    RateLimited,
    RecordNotFound,
    TableNotFound,
)
from mtls_config.jsontext import loads
from mtls_config.redaction import redact

ADMIN_TABLES = frozenset({"sys_certificate", "sys_protocol_profile", "sys_attachment", "sys_properties"})
MAX_ANSWER_DEPTH = 16
MESSAGE_TABLES = frozenset({"sys_rest_message", "sys_rest_message_fn", "sys_soap_message", "sys_soap_message_function"})
_TABLE_PATH = re.compile(r"^/api/now/(?:v\d+/)?table/([^/?]+)")
_ATTACHMENT_PATH = re.compile(r"^/api/now/(?:v\d+/)?attachment")


def table_of(path: str) -> str | None:
    """The table a Table/Attachment API path is about (``sys_attachment`` for the Attachment API)."""
    match = _TABLE_PATH.match(path)
    if match:
        return match.group(1)
    if _ATTACHMENT_PATH.match(path):
        return "sys_attachment"
    return None


def roles_hint(table: str | None) -> str:
    if table in MESSAGE_TABLES:
        return f"the user needs the web_service_admin or admin role to change {table}"
    if table in ADMIN_TABLES:
        return f"the user needs the admin role for {table} (certificates, protocol profiles and their attachments)"
    if table:
        return f"the user lacks a role or ACL for {table}: admin for certificates and profiles, web_service_admin or admin for messages"
    return "the user lacks a role or ACL: admin for certificates and profiles, web_service_admin or admin for messages"


def error_envelope(body: bytes) -> tuple[str, str]:
    """``(message, detail)`` from the instance's ``{"error": {"message", "detail"}}`` envelope, or ``("", "")``."""
    try:
        data = loads(body, max_depth=MAX_ANSWER_DEPTH)
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error")
    if isinstance(error, dict):
        return _text(error.get("message")), _text(error.get("detail"))
    if isinstance(error, str):  # OAuth: {"error": "invalid_client", "error_description": "..."}
        return error, _text(data.get("error_description"))
    return "", ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def describe(message: str, detail: str, limit: int = 500) -> str:
    """What the instance said, secrets masked, at most ``limit`` characters. Masked before it is cut: a secret cut
    in half would no longer be recognised."""
    text = message
    if detail and detail != message:
        text = f"{message}: {detail}" if message else detail
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_for_status(
    status: int,
    body: bytes,
    *,
    method: str,
    path: str,
    instance: str,
    attempts: int = 1,
) -> InstanceError:
    """The exception for an HTTP error status (``status`` >= 400)."""
    message, detail = error_envelope(body)
    said = describe(message, detail)
    where = f"{method} {path}"
    table = table_of(path)
    suffix = f": {said}" if said else ""
    if status == 401:
        return AuthenticationFailed(
            f"{instance} refused the credentials ({where} -> 401){suffix}",
            hint="check SN_USERNAME/SN_PASSWORD or SN_CLIENT_ID/SN_CLIENT_SECRET (or the variables your project "
            "file names), and that the user is active and allowed to use web services",
            status=status,
        )
    if status == 403:
        return PermissionDenied(f"{where} was denied (403){suffix}", hint=roles_hint(table), status=status)
    if status == 404:
        return RecordNotFound(
            f"{where} found nothing (404){suffix}",
            hint="the record does not exist, or an ACL hides it from this user",
            status=status,
        )
    if status == 400 and message.lower().startswith("invalid table"):
        return TableNotFound(
            f"{instance} has no table {table or '?'} ({where} -> 400){suffix}",
            hint="the table does not exist on this instance: is the plugin that provides it active?",
            status=status,
        )
    if status == 409:
        return ConflictError(f"{where} conflicted with the record's current state (409){suffix}", status=status)
    if status == 429:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return RateLimited(
            f"{instance} rate-limited {where}{tries} (429){suffix}",
            hint="lower --parallelism, or ask the instance admin to raise the REST rate limit for this user",
            status=status,
        )
    if status in (502, 503, 504):
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return InstanceUnreachable(
            f"{instance} is unavailable: {where} answered {status}{tries}{suffix}",
            hint="the instance or a proxy in front of it is down or overloaded; try again later",
            status=status,
        )
    if status in (406, 415):
        return BadResponse(f"{where} was refused as {status} (format not accepted){suffix}", status=status)
    return InstanceError(f"{where} failed with {status}{suffix}", status=status)


def redirect_error(status: int, location: str, *, method: str, path: str, instance: str) -> BadResponse:
    shown = re.sub(r"\?.*$", "", location)  # the query of a login redirect can carry state tokens
    return BadResponse(
        f"{method} {path} was redirected ({status}) to {shown or 'an unknown location'}; redirects are not followed",
        hint=f"check the instance URL ({instance}); a redirect usually means a login page, a renamed "
        "instance or http:// instead of https://, and following it could send credentials elsewhere",
        status=status,
    )
