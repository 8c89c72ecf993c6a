"""The instance's HTTP face: parse a request, call the backend, render the answer as ServiceNow does
(string values, reference links, display values, pagination headers, the error envelope).

Must never import: the client, the engine, ``mtls_config.keystore``. The backend (models) must never import this.
"""

from __future__ import annotations

import base64
import binascii
import functools
import http
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from mtls_config.emulator.exceptions import (
    BadRequest,
    InstanceError,
    NotAcceptable,
    NotAuthenticated,
    RecordNotFound,
    UnsupportedMediaType,
)
from mtls_config.emulator.faults import BATCH_ITEM
from mtls_config.emulator.models import Backend, Record, User
from mtls_config.emulator.tables import Table

JSON_TYPE = "application/json;charset=UTF-8"
TABLE_LIMIT = 10000
ATTACHMENT_LIMIT = 1000
API_VERSIONS = ("v1", "v2")
Handler = Callable[[Request], Awaitable[Response]]


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, *, no_body: bool = False
) -> Response:
    # compact separators, as the instance sends its JSON
    content = b"" if no_body else json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status_code=status, headers=dict(headers or {}), media_type=JSON_TYPE)


def error_response(error: InstanceError) -> Response:
    headers = dict(error.headers)
    if isinstance(error, NotAuthenticated):
        headers.setdefault("WWW-Authenticate", 'Basic realm="Service-now"')
    return json_response(error.envelope(), error.status, headers)


def instance_endpoint(handler: Handler) -> Handler:
    """Turn the instance's errors into its envelope; other exceptions are bugs and propagate."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            if request.path_params.get("version", "v1") not in API_VERSIONS:
                raise BadRequest("Requested URI does not represent any resource", None)
            return await handler(request)
        except InstanceError as exc:
            return error_response(exc)

    return wrapper


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def authenticate(request: Request) -> User:
    backend = backend_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            name, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated() from None
        user = backend.authenticate(name, password)
        if user is None:
            raise NotAuthenticated("Required to provide Auth information")
        return user
    if scheme.lower() == "bearer":
        user = backend.token_user(credentials.strip())
        if user is None:
            raise NotAuthenticated("Invalid or expired OAuth access token")
        return user
    raise NotAuthenticated()


def check_accept(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if not accept:
        return
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if not any(k in ("application/json", "*/*", "application/*") for k in kinds):
        raise NotAcceptable(
            "Requested response format is not supported",
            f"The emulated instance answers application/json only, not '{accept}'",
        )


async def read_json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if not content_type:
        raise BadRequest("Content-Type header is required", "Send Content-Type: application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("Unsupported Media Type", f"Request body format '{content_type}' is not supported")
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise BadRequest("Exception while reading request", "Cannot decode JSON body") from None
    if isinstance(body, list):  # the instance processes only the first record of a list
        body = body[0] if body else {}
    if not isinstance(body, dict):
        raise BadRequest("Exception while reading request", "The body must be a JSON object")
    return body


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(0, int(raw))
    except ValueError:
        raise BadRequest(f"Invalid value for {name}", f"'{raw}' is not a number") from None


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


# ---------------------------------------------------------------------- rendering


class Renderer:
    """Renders records as the Table API shows them for one request's sysparm_* settings."""

    def __init__(self, request: Request, backend: Backend, table: Table) -> None:
        self.backend = backend
        self.table = table
        self.base = base_url(request)
        display = request.query_params.get("sysparm_display_value", "false").lower()
        self.display = display if display in ("true", "all") else "false"
        self.no_links = flag(request, "sysparm_exclude_reference_link")
        fields_param = request.query_params.get("sysparm_fields", "")
        requested = [f.strip() for f in fields_param.split(",") if f.strip()]
        # Invalid field names are ignored, as on the instance.
        self.fields = [f for f in requested if backend.is_valid_field(table, f)] if requested else table.column_names()

    def render(self, record: Record) -> dict[str, Any]:
        return {name: self._value(record, name) for name in self.fields}

    def _value(self, record: Record, path: str) -> Any:
        table, name = self.table, path
        if "." in path:
            *walk, name = path.split(".")
            value = self.backend.value_at(self.table, record, path)
            for step in walk:
                column = table.column(step)
                target = self.backend.schema.get(column.reference or "") if column else None
                if target is None:
                    return value
                table = target
        else:
            value = record.get(path, "")
        column = table.column(name)
        if column is None:
            return value
        display = self.backend.display_value(column, value) if self.display != "false" else value
        if column.type == "reference" and value and column.reference:
            link = f"{self.base}/api/now/table/{column.reference}" + (
                f"/{value}" if column.reference_key == "sys_id" else f"?{column.reference_key}={value}"
            )
            if self.display == "false":
                return value if self.no_links else {"link": link, "value": value}
            if self.display == "true":
                return display if self.no_links else {"display_value": display, "link": link}
            out = {"display_value": display, "value": value}
            if not self.no_links:
                out["link"] = link
            return out
        if self.display == "true":
            return display
        if self.display == "all":
            return {"display_value": display, "value": value}
        return value


def pagination_headers(request: Request, total: int, limit: int, offset: int, count: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    if count:
        headers["X-Total-Count"] = str(total)
    if flag(request, "sysparm_suppress_pagination_header"):
        return headers
    params = [
        (k, v)
        for k, v in parse_qsl(request.url.query, keep_blank_values=True)
        if k not in ("sysparm_offset", "sysparm_limit")
    ]
    # the rest of the query encoded once: a query of names is kilobytes, and each link repeats it
    here = f"{base_url(request)}{request.url.path}?" + urlencode([*params, ("sysparm_limit", str(limit))])

    def link(at: int, rel: str) -> str:
        return f'<{here}&{urlencode([("sysparm_offset", str(at))])}>;rel="{rel}"'

    links = [link(0, "first")]
    if limit > 0:
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        if offset + limit < total:
            links.append(link(offset + limit, "next"))
        last = max(0, ((total - 1) // limit) * limit) if total else 0
        links.append(link(last, "last"))
    headers["Link"] = ",".join(links)
    return headers


# ---------------------------------------------------------------------- Table API


def _table_query(request: Request) -> str:
    query = request.query_params.get("sysparm_query")
    if query is not None:
        return query
    # name=value parameters filter instead of sysparm_query (the two are mutually exclusive)
    return "^".join(f"{k}={v}" for k, v in request.query_params.multi_items() if not k.startswith("sysparm_"))


@instance_endpoint
async def table_collection(request: Request) -> Response:
    user = authenticate(request)
    check_accept(request)
    backend = backend_of(request)
    table = backend.table(request.path_params["table"])
    if request.method == "POST":
        return await _table_insert(request, backend, table, user)
    limit = int_param(request, "sysparm_limit", TABLE_LIMIT)
    offset = int_param(request, "sysparm_offset", 0)
    query = _table_query(request)
    renderer = Renderer(request, backend, table)

    def list_and_render() -> tuple[list[dict[str, Any]], int]:
        result = backend.list(table.name, user, query=query, limit=limit, offset=offset)
        return [renderer.render(r) for r in result.records], result.total

    # A query's cost grows with terms x rows: worked out in a thread, so that other clients are answered meanwhile.
    rendered, total = await run_in_threadpool(list_and_render)
    if not rendered and request.path_params.get("version") == "v1" and backend.config.v1_empty_list_404:
        raise RecordNotFound("No records found")
    count = not flag(request, "sysparm_no_count")
    headers = pagination_headers(request, total, limit, offset, count)
    return json_response({"result": rendered}, 200, headers)


async def _table_insert(request: Request, backend: Backend, table: Table, user: User) -> Response:
    body = await read_json_body(request)
    record = backend.insert(table.name, body, user, input_display_value=flag(request, "sysparm_input_display_value"))
    location = f"{base_url(request)}{request.url.path.rstrip('/')}/{record['sys_id']}"
    no_body = request.headers.get("x-no-response-body", "").lower() == "true"
    return json_response(
        {"result": Renderer(request, backend, table).render(record)}, 201, {"Location": location}, no_body=no_body
    )


@instance_endpoint
async def table_record(request: Request) -> Response:
    user = authenticate(request)
    check_accept(request)
    backend = backend_of(request)
    table = backend.table(request.path_params["table"])
    sys_id = request.path_params["sys_id"]
    if request.method == "DELETE":
        backend.delete(table.name, sys_id, user)
        return Response(status_code=204)
    if request.method in ("PUT", "PATCH"):
        body = await read_json_body(request)
        record = backend.update(
            table.name, sys_id, body, user, input_display_value=flag(request, "sysparm_input_display_value")
        )
        no_body = request.headers.get("x-no-response-body", "").lower() == "true"
        return json_response({"result": Renderer(request, backend, table).render(record)}, no_body=no_body)
    record = backend.get(table.name, sys_id, user)
    return json_response({"result": Renderer(request, backend, table).render(record)})


# ---------------------------------------------------------------------- Attachment API


def attachment_view(request: Request, record: Record, backend: Backend) -> dict[str, str]:
    table = backend.schema["sys_attachment"]
    view = {name: record.get(name, "") for name in table.column_names()}
    view["download_link"] = f"{base_url(request)}/api/now/attachment/{record['sys_id']}/file"
    return view


@instance_endpoint
async def attachment_collection(request: Request) -> Response:
    user = authenticate(request)
    check_accept(request)
    backend = backend_of(request)
    limit = int_param(request, "sysparm_limit", ATTACHMENT_LIMIT)
    offset = int_param(request, "sysparm_offset", 0)
    query = request.query_params.get("sysparm_query", "")
    result = await run_in_threadpool(backend.list, "sys_attachment", user, query=query, limit=limit, offset=offset)
    headers = pagination_headers(request, result.total, limit, offset, True)
    return json_response({"result": [attachment_view(request, r, backend) for r in result.records]}, 200, headers)


async def _created_attachment(request: Request, backend: Backend, user: User, record: Record) -> Response:
    view: dict[str, str] = attachment_view(request, record, backend)
    view["created_by_name"] = view["updated_by_name"] = user.name
    location = f"{base_url(request)}/api/now/v1/attachment/{record['sys_id']}/file"
    return json_response({"result": view}, 201, {"Location": location})


@instance_endpoint
async def attachment_file_upload(request: Request) -> Response:
    user = authenticate(request)
    check_accept(request)
    backend = backend_of(request)
    params = request.query_params
    missing = [n for n in ("table_name", "table_sys_id", "file_name") if not params.get(n)]
    if missing:
        raise BadRequest("Failed to create the attachment", f"Missing required parameter(s): {', '.join(missing)}")
    content_type = request.headers.get("content-type", "")
    if not content_type:
        raise BadRequest("Failed to create the attachment", "The Content-Type header is required")
    record = backend.add_attachment(
        user,
        table_name=params["table_name"],
        table_sys_id=params["table_sys_id"],
        file_name=params["file_name"],
        content_type=content_type,
        content=await request.body(),
    )
    return await _created_attachment(request, backend, user, record)


@instance_endpoint
async def attachment_multipart_upload(request: Request) -> Response:
    user = authenticate(request)
    check_accept(request)
    backend = backend_of(request)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("Unsupported Media Type", "Send multipart/form-data")
    async with request.form() as form:
        table_name = form.get("table_name")
        table_sys_id = form.get("table_sys_id")
        upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
        if not isinstance(table_name, str) or not isinstance(table_sys_id, str) or upload is None:
            raise BadRequest(
                "Failed to create the attachment",
                "Form fields table_name and table_sys_id and a file part are required",
            )
        content = await upload.read()
        record = backend.add_attachment(
            user,
            table_name=table_name,
            table_sys_id=table_sys_id,
            file_name=upload.filename or "attachment",
            content_type=upload.content_type or "application/octet-stream",
            content=content,
        )
    return await _created_attachment(request, backend, user, record)


@instance_endpoint
async def attachment_item(request: Request) -> Response:
    user = authenticate(request)
    backend = backend_of(request)
    sys_id = request.path_params["sys_id"]
    if request.method == "DELETE":
        backend.delete_attachment(sys_id, user)
        return Response(status_code=204)
    check_accept(request)
    record, _ = backend.attachment(sys_id, user)
    return json_response({"result": attachment_view(request, record, backend)})


@instance_endpoint
async def attachment_content(request: Request) -> Response:
    user = authenticate(request)
    backend = backend_of(request)
    record, content = backend.attachment(request.path_params["sys_id"], user)
    view = attachment_view(request, record, backend)
    return Response(
        content,
        media_type=record.get("content_type") or "application/octet-stream",
        headers={"X-Attachment-Metadata": json.dumps(view, separators=(",", ":"))},
    )


# ---------------------------------------------------------------------- Batch API


@instance_endpoint
async def batch(request: Request) -> Response:
    authenticate(request)
    check_accept(request)
    backend = backend_of(request)
    body = await read_json_body(request)
    items = body.get("rest_requests")
    if not isinstance(items, list):
        raise BadRequest("Invalid batch request", "rest_requests is required and must be a list")
    started = time.monotonic()
    limits = backend.config
    serviced: list[dict[str, Any]] = []
    unserviced: list[str] = []
    for index, item in enumerate(items):
        item_id = str(item.get("id", "")) if isinstance(item, dict) else ""
        over_count = limits.batch_max_requests is not None and index >= limits.batch_max_requests
        # The time budget is checked between items: the item that overruns it still completes.
        over_time = (
            index > 0 and limits.batch_max_seconds is not None and time.monotonic() - started > limits.batch_max_seconds
        )
        if over_count or over_time or not isinstance(item, dict):
            unserviced.append(item_id)
            continue
        serviced.append(await _run_batch_item(request, item))
    return json_response(
        {
            # always a string: clients (PySNC) send a number and compare with str(...)
            "batch_request_id": str(body.get("batch_request_id", "")),
            "serviced_requests": serviced,
            "unserviced_requests": unserviced,
        }
    )


async def _run_batch_item(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    url = str(item.get("url", ""))
    if "://" in url.split("?")[0]:  # an absolute URL: keep the path and query (the host is this instance)
        url = "/" + url.split("://", 1)[1].partition("/")[2]
    path, _, query = url.partition("?")
    headers: list[tuple[bytes, bytes]] = []
    names: set[str] = set()
    for header in item.get("headers") or []:
        if isinstance(header, dict) and "name" in header:
            names.add(str(header["name"]).lower())
            name, value = str(header["name"]).lower(), str(header.get("value", ""))
            headers.append((name.encode("latin-1", "replace"), value.encode("latin-1", "replace")))
    # Sub-requests run as the batch's caller, on the same host.
    for name in ("authorization", "host"):
        if name not in names and name in request.headers:
            headers.append((name.encode(), request.headers[name].encode("latin-1")))
    encoded = item.get("body") or ""
    try:
        body = base64.b64decode(encoded) if isinstance(encoded, str) else b""  # not base64 text: no body
    except (binascii.Error, ValueError):
        body = b""
    if body and "content-length" not in names:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": str(item.get("method", "GET")).upper(),
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        BATCH_ITEM: True,
    }
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if sent_body:
            return {"type": "http.disconnect"}
        sent_body = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    response_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.app(scope, receive, send)
    out: dict[str, Any] = {
        "id": str(item.get("id", "")),
        "status_code": status,
        "status_text": _status_text(status),
        "headers": []
        if item.get("exclude_response_headers")
        else [{"name": _header_name(k), "value": v.decode("latin-1")} for k, v in response_headers],
        "body": base64.b64encode(b"".join(chunks)).decode(),
        "execution_time": int((time.monotonic() - started) * 1000),
    }
    return out


def _status_text(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _header_name(raw: bytes) -> str:
    return "-".join(part.capitalize() for part in raw.decode("latin-1").split("-"))


# ---------------------------------------------------------------------- the UI API's current user


@instance_endpoint
async def current_user(request: Request) -> Response:
    """``GET /api/now/ui/user/current_user``: who the caller is (an undocumented UI API many clients use; [I])."""
    user = authenticate(request)
    check_accept(request)
    return json_response({"result": backend_of(request).current_user(user)})


# ---------------------------------------------------------------------- OAuth


async def oauth_token(request: Request) -> Response:
    backend = backend_of(request)
    try:
        async with request.form() as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if "client_id" not in fields and scheme.lower() == "basic":
            # client_secret_basic: the client authenticates with HTTP Basic instead of form fields
            try:
                client_id, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id, secret = "", ""
            fields.update(client_id=client_id, client_secret=secret)
        return json_response(backend.issue_token(grant_type=fields.get("grant_type", ""), form=fields))
    except InstanceError as exc:
        return error_response(exc)


# ---------------------------------------------------------------------- errors outside any route


async def unknown_resource(request: Request) -> Response:
    return error_response(BadRequest("Requested URI does not represent any resource", None))
