"""Control endpoints under ``/_emulator`` (not ServiceNow's): reset and seed state, read and clear the request
log, read and change faults at run time. They are never faulted or logged.

They need what the instance API needs: the served user's credentials (basic or bearer), with the admin role.
A request that changes state also needs a JSON object body (``Content-Type: application/json``): a web page on
another origin can send a form or a plain POST, but not a JSON one without the CORS preflight the emulator never
grants. Errors come in the instance's envelope.

Must never import: the client, the engine.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mtls_config.emulator.exceptions import BadRequest, Forbidden, InstanceError, UnsupportedMediaType
from mtls_config.emulator.faults import FaultState, RequestLog
from mtls_config.emulator.models import Backend
from mtls_config.emulator.responses import Handler, authenticate, error_response


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def control_endpoint(handler: Handler) -> Handler:
    """The admin's credentials first; then, for a change, a JSON object body."""

    async def guarded(request: Request) -> Response:
        try:
            user = authenticate(request)
            if "admin" not in user.roles:
                raise Forbidden("Operation Failed", "The emulator's control endpoints need the admin role")
            if request.method != "GET":
                request.state.body = await _json_object(request)
            return await handler(request)
        except InstanceError as exc:
            return error_response(exc)

    return guarded


async def _json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(
            "Unsupported Media Type", "A control request that changes state needs a JSON body (application/json)"
        )
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("Exception while reading request", "Cannot decode JSON body") from None
    if not isinstance(body, dict):
        raise BadRequest("Exception while reading request", "The body must be a JSON object")
    return body


@control_endpoint
async def reset(request: Request) -> Response:
    """``{"seed": false}`` (or ``?seed=false``) leaves the instance empty but for its accounts."""
    seed: Any = request.state.body.get("seed", request.query_params.get("seed"))
    if isinstance(seed, str):
        seed = seed.lower() == "true"
    _backend(request).reset(seed=None if seed is None else bool(seed))
    log: RequestLog = request.app.state.request_log
    log.clear()
    return JSONResponse({"status": "reset"})


@control_endpoint
async def seed(request: Request) -> Response:
    _backend(request).seed()
    return JSONResponse({"status": "seeded"})


@control_endpoint
async def requests_log(request: Request) -> Response:
    log: RequestLog = request.app.state.request_log
    if request.method == "DELETE":
        log.clear()
        return Response(status_code=204)
    return JSONResponse(log.snapshot())


@control_endpoint
async def faults(request: Request) -> Response:
    state: FaultState = request.app.state.faults
    if request.method == "PATCH":
        try:
            state.update(dict(request.state.body))
        except (ValueError, TypeError) as exc:
            raise BadRequest("Invalid fault settings", str(exc)) from None
    return JSONResponse(state.as_dict())
