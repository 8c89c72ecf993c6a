"""The emulated instance's URL map: Table, Attachment and Batch APIs (unversioned and /v1|v2), the OAuth token
endpoint, and the ``/_emulator`` control endpoints.

Must never import: the client, the engine.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from mtls_config.emulator import control, responses

_TABLE = ["GET", "POST"]
_RECORD = ["GET", "PUT", "PATCH", "DELETE"]


def _both(path: str, endpoint: responses.Handler, methods: list[str]) -> list[BaseRoute]:
    """The route at /api/now/<path> and at /api/now/{version}/<path>."""
    return [
        Route(f"/api/now/{path}", endpoint, methods=methods),
        Route(f"/api/now/{{version}}/{path}", endpoint, methods=methods),
    ]


def routes() -> list[BaseRoute]:
    return [
        *_both("table/{table}", responses.table_collection, _TABLE),
        *_both("table/{table}/{sys_id}", responses.table_record, _RECORD),
        *_both("attachment", responses.attachment_collection, ["GET"]),
        *_both("attachment/file", responses.attachment_file_upload, ["POST"]),
        *_both("attachment/upload", responses.attachment_multipart_upload, ["POST"]),
        *_both("attachment/{sys_id}", responses.attachment_item, ["GET", "DELETE"]),
        *_both("attachment/{sys_id}/file", responses.attachment_content, ["GET"]),
        *_both("batch", responses.batch, ["POST"]),
        Route("/api/now/ui/user/current_user", responses.current_user, methods=["GET"]),
        Route("/oauth_token.do", responses.oauth_token, methods=["POST"]),
        Route("/_emulator/reset", control.reset, methods=["POST"]),
        Route("/_emulator/seed", control.seed, methods=["POST"]),
        Route("/_emulator/requests", control.requests_log, methods=["GET", "DELETE"]),
        Route("/_emulator/faults", control.faults, methods=["GET", "PATCH"]),
    ]
