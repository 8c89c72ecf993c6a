"""Mutual auth that actually applies (issue 16), met through the CLI against an emulator served on 127.0.0.1: what a
person changes by hand on the instance that makes it send without the client certificate (a MID Server, OAuth 2.0, a
protocol property), the other records a profile binds (an OAuth provider, an HTTP connection found by its labels),
and expiry notices that name who is notified, read back as ServiceNow's own client, PySNC, reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from mtls_config.emulator.server import ThreadedServer
from tests.engine.conftest import ADMIN, as_user, serve
from tests.engine.test_real_contract import pysnc_get, run

OAUTH_BINDING = """
---
apiVersion: mtls-config/v1
kind: MessageBinding
metadata:
  name: acme-payments-token
spec:
  message: {type: oauth, name: Acme Payments OAuth}
  protocolProfile: acmemtls
"""
CONNECTION_BINDING = """
---
apiVersion: mtls-config/v1
kind: MessageBinding
metadata:
  name: globex-flows
spec:
  message: {type: connection, name: Globex Orders Connection}
  protocolProfile: globexm
"""


def _patch(server: ThreadedServer, table: str, query: str, values: dict[str, str]) -> None:
    """An admin's edit by hand, in the instance's UI."""
    (row,) = pysnc_get(server, table, query)
    r = httpx.patch(f"{server.url}/api/now/table/{table}/{row['sys_id']['value']}", json=values, auth=ADMIN)
    assert r.status_code == 200, r.text


def _create(server: ThreadedServer, table: str, values: dict[str, str]) -> str:
    r = httpx.post(f"{server.url}/api/now/table/{table}", json=values, auth=ADMIN)
    assert r.status_code == 201, r.text
    sys_id: str = r.json()["result"]["sys_id"]
    return sys_id


@pytest.fixture
def applied(stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]) -> Iterator[ThreadedServer]:
    """The example stack applied to a served emulator: every plan after it is clean."""
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 0 and "mutual-auth" not in out, out + err
    yield served


def test_a_method_sent_through_a_mid_server_stops_the_plan(
    applied: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(applied, "ecc_agent", {"name": "mid-east", "status": "Up", "validated": "true"})
    _patch(applied, "sys_rest_message_fn", "function_name=post_payment", {"use_mid_server": "mid-east"})
    for command in ("plan", "drift"):
        code, out, err = run([command, "--instance", applied.url], capsys)
        assert code == 1, out + err
        assert (
            "HTTP method 'post_payment' of REST message 'Acme Payments API' (sys_rest_message_fn): goes through MID "
            "Server 'mid-east' (use_mid_server): mutual auth does not work through a MID Server"
        ) in out, out
        assert (
            "ServiceNow does not support mutual authentication for outbound requests sent through a MID Server" in out
        )
    code, out, err = run(["apply", "--instance", applied.url, "--auto-approve"], capsys)
    assert code == 1 and "nothing was applied" in out + err


def test_oauth2_on_the_message_stops_the_plan(applied: ThreadedServer, capsys: pytest.CaptureFixture[str]) -> None:
    _patch(applied, "sys_rest_message", "name=Acme Payments API", {"authentication_type": "oauth2"})
    code, out, err = run(["plan", "--instance", applied.url, "--json"], capsys)
    assert code == 1, out + err
    findings = [f for f in json.loads(out)["findings"] if f["kind"] == "mutual-auth"]
    assert [(f["address"], f["severity"]) for f in findings] == [("MessageBinding/acme-payments-api", "error")]
    assert findings[0]["message"].startswith(
        "REST message 'Acme Payments API' (sys_rest_message): uses OAuth 2.0 (authentication_type=oauth2), and its "
        "HTTP methods 'Default GET', 'post_payment' inherit it (authentication_type=inherit_from_parent): mutual "
        "auth is not available with OAuth 2.0."
    )
    assert "set the message's authentication type to Basic" in findings[0]["hint"]


def test_a_protocol_port_property_that_disagrees_is_a_warning_naming_it(
    applied: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(applied, "sys_properties", {"name": "glide.httpclient.protocol.acmemtls.port", "value": "8443"})
    _create(
        applied,
        "sys_properties",
        {"name": "glide.httpclient.protocol.acmemtls.class", "value": "com.glide.certificates.DBKeyStoreSocketFactory"},
    )
    code, out, err = run(["plan", "--instance", applied.url], capsys)
    assert code == 0, out + err  # a warning: the plan has no changes and can be applied
    assert (
        "system property glide.httpclient.protocol.acmemtls.port (sys_properties): is '8443', not the profile's "
        "default_port 443"
    ) in out, out
    assert "glide.httpclient.protocol.acmemtls.class" not in out  # it matches
    assert "mtls-config never changes them" in out
    code, out, err = run(["apply", "--instance", applied.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    (prop,) = pysnc_get(applied, "sys_properties", "name=glide.httpclient.protocol.acmemtls.port")
    assert prop["value"]["value"] == "8443"  # never fixed by the tool


def test_an_oauth_provider_is_bound_read_back_and_drift_notices_it_switched_off(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text() + OAUTH_BINDING)
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    (profile,) = pysnc_get(served, "sys_protocol_profile", "protocol=acmemtls")
    (entity,) = pysnc_get(served, "oauth_entity", "name=Acme Payments OAuth")
    assert entity["use_mutual_auth"] == {"display_value": "true", "value": "true"}
    assert entity["protocol_name"] == {"display_value": "acmemtls", "value": profile["sys_id"]["value"]}
    assert run(["plan", "--instance", served.url], capsys)[0] == 0

    _patch(served, "oauth_entity", "name=Acme Payments OAuth", {"use_mutual_auth": "false"})
    code, out, err = run(["drift", "--instance", served.url], capsys)
    assert code == 2, out + err
    assert "MessageBinding/acme-payments-token" in out and "message.use_mutual_auth" in out
    assert run(["apply", "--instance", served.url, "--auto-approve"], capsys)[0] == 0
    (entity,) = pysnc_get(served, "oauth_entity", "name=Acme Payments OAuth")
    assert entity["use_mutual_auth"]["value"] == "true"


@pytest.fixture
def renamed(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedServer]:
    """An instance whose HTTP connections call their mutual-auth columns something no source names."""
    as_user(monkeypatch, "admin")
    with serve(connection_mutual_auth_columns=("u_mtls_on", "u_mtls_profile")) as server:
        yield server


def test_an_http_connection_is_bound_by_the_columns_its_labels_name_in_one_round_trip(
    stack_dir: Path, renamed: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = stack_dir / "resources" / "globex-orders.yaml"
    spec.write_text(spec.read_text() + CONNECTION_BINDING)
    code, out, err = run(["apply", "--instance", renamed.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    (profile,) = pysnc_get(renamed, "sys_protocol_profile", "protocol=globexm")
    (connection,) = pysnc_get(renamed, "http_connection", "name=Globex Orders Connection")
    assert connection["u_mtls_on"] == {"display_value": "true", "value": "true"}
    assert connection["u_mtls_profile"] == {"display_value": "globexm", "value": profile["sys_id"]["value"]}
    assert "mutual_auth" not in connection  # the emulator's usual names are not this instance's

    renamed.app.state.request_log.clear()
    code, out, err = run(["plan", "--instance", renamed.url], capsys)
    assert code == 0, out + err
    reads = [r for r in renamed.app.state.request_log.snapshot() if r["path"] == "/api/now/table/http_connection"]
    assert len(reads) == 1  # read once, with every column, in the first round: the labels' names came with it
    assert "sysparm_fields" not in parse_qs(reads[0]["query"])
    dictionary = [r for r in renamed.app.state.request_log.snapshot() if r["path"] == "/api/now/table/sys_dictionary"]
    assert len(dictionary) == 1  # sys_connection, the table it extends, was asked for with it

    _patch(renamed, "http_connection", "name=Globex Orders Connection", {"u_mtls_on": "false"})
    code, out, err = run(["drift", "--instance", renamed.url], capsys)
    assert code == 2 and "MessageBinding/globex-flows" in out and "message.use_mutual_auth" in out, out + err
    assert run(["apply", "--instance", renamed.url, "--auto-approve"], capsys)[0] == 0
    (connection,) = pysnc_get(renamed, "http_connection", "name=Globex Orders Connection")
    assert connection["u_mtls_on"]["value"] == "true"

    _patch(renamed, "http_connection", "name=Globex Orders Connection", {"use_mid": "true"})
    code, out, err = run(["plan", "--instance", renamed.url], capsys)
    assert (
        code == 1 and "HTTP connection 'Globex Orders Connection' (http_connection): goes through a MID Server" in out
    )


def test_an_http_connection_without_the_labelled_columns_is_a_plan_error_naming_them(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = stack_dir / "resources" / "globex-orders.yaml"
    spec.write_text(spec.read_text() + CONNECTION_BINDING)
    as_user(monkeypatch, "admin")
    with serve(absent_columns=("http_connection.mutual_auth",)) as server:
        code, out, err = run(["plan", "--instance", server.url], capsys)
    assert code == 1, out + err
    assert (
        "MessageBinding/globex-flows: the instance has no column labelled 'Mutual authentication' on "
        "http_connection (nor on sys_connection, which it extends), which applying this resource writes"
    ) in " ".join(out.split()), out


def _notify(stack_dir: Path, text: str) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    lines = spec.read_text().replace("  expirationNotification:\n    groups: [PKI Operations]\n", text)
    spec.write_text(lines)


def test_expiry_notices_name_users_and_groups_written_as_sys_ids(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _notify(
        stack_dir, "  expirationNotification: {users: [ITIL, admin], groups: [pki operations], frequency: weekly}\n"
    )
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    users = {
        u["user_name"]["value"]: u["sys_id"]["value"] for u in pysnc_get(served, "sys_user", "user_nameINadmin,itil")
    }
    (group,) = pysnc_get(served, "sys_user_group", "name=PKI Operations")
    (cert,) = pysnc_get(served, "sys_certificate", "name=Acme Payments client")
    assert set(cert["notify_on_expiration"]["value"].split(",")) == {users["admin"], users["itil"]}
    assert cert["notify_groups"]["value"] == group["sys_id"]["value"]
    assert cert["frequency"]["value"] == "weekly" and cert["expiration_notification"]["value"] == "true"
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 0 and "notify" not in out, out + err  # the same names, spelt another way: no change

    # someone adds a user by hand: drift shows the names, before and after
    _patch(served, "sys_certificate", "name=Acme Payments client", {"notify_on_expiration": users["admin"]})
    code, out, err = run(["drift", "--instance", served.url], capsys)
    assert code == 2 and "notify_on_expiration" in out, out + err


def test_an_unknown_user_is_a_plan_error_naming_it(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _notify(stack_dir, "  expirationNotification: {users: [nobody.here], groups: [PKI Operations]}\n")
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 1, out + err
    assert "expirationNotification names user 'nobody.here', which does not exist on the instance" in out
    assert "sys_user.user_name" in out


@pytest.mark.parametrize(("spec", "code"), [("{groups: [PKI Operations]}", 1), ("{users: [admin]}", 2)])
def test_an_older_release_without_notify_groups_fails_only_a_spec_that_uses_it(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], spec: str, code: int
) -> None:
    _notify(stack_dir, f"  expirationNotification: {spec}\n")
    as_user(monkeypatch, "admin")
    with serve(absent_columns=("sys_certificate.notify_groups", "sys_certificate.frequency")) as server:
        got, out, err = run(["plan", "--instance", server.url], capsys)
    assert got == code, out + err
    lacking = "KeyStore/Acme Payments client: the instance has no column sys_certificate.notify_groups"
    assert (lacking in " ".join(out.split())) == (code == 1), out


def test_protocol_properties_the_platform_writes_for_its_profiles_give_no_warning(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """If saving a profile does write its glide.httpclient.protocol.* pair (facts-2 §5: unconfirmed; the emulator's
    switch), the pair matches the profile: the plan has nothing to say about it."""
    as_user(monkeypatch, "admin")
    with serve(create_protocol_properties=True) as server:
        code, out, err = run(["apply", "--instance", server.url, "--auto-approve"], capsys)
        assert code == 0, out + err
        made = {p["name"]["value"] for p in pysnc_get(server, "sys_properties", "nameSTARTSWITHglide.httpclient.")}
        assert "glide.httpclient.protocol.acmemtls.port" in made and "glide.httpclient.protocol.globexm.class" in made
        code, out, err = run(["plan", "--instance", server.url], capsys)
    assert code == 0 and "system property" not in out, out + err


def test_binding_an_oauth_provider_needs_oauth_admin(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text() + OAUTH_BINDING)
    with serve() as server:
        as_user(monkeypatch, "wsa")
        code, out, err = run(["plan", "--instance", server.url], capsys)
    assert code == 1, out + err
    assert "oauth_admin or admin, for MessageBinding (oauth_entity)" in err, err


def _notify_trust(stack_dir: Path, text: str) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    anchor = "  description: CA that issued Acme's API server certificate\n"
    spec.write_text(spec.read_text().replace(anchor, anchor + text))


def test_a_partner_certificate_notifies_by_name_too_and_an_unknown_group_stops_the_plan(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue asks for names in the TrustStoreCert spec as in the KeyStore's: a partner's CA expiring breaks the
    calls as surely as our own certificate."""
    _notify_trust(stack_dir, "  expirationNotification: {users: [admin], groups: [PKI Operations]}\n")
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    (admin,) = pysnc_get(served, "sys_user", "user_name=admin")
    (group,) = pysnc_get(served, "sys_user_group", "name=PKI Operations")
    (cert,) = pysnc_get(served, "sys_certificate", "name=Acme Payments server CA")
    assert cert["notify_on_expiration"]["value"] == admin["sys_id"]["value"]
    assert cert["notify_groups"] == {"display_value": "PKI Operations", "value": group["sys_id"]["value"]}
    assert cert["expiration_notification"]["value"] == "true"

    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("groups: [PKI Operations]}", "groups: [PKI Operatoins]}"))
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 1, out + err
    assert (
        "TrustStoreCert/Acme Payments server CA: expirationNotification names group 'PKI Operatoins', which does not "
        "exist on the instance (sys_user_group.name, compared ignoring case)"
    ) in " ".join(out.split()), out


def test_two_groups_of_one_name_are_an_error_naming_both(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    (first,) = pysnc_get(served, "sys_user_group", "name=PKI Operations")
    second = _create(served, "sys_user_group", {"name": "pki operations"})
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 1, out + err
    text = " ".join(out.split())
    assert "KeyStore/Acme Payments client" in text and "'PKI Operations'" in text, out
    assert first["sys_id"]["value"] in text and second in text, out


def test_the_old_boolean_still_ticks_the_box_and_leaves_the_lists_to_the_instance(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Existing specs stay valid: ``expirationNotification: true`` ticks the box alone. With no one on the record the
    plan says so; once someone is named there by hand, the spec has nothing to change and nothing to say."""
    _notify(stack_dir, "  expirationNotification: true\n")
    code, out, err = run(["apply", "--instance", served.url, "--auto-approve"], capsys)
    assert code == 0, out + err
    (cert,) = pysnc_get(served, "sys_certificate", "name=Acme Payments client")
    assert cert["expiration_notification"]["value"] == "true" and cert["notify_groups"]["value"] == ""
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 0 and "expiration notification is on but names no one" in out, out + err

    (group,) = pysnc_get(served, "sys_user_group", "name=PKI Operations")
    _patch(served, "sys_certificate", "name=Acme Payments client", {"notify_groups": group["sys_id"]["value"]})
    code, out, err = run(["plan", "--instance", served.url], capsys)
    assert code == 0 and "names no one" not in out and "notify" not in out, out + err
