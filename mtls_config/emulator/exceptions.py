"""Errors of the emulated instance: each carries its HTTP status and renders as ServiceNow's error envelope
``{"error": {"message", "detail"}, "status": "failure"}``.

Raised by the backend (models) and the request layer; turned into responses in one place (responses.py).
Must never import: starlette or any HTTP library (the backend raises these), the client, the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InstanceError(Exception):
    """An answer the instance gives as an error envelope."""

    status = 400

    def __init__(
        self,
        message: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "detail": self.detail}, "status": "failure"}


class BadRequest(InstanceError):
    status = 400


class InvalidTable(BadRequest):
    def __init__(self, table: str) -> None:
        super().__init__(f"Invalid table {table}", None)


class NotAuthenticated(InstanceError):
    status = 401

    def __init__(self, detail: str = "Required to provide Auth information") -> None:
        super().__init__("User Not Authenticated", detail)


class Forbidden(InstanceError):
    status = 403


class AclDenied(Forbidden):
    """A write refused by an ACL; ``operation`` is Insert, Update or Delete."""

    def __init__(self, operation: str) -> None:
        super().__init__("Operation Failed", f"ACL Exception {operation} Failed due to security constraints")


class ReadDenied(Forbidden):
    def __init__(self, table: str) -> None:
        super().__init__("Insufficient rights to query records", f"No permission to read table '{table}'")


class RecordNotFound(InstanceError):
    status = 404

    def __init__(self, detail: str = "Record doesn't exist or ACL restricts the record retrieval") -> None:
        super().__init__("No Record found", detail)


class NotAcceptable(InstanceError):
    status = 406


class UnsupportedMediaType(InstanceError):
    status = 415


class RateLimitExceeded(InstanceError):
    status = 429


class ServerError(InstanceError):
    status = 500


class OAuthRefused(InstanceError):
    """The token endpoint's refusal; rendered with OAuth's own body, not the Table API envelope."""

    status = 401

    def __init__(self, error: str = "access_denied") -> None:
        super().__init__(error, None)
        self.error = error

    def envelope(self) -> dict[str, Any]:
        return {"error_description": self.error, "error": "server_error"}
