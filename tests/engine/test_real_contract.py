"""What a real instance does silently, met through the CLI as a user meets it: the example stack applied to an
emulator served on 127.0.0.1 (the instance's behaviour by default: unknown fields dropped, text compared ignoring
case, reads filtered by role) and read back the way ServiceNow's own client, PySNC, reads records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.emulator.server import ThreadedServer
from tests.engine.conftest import ADMIN, as_user, serve

# What PySNC sends on every Table API read (pysnc/client.py: TableAPI, GlideRecord._parameters).
PYSNC_PARAMS = {
    "sysparm_display_value": "all",
    "sysparm_exclude_reference_link": "true",
    "sysparm_suppress_pagination_header": "true",
}


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
        auth=ADMIN,
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


def test_a_field_that_does_not_stick_fails_apply_and_stays_in_the_plan(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``emulator serve --ignore-field sys_rest_message.use_mutual_auth``: the REST message's tick never sticks."""
    as_user(monkeypatch, "admin")
    with serve(ignore_fields=("sys_rest_message.use_mutual_auth",)) as server:
        check_a_field_that_does_not_stick(server, capsys)


def check_a_field_that_does_not_stick(served_dropping: ThreadedServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = served_dropping.url
    code, out, err = run(["apply", "--instance", url, "--auto-approve"], capsys)
    assert code == 1, out + err
    failed = [line for line in out.splitlines() if line.strip().startswith("failed")]
    assert len(failed) == 1 and "MessageBinding/acme-payments-api" in failed[0], out
    assert "sys_rest_message.use_mutual_auth: sent 'true', kept 'false'" in failed[0]
    assert "hint: the instance answered the write as done" in out
    assert "7 applied, 1 failed, 0 skipped" in out
    # The inventory vouches for nothing that did not stick: the next plan still shows the change, and only it.
    code, out, err = run(["plan", "--instance", url, "--format", "json"], capsys)
    assert code == 2, out + err
    changes = [c for c in json.loads(out)["resource_changes"] if c["action"] != "no-op"]
    assert [(c["address"], c["action"]) for c in changes] == [("MessageBinding/acme-payments-api", "update")]
    assert [f["field"] for f in changes[0]["changed_fields"]] == ["message.use_mutual_auth"]
    # The functions' ticks stuck (they are not ignored) and stay bound.
    rows = pysnc_get(served_dropping, "sys_rest_message_fn", "rest_message.name=Acme Payments API")
    assert {r["use_mutual_auth"]["value"] for r in rows} == {"true"}
    # Again: the same error, never a success.
    code, out, _ = run(["apply", "--instance", url, "--auto-approve"], capsys)
    assert code == 1 and "sys_rest_message.use_mutual_auth: sent 'true', kept 'false'" in out


def test_an_unowned_record_named_in_another_case_blocks_the_spec(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    r = httpx.post(
        f"{served.url}/api/now/table/sys_certificate",
        json={"name": "acme payments client", "type": "key_store", "active": "false"},
        auth=ADMIN,
    )
    assert r.status_code == 201, r.text
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 1, out + err
    assert (
        "KeyStore/Acme Payments client: exists on the instance as 'acme payments client' (the instance compares "
        "names ignoring case: it is the same name) but stack 'two-partners-demo' does not own it"
    ) in out
    assert "run 'mtls-config import', to take it over" in out
    assert "+ KeyStore/Acme Payments client" not in out  # never planned as a create
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 1 and "nothing was applied" in out + err
    names = [c["name"]["value"] for c in pysnc_get(served, "sys_certificate", "nameLIKEacme payments client")]
    assert names == ["acme payments client"]  # no near-duplicate was made


@pytest.mark.parametrize("command", ["plan", "drift", "apply", "import"])
def test_a_user_with_only_itil_is_stopped_naming_the_missing_role(
    stack_dir: Path,
    served: ThreadedServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    as_user(monkeypatch, "admin")
    assert run(["apply", "--instance", served.url, "--auto-approve"], capsys)[0] == 0
    as_user(monkeypatch, "itil")
    extra = {"apply": ["--auto-approve"], "import": ["--out", "imported"]}.get(command, [])
    code, out, err = run([command, "--instance", served.url, *extra], capsys)
    assert code == 1, out + err
    # import lists every table a binding can target; plan, drift and apply only those the specs touch
    others = (
        "connection_admin or admin, for MessageBinding (http_connection); oauth_admin or admin, for MessageBinding "
        "(oauth_entity); "
        if command == "import"
        else ""
    )
    assert (
        "instance user 'itil' lacks the roles this needs: admin, for KeyStore and TrustStoreCert (sys_certificate), "
        f"the stack's inventory and lock (sys_properties) and ProtocolProfile (sys_protocol_profile); {others}"
        "web_service_admin or admin, for MessageBinding (sys_rest_message, sys_rest_message_fn, sys_soap_message, "
        "sys_soap_message_function)"
    ) in err
    assert "It holds: itil." in err
    assert "hint: grant them to the user in User Administration > Users" in err
    assert "to create" not in out + err and "missing" not in out
    assert not (stack_dir / "imported").exists()


def test_a_web_service_admin_is_told_it_lacks_admin_only(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "wsa")
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 1, out + err
    assert "lacks the roles this needs: admin, for KeyStore and TrustStoreCert (sys_certificate)" in err
    assert "web_service_admin or admin" not in err  # the messages' role it holds
    assert "It holds: web_service_admin." in err


def test_a_user_that_cannot_read_its_own_grants_is_told_so(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "itil")
    with serve(user_roles_read="none") as server:
        code, out, err = run(["plan", "--instance", server.url], capsys)
    assert code == 1, out + err
    assert "has no role grants this user can read (sys_user_has_role, user=javascript:gs.getUserID(), returned " in err
    assert "it holds no role, or it may not read its own grants" in err
    assert "let it read its own sys_user_has_role records" in err


def test_a_column_the_instance_lacks_is_a_plan_error_naming_it(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``emulator serve --absent-column sys_soap_message_function.protocol_profile``: a release without it."""
    as_user(monkeypatch, "admin")
    with serve(absent_columns=("sys_soap_message_function.protocol_profile",)) as server:
        code, out, err = run(["plan", "--instance", server.url], capsys)
        assert code == 1, out + err
        assert (
            "MessageBinding/globex-orders: the instance has no column sys_soap_message_function.protocol_profile, "
            "which applying this resource writes"
        ) in out
        assert "+ MessageBinding/globex-orders" not in out and "+ MessageBinding/acme-payments-api" in out
        code, out, err = run(["apply", "--instance", server.url, "--auto-approve"], capsys)
        assert code == 1 and "nothing was applied" in out + err
        assert pysnc_get(server, "sys_certificate", "") == []
