"""Control endpoints under ``/_emulator`` (not ServiceNow's): reset and seed state, read and clear the request
log, read and change faults at run time. They need no credentials and are never faulted or logged.

Must never import: the client, the engine.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mtls_config.emulator.faults import FaultState, RequestLog
from mtls_config.emulator.models import Backend


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def reset(request: Request) -> Response:
    seed = request.query_params.get("seed")
    _backend(request).reset(seed=None if seed is None else seed.lower() == "true")
    log: RequestLog = request.app.state.request_log
    log.clear()
    return JSONResponse({"status": "reset"})


async def seed(request: Request) -> Response:
    _backend(request).seed()
    return JSONResponse({"status": "seeded"})


async def requests_log(request: Request) -> Response:
    log: RequestLog = request.app.state.request_log
    if request.method == "DELETE":
        log.clear()
        return Response(status_code=204)
    return JSONResponse(log.snapshot())


async def faults(request: Request) -> Response:
    state: FaultState = request.app.state.faults
    if request.method == "PATCH":
        try:
            changes = json.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of fault settings")
            state.update(changes)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(state.as_dict())
