"""``create_app``: one emulated instance as a Starlette app. No global state: each call is a new instance.

Must never import: the client, the engine, ``mtls_config.keystore``, the CLI.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import BadRequest, InstanceError
from mtls_config.emulator.faults import FaultsMiddleware, FaultState, RequestLog
from mtls_config.emulator.guard import BodyLimitMiddleware
from mtls_config.emulator.models import Backend
from mtls_config.emulator.responses import error_response
from mtls_config.emulator.urls import routes


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:  # no route: the instance's answer for an unknown URI
        return error_response(BadRequest("Requested URI does not represent any resource", None))
    error = InstanceError(
        "Method not Supported" if exc.status_code == 405 else str(exc.detail),
        f"{request.method} is not supported by this resource" if exc.status_code == 405 else None,
        status=exc.status_code,
        headers=exc.headers,
    )
    return error_response(error)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A new emulated instance. ``app.state.backend`` is its state (reset/seed/records for tests),
    ``app.state.request_log`` its round-trip log, ``app.state.faults`` its fault settings. Raises ValueError for
    settings that name unknown tables or fields."""
    config = config or EmulatorConfig()
    backend = Backend(config)
    log = RequestLog(config.request_log_size)
    faults = FaultState(config.faults(), config.random_seed, lambda f: backend.ignore_fields(f.ignore_fields))
    app = Starlette(routes=routes(), exception_handlers={HTTPException: _http_error})
    # The middleware needs the app to know whether a socket is behind it; Starlette builds the stack lazily.
    app.user_middleware.insert(0, Middleware(FaultsMiddleware, state=faults, log=log, owner=app))
    limits = Middleware(
        BodyLimitMiddleware,
        max_request_bytes=config.max_request_bytes,
        max_attachment_bytes=config.max_attachment_bytes,
    )
    app.user_middleware.insert(0, limits)  # outermost: a refused request reaches nothing else
    app.state.config = config
    app.state.backend = backend
    app.state.request_log = log
    app.state.faults = faults
    app.state.connection_mode = "asgi"
    return app
