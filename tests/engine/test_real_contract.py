"""What a real instance does silently, met through the CLI as a user meets it: the example stack applied to an
emulator served on 127.0.0.1 (the instance's behaviour by default: unknown fields dropped, text compared ignoring
case, reads filtered by role) and read back the way ServiceNow's own client, PySNC, reads records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer

# What PySNC sends on every Table API read (pysnc/client.py: TableAPI, GlideRecord._parameters).
PYSNC_PARAMS = {
    "sysparm_display_value": "all",
    "sysparm_exclude_reference_link": "true",
    "sysparm_suppress_pagination_header": "true",
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedServer]:
    monkeypatch.setenv("SN_USERNAME", "admin")
    monkeypatch.setenv("SN_PASSWORD", "admin")
    with ThreadedServer(create_app(EmulatorConfig())) as server:
        yield server


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def pysnc_get(server: ThreadedServer, table: str, query: str) -> list[dict[str, Any]]:
    """GlideRecord(table).add_encoded_query(query).query(), as PySNC sends it."""
    r = httpx.get(
        f"{server.url}/api/now/table/{table}",
        params={**PYSNC_PARAMS, "sysparm_query": query, "sysparm_limit": "100", "sysparm_offset": "0"},
        auth=("admin", "admin"),
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["result"]
    return rows


def test_the_soap_partner_binds_the_columns_servicenow_reads(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    profile = pysnc_get(served, "sys_protocol_profile", "protocol=globexm")[0]
    profile_id = profile["sys_id"]["value"]
    message = pysnc_get(served, "sys_soap_message", "name=Globex Orders")[0]
    assert message["enable_mutual_auth"] == {"display_value": "true", "value": "true"}
    # ServiceNow's SOAPMessage splices getDisplayValue('protocol_profile') into the URL as its scheme
    assert message["protocol_profile"] == {"display_value": "globexm", "value": profile_id}
    assert "use_mutual_auth" not in message and "protocol_name" not in message  # REST's names: not SOAP columns
    functions = {
        f["function_name"]["value"]: f
        for f in pysnc_get(served, "sys_soap_message_function", f"soap_message={message['sys_id']['value']}")
    }
    assert functions["submitOrder"]["enable_mutual_auth"]["value"] == "true"
    assert functions["submitOrder"]["protocol_profile"] == {"display_value": "globexm", "value": profile_id}
    assert functions["getStatus"]["enable_mutual_auth"]["value"] == "false"  # not listed in the spec
    assert run(["plan", "--instance", served.url], capsys)[0] == 0
