"""A local, faithful ServiceNow instance for the tables mtls-config manages (Table, Attachment and Batch APIs,
basic/bearer auth with roles, OAuth token endpoint, faults, SQLite persistence).

Laid out like a moto service: ``urls`` (routing), ``responses`` (parse, call the backend, render), ``models``
(the backend: records and attachments, no HTTP) built from ``store`` (SQLite persistence), ``auth`` (users,
roles, tokens), ``rules`` (ACLs, business rules, derived fields), ``fields`` (values as read, shown and stored),
``tables`` and ``catalog`` (the schema and the data dictionary made from it); ``exceptions`` (errors carrying
their status and the instance's envelope), ``guard`` and ``faults`` (the layers around the routes), ``server``
(uvicorn runner, threaded test server, TLS).

    from mtls_config.emulator import create_app, EmulatorConfig
    app = create_app(EmulatorConfig())
    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://emulator.local")

Must never import: the client, the engine, ``mtls_config.keystore``, the CLI. The engine never imports this
package: it reaches the emulator only through the client's transport.
"""

from mtls_config.emulator.app import create_app
from mtls_config.emulator.auth import User
from mtls_config.emulator.config import EmulatorConfig, Faults
from mtls_config.emulator.faults import ConnectionDropped
from mtls_config.emulator.models import Backend

__all__ = ["Backend", "ConnectionDropped", "EmulatorConfig", "Faults", "User", "create_app"]
