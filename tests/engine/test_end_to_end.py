"""The reconcile engine end to end against the emulator, through the real client and the real CLI."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.engine import apply_planned, make_planned
from mtls_config.errors import StalePlan
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import open_local

pytestmark = pytest.mark.anyio


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


async def _oob(stack_dir: Path, action: str) -> None:
    """Out-of-band edits through the Table/Attachment API, as an admin would make them by hand."""
    async with open_local(stack_dir) as c:
        certs = {r["name"]: r for r in await c.list("sys_certificate", fields=["sys_id", "name"])}
        if action == "record":
            await c.update(
                "sys_certificate", certs["Acme Payments server CA"]["sys_id"], {"short_description": "edited by hand"}
            )
        elif action == "attachment":
            sys_id = certs["Globex client"]["sys_id"]
            for att in await c.list_attachments("sys_certificate", [sys_id]):
                await c.delete_attachment(att["sys_id"])
            await c.upload_attachment("sys_certificate", sys_id, "globex.jks", b"\xfe\xed\xfe\xed not the right store")
        elif action == "password":
            await c.update(
                "sys_certificate", certs["Acme Payments client"]["sys_id"], {"key_store_password": "guessed"},
                input_display_value=True,
            )  # fmt: skip
        elif action == "unbind":
            msg = (await c.list("sys_soap_message", query="name=Globex Orders", fields=["sys_id"]))[0]
            await c.update("sys_soap_message", msg["sys_id"], {"enable_mutual_auth": "false"})


def test_apply_example_then_noop_drift_and_restore(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan"], capsys)
    assert code == 2 and "8 to create" in out
    code, out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 0, out + err
    assert "8 applied, 0 failed, 0 skipped" in out
    code, out, _ = run(["plan"], capsys)
    assert code == 0 and "No changes" in out
    code, out, _ = run(["drift"], capsys)
    assert code == 0 and "No drift" in out
    assert "\n\n\n" not in out  # one blank line between the title and the summary when nothing is listed

    for action in ("record", "attachment", "password", "unbind"):
        asyncio.run(_oob(stack_dir, action))
    code, out, _ = run(["drift", "--format", "json"], capsys)
    assert code == 2
    report = json.loads(out)
    changed = {r["address"]: r for r in report["resources"] if r["status"] != "in-sync"}
    assert set(changed) == {
        "TrustStoreCert/Acme Payments server CA",
        "KeyStore/Globex client",
        "KeyStore/Acme Payments client",
        "MessageBinding/globex-orders",
    }
    assert [f["field"] for f in changed["TrustStoreCert/Acme Payments server CA"]["fields"]] == ["short_description"]
    assert [f["field"] for f in changed["KeyStore/Globex client"]["fields"]] == ["keystore_file"]
    pw = changed["KeyStore/Acme Payments client"]
    assert pw["fields"] == [
        {"field": "key_store_password", "sensitive": True}
        | {side: "(sensitive)" for side in ("before", "after", "instance", "spec")}
    ]
    assert "password changed on the instance" in pw["reason"]
    assert [f["field"] for f in changed["MessageBinding/globex-orders"]["fields"]] == ["message.use_mutual_auth"]
    assert "guessed" not in out

    code, out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 0, out + err
    assert "4 applied" in out
    code, out, _ = run(["drift"], capsys)
    assert code == 0, out


def test_prune_only_with_flag_and_binding_removal_restores(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    # Drop the whole Globex partner from the specs.
    (stack_dir / "resources" / "globex-orders.yaml").unlink()
    code, out, _ = run(["plan"], capsys)
    assert code == 0, out  # nothing to do without --prune: the orphans are only reported
    assert "owned by this stack but no longer in the specs" in out
    code, out, _ = run(["plan", "--prune", "--json"], capsys)
    assert code == 2
    plan = json.loads(out)
    deletes = [c["address"] for c in plan["resource_changes"] if c["action"] == "delete"]
    # dependants first: the binding, then the profile, then the certificates
    assert deletes == [
        "MessageBinding/globex-orders",
        "ProtocolProfile/globexm",
        "TrustStoreCert/Globex orders server",
        "KeyStore/Globex client",
    ]
    code, out, err = run(["apply", "--prune", "--auto-approve"], capsys)
    assert code == 0, out + err

    async def check() -> None:
        async with open_local(stack_dir) as c:
            msg = (
                await c.list(
                    "sys_soap_message", query="name=Globex Orders", fields=["enable_mutual_auth", "protocol_profile"]
                )
            )[0]
            assert msg == {"enable_mutual_auth": "false", "protocol_profile": ""}
            fns = await c.list(
                "sys_soap_message_function", query="function_name=submitOrder", fields=["enable_mutual_auth"]
            )
            assert fns == [{"enable_mutual_auth": "false"}]
            names = {r["name"] for r in await c.list("sys_certificate", fields=["name"])}
            assert "Globex client" not in names and "Acme Payments client" in names
            assert await c.list("sys_protocol_profile", query="protocol=globexm") == []
            msgs = await c.list("sys_soap_message", query="name=Globex Orders")
            assert len(msgs) == 1  # a binding never deletes the message

    asyncio.run(check())
    assert run(["plan"], capsys)[0] == 0


def test_stale_saved_plan_is_refused_naming_the_record(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: 8443"))
    code, out, _ = run(["plan", "--out", "plan.json"], capsys)
    assert code == 2 and "default_port: instance 443 -> spec 8443" in out
    asyncio.run(_oob(stack_dir, "record"))  # someone edits a certificate meanwhile
    code, out, err = run(["apply", "plan.json"], capsys)
    assert code == 1
    assert "stale" in err and "TrustStoreCert/Acme Payments server CA" in err
    # nothing was written: the profile still has its old port
    code, out, _ = run(["plan", "--json"], capsys)
    changes = {c["address"]: c for c in json.loads(out)["resource_changes"]}
    assert changes["ProtocolProfile/acmemtls"]["action"] == "update"


def test_saved_plan_applies_when_still_true(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["plan", "--out", "plan.json"], capsys)
    assert code == 2
    saved = json.loads((stack_dir / "plan.json").read_text())
    assert saved["format_version"] == "1" and saved["checksum"].startswith("sha256:")
    assert run(["apply", "plan.json"], capsys)[0] == 0
    assert run(["plan"], capsys)[0] == 0
    # An edited plan file is refused by its checksum.
    saved["resource_changes"][0]["action"] = "delete"
    (stack_dir / "edited.json").write_text(json.dumps(saved))
    code, _, err = run(["apply", "edited.json"], capsys)
    assert code == 1 and "checksum" in err


def test_apply_without_terminal_needs_auto_approve(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["apply"], capsys)
    assert code == 1 and "--auto-approve" in err


async def test_import_of_hand_made_setup_plans_noop(tmp_path: Path, client: InstanceClient) -> None:
    """An admin followed the KB by hand; import writes specs that then plan as no-op."""
    from mtls_config.importer import import_live
    from mtls_config.inventory_store import store_inventory

    jks = (Path(__file__).resolve().parents[2] / "specs/examples/two-partners/keystores/globex-client.jks").read_bytes()
    ks = await client.create(
        "sys_certificate",
        {
            "name": "Hand made keystore",
            "type": "key_store",
            "active": "true",
            "key_store_password": "demo-keystore-password",
        },
        input_display_value=True,
    )
    await client.upload_attachment("sys_certificate", ks["sys_id"], "client.jks", jks)
    pem = (Path(__file__).resolve().parents[2] / "specs/examples/two-partners/certs/acme-server-ca.pem").read_text()
    await client.create(
        "sys_certificate",
        {"name": "Partner CA", "type": "trust_store", "format": "pem", "pem_certificate": pem, "active": "true"},
    )
    profile = await client.create(
        "sys_protocol_profile", {"protocol": "handmade", "default_port": "443", "keystore": ks["sys_id"]}
    )
    msg = (await client.list("sys_rest_message", query="name=Acme Payments API", fields=["sys_id"]))[0]
    await client.update(
        "sys_rest_message", msg["sys_id"], {"use_mutual_auth": "true", "protocol_name": profile["sys_id"]}
    )
    # the same profile on the OAuth provider's token requests, and on an HTTP connection (its columns by label)
    oauth = (await client.list("oauth_entity", query="name=Acme Payments OAuth", fields=["sys_id"]))[0]
    await client.update(
        "oauth_entity", oauth["sys_id"], {"use_mutual_auth": "true", "protocol_name": profile["sys_id"]}
    )
    connection = (await client.list("http_connection", query="name=Globex Orders Connection", fields=["sys_id"]))[0]
    await client.update(
        "http_connection", connection["sys_id"], {"mutual_auth": "true", "protocol_profile": profile["sys_id"]}
    )

    result = await import_live(client, "imported")
    assert result.imported == [
        "KeyStore/Hand made keystore",
        "MessageBinding/connection-globex-orders-connection",
        "MessageBinding/oauth-acme-payments-oauth",
        "MessageBinding/rest-acme-payments-api",
        "ProtocolProfile/handmade",
        "TrustStoreCert/Partner CA",
    ]
    bindings = result.files["message-bindings.yaml"].decode()
    assert "  message:\n    type: oauth\n    name: Acme Payments OAuth\n  protocolProfile: handmade\n" in bindings
    assert (
        "  message:\n    type: connection\n    name: Globex Orders Connection\n  protocolProfile: handmade\n"
        in bindings
    )
    out = tmp_path / "imported"
    for rel, data in result.files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    assert result.inventory is not None
    await store_inventory(client, "imported", result.inventory_record, result.inventory)
    assert "demo-keystore-password" not in "".join(d.decode(errors="ignore") for d in result.files.values())

    specs = load_specs([out], root=out)
    env = {"MTLS_KEYSTORE_PASSWORD_HAND_MADE_KEYSTORE": "demo-keystore-password"}
    planned = await make_planned(client, specs, instance_name="local", stack="imported", environ=env)
    assert [c.action for c in planned.plan.resource_changes] == ["no-op"] * 6, planned.plan.to_json()
    # The admin ticked the message alone: its methods' own boxes are off, and for a call through a method the
    # method's box decides. Import adopts the set-up as found; the plan says why it would not use mutual auth.
    assert [(f.address, f.severity, f.kind, f.message.split(":")[0]) for f in planned.plan.findings] == [
        (
            "MessageBinding/rest-acme-payments-api",
            "error",
            "mutual-auth",
            f"HTTP method '{method}' of REST message 'Acme Payments API' (sys_rest_message_fn)",
        )
        for method in ("Default GET", "post_payment")
    ]
    assert all("own mutual-auth tick off" in f.message for f in planned.plan.findings)


async def test_crash_after_inventory_prewrite_converges_without_duplicates(
    stack_dir: Path, client: InstanceClient
) -> None:
    """A run that dies after recording its intent and creating some records is finished by the next run."""
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    planned = await make_planned(client, specs, instance_name="local", stack="s")
    from mtls_config.apply import Runner
    from mtls_config.compile import compile_changes

    compiled = compile_changes(planned.result.changes, planned.desired, planned.live)
    runner = Runner(client, planned.desired, planned.live, planned.result.changes, compiled)
    await runner.write_pending(*await runner.first_round())
    first = next(t for t in compiled.tasks if t.change.address == "KeyStore/Globex client")
    await runner.do(first, first.phases[0][0])  # created inactive, then "killed"

    again = await make_planned(client, specs, instance_name="local", stack="s")
    actions = {c.address: c.action for c in again.plan.resource_changes}
    assert actions["KeyStore/Globex client"] == "update"  # recognised as ours, not a conflict
    assert not again.plan.errors
    result = await apply_planned(client, again)
    assert result.ok
    names = [r["name"] for r in await client.list("sys_certificate", fields=["name"])]
    assert sorted(names) == sorted(set(names))  # no duplicates
    final = await make_planned(client, specs, instance_name="local", stack="s")
    assert not final.plan.has_changes


async def test_plan_round_trips_do_not_grow_with_resources(tmp_path: Path) -> None:
    """The request log for planning N = 10 and N = 200 resources has the same number of requests."""
    import httpx

    from mtls_config.emulator import EmulatorConfig, create_app
    from tests.engine.conftest import local_settings
    from tests.engine.stacks import write_stack

    counts = {}
    for n in (10, 200):
        root = tmp_path / f"n{n}"
        write_stack(root, n)
        specs = load_specs([root], root=root)
        app = create_app(EmulatorConfig())
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            planned = await make_planned(client, specs, instance_name="local", stack="scale")
            assert len(planned.plan.resource_changes) == n
            result = await apply_planned(client, planned, parallelism=10)
            assert result.ok
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://e", auth=("admin", "admin")) as control:
                await control.request("DELETE", "/_emulator/requests", json={})
                again = await make_planned(client, specs, instance_name="local", stack="scale")
                log = (await control.get("/_emulator/requests")).json()
            assert not again.plan.has_changes
            counts[n] = len(log)
    assert counts[10] == counts[200], counts


class Depth(httpx.AsyncBaseTransport):
    """Each request's depth: one more than the deepest answer received before it was sent. Depth 1 for every
    request means none of them waited for another's answer: one round trip."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.answered = 0
        self.depths: list[tuple[int, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        depth = self.answered + 1
        self.depths.append((depth, f"{request.method} {request.url.path}"))
        response = await self.inner.handle_async_request(request)
        self.answered = max(self.answered, depth)
        return response


async def test_a_plan_reads_the_instance_in_one_round_trip(tmp_path: Path) -> None:
    """Inventory (large enough to leave the property inline), certificates, their attachments, profiles and
    messages: all asked for before the first answer arrives, once the credentials are known to work."""
    from mtls_config.emulator import EmulatorConfig, create_app
    from tests.engine.conftest import local_settings
    from tests.engine.stacks import write_stack

    write_stack(tmp_path, 200)
    specs = load_specs([tmp_path], root=tmp_path)
    app = create_app(EmulatorConfig(latency_ms=30))  # answers take a while, as a real instance's do
    depth = Depth(httpx.ASGITransport(app=app))
    async with InstanceClient(local_settings(), transport=depth) as client:
        assert (await apply_planned(client, await make_planned(client, specs, instance_name="l", stack="s"))).ok
        depth.depths.clear()
        depth.answered = 0
        again = await make_planned(client, specs, instance_name="local", stack="s")
    assert not again.plan.has_changes
    assert len(depth.depths) >= 4
    assert {d for d, _ in depth.depths} == {1}, depth.depths


async def test_stale_detection_in_apply_preflight(stack_dir: Path, client: InstanceClient) -> None:
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="s"))
    spec = stack_dir / "resources" / "globex-orders.yaml"
    spec.write_text(
        spec.read_text().replace("description: Client keystore presented to Globex", "description: changed")
    )
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    planned = await make_planned(client, specs, instance_name="local", stack="s")
    ks = (await client.list("sys_certificate", query="name=Globex client", fields=["sys_id"]))[0]
    await client.update("sys_certificate", ks["sys_id"], {"expiration_notification": "true"})  # moves sys_mod_count
    with pytest.raises(StalePlan, match=r"sys_certificate/[0-9a-f]{32}"):
        await apply_planned(client, planned)


def test_import_command_then_plan_is_noop(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI path of import: files written, ownership recorded, and the written specs plan as no-op."""
    jks = (stack_dir / "keystores" / "globex-client.jks").read_bytes()

    async def hand_made() -> None:
        async with open_local(stack_dir) as c:
            ks = await c.create(
                "sys_certificate",
                {
                    "name": "Legacy client",
                    "type": "key_store",
                    "active": "true",
                    "key_store_password": "demo-keystore-password",
                },
                input_display_value=True,
            )
            await c.upload_attachment("sys_certificate", ks["sys_id"], "legacy.jks", jks)
            await c.create(
                "sys_protocol_profile", {"protocol": "legacy", "default_port": "8443", "keystore": ks["sys_id"]}
            )

    asyncio.run(hand_made())
    code, out, err = run(["import", "--out", "imported"], capsys)
    assert code == 0, out + err
    assert "imported KeyStore/Legacy client" in out and "imported ProtocolProfile/legacy" in out
    assert "demo-keystore-password" not in out + err
    assert (stack_dir / "imported" / "files" / "legacy-client.jks").read_bytes() == jks
    monkeypatch.setenv("MTLS_KEYSTORE_PASSWORD_LEGACY_CLIENT", "demo-keystore-password")
    code, out, _ = run(["plan", "imported"], capsys)
    assert code == 0, out
    assert "No changes" in out
    code, _, err = run(["import", "--out", "imported"], capsys)
    assert code == 0  # owned records are not imported twice


def test_import_waits_for_no_one_while_an_apply_holds_the_stack(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """import rewrites the inventory: while another run holds the stack's lock it refuses, naming the holder,
    and records nothing."""
    from mtls_config.inventory import property_name
    from mtls_config.lock import acquire

    jks = (stack_dir / "keystores" / "globex-client.jks").read_bytes()

    async def hand_made_and_locked() -> None:
        async with open_local(stack_dir) as c:
            ks = await c.create(
                "sys_certificate",
                {"name": "Legacy client", "type": "key_store", "key_store_password": "demo-keystore-password"},
                input_display_value=True,
            )
            await c.upload_attachment("sys_certificate", ks["sys_id"], "legacy.jks", jks)
            await acquire(c, "two-partners-demo", holder="ci@runner-7:42")

    async def inventory_rows() -> list[dict[str, str]]:
        async with open_local(stack_dir) as c:
            return await c.list("sys_properties", query=f"nameSTARTSWITH{property_name('two-partners-demo')}")

    asyncio.run(hand_made_and_locked())
    code, out, err = run(["import", "--out", "imported"], capsys)
    assert code == 1, out + err
    assert "ci@runner-7:42" in err and "Traceback" not in err
    assert asyncio.run(inventory_rows()) == []


def test_trust_cert_format_switch_moves_the_content(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DER attachment -> PEM text and back: no stale attachment is left, and the record always has its content."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    der = (stack_dir / "certs" / "globex-server.der").read_bytes()
    (stack_dir / "certs" / "globex-server.pem").write_bytes(
        x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    )
    spec = stack_dir / "resources" / "globex-orders.yaml"
    der_text = spec.read_text()
    spec.write_text(
        der_text.replace(
            "format: der\n  file: ../certs/globex-server.der", "format: pem\n  file: ../certs/globex-server.pem"
        )
    )

    async def record() -> tuple[dict[str, str], int]:
        async with open_local(stack_dir) as c:
            rec = (
                await c.list(
                    "sys_certificate", query="name=Globex orders server", fields=["sys_id", "format", "pem_certificate"]
                )
            )[0]
            return rec, len(await c.list_attachments("sys_certificate", [rec["sys_id"]]))

    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    rec, attachments = asyncio.run(record())
    assert rec["format"] == "pem" and rec["pem_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert attachments == 0
    assert run(["plan"], capsys)[0] == 0
    spec.write_text(der_text)
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    rec, attachments = asyncio.run(record())
    assert rec["format"] == "der" and rec["pem_certificate"] == "" and attachments == 1
    assert run(["plan"], capsys)[0] == 0


def test_function_dropped_from_a_binding_is_released(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A binding listing fewer functions gives the dropped ones their original fields back."""
    spec = stack_dir / "resources" / "globex-orders.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("functions: [submitOrder]", "functions: [submitOrder, getStatus]"))
    assert run(["apply", "--auto-approve"], capsys)[0] == 0

    async def bound() -> dict[str, str]:
        async with open_local(stack_dir) as c:
            rows = await c.list("sys_soap_message_function", fields=["function_name", "enable_mutual_auth"])
            return {r["function_name"]: r["enable_mutual_auth"] for r in rows}

    assert asyncio.run(bound())["getStatus"] == "true"
    spec.write_text(text)  # back to [submitOrder]
    code, out, _ = run(["plan"], capsys)
    assert code == 2 and "functions.getStatus.use_mutual_auth" in out
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    state = asyncio.run(bound())
    assert state["getStatus"] == "false" and state["submitOrder"] == "true"
    assert run(["plan"], capsys)[0] == 0


def test_saved_targeted_plan_applies_only_its_targets(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["plan", "--target", "ProtocolProfile/acmemtls", "--out", "plan.json"], capsys)
    assert code == 2
    saved = json.loads((stack_dir / "plan.json").read_text())
    assert saved["targets"] == ["ProtocolProfile/acmemtls"]
    assert {c["address"] for c in saved["resource_changes"]} == {
        "ProtocolProfile/acmemtls",
        "KeyStore/Acme Payments client",
    }
    code, out, err = run(["apply", "plan.json"], capsys)  # no --target repeated: the plan carries it
    assert code == 0, out + err
    assert "2 applied" in out
    code, out, _ = run(["plan", "--json"], capsys)
    actions = {c["address"]: c["action"] for c in json.loads(out)["resource_changes"]}
    assert actions["ProtocolProfile/acmemtls"] == "no-op" and actions["MessageBinding/acme-payments-api"] == "create"


async def test_plan_checksum_does_not_change_with_the_day(stack_dir: Path, client: InstanceClient) -> None:
    import datetime as dt

    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="s"))
    today = dt.datetime.now(dt.UTC)
    first = await make_planned(client, specs, instance_name="local", stack="s", now=today)
    later = await make_planned(client, specs, instance_name="local", stack="s", now=today + dt.timedelta(days=700))
    assert any("expires" in f.message for f in later.plan.findings)  # advice differs...
    assert first.plan.checksum == later.plan.checksum  # ...what apply would do does not


async def test_duplicate_certificate_names_stop_the_plan_unless_one_is_ours(
    stack_dir: Path, client: InstanceClient
) -> None:
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    pem = (stack_dir / "certs" / "acme-server-ca.pem").read_text()
    twin = {"type": "trust_store", "format": "pem", "pem_certificate": pem, "active": "true"}
    one = await client.create("sys_certificate", {"name": "Acme Payments server CA", **twin})
    # differing only in case is the same name to the instance (its queries return both)
    two = await client.create("sys_certificate", {"name": "ACME payments server ca", **twin})
    planned = await make_planned(client, specs, instance_name="local", stack="s")
    errors = [f for f in planned.plan.findings if f.severity == "error"]
    both = sorted([(one["sys_id"], "Acme Payments server CA"), (two["sys_id"], "ACME payments server ca")])
    assert [(f.address, f.message) for f in errors] == [
        (
            "TrustStoreCert/Acme Payments server CA",
            "2 certificate records are named 'Acme Payments server CA' (ignoring case, as the instance compares "
            "names): " + ", ".join(f"{sys_id} ('{name}')" for sys_id, name in both),
        )
    ]
    # never a third record
    assert "TrustStoreCert/Acme Payments server CA" not in {c.address for c in planned.plan.resource_changes}
    # one of them owned by the stack: that one is used, the plan goes on
    for row in await client.list("sys_certificate", query="name=Acme Payments server CA", fields=["sys_id"]):
        await client.delete("sys_certificate", row["sys_id"])
    await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="s"))
    await client.create("sys_certificate", {"name": "Acme Payments server CA", **twin})  # someone adds a twin
    again = await make_planned(client, specs, instance_name="local", stack="s")
    assert not again.plan.errors and not again.plan.has_changes


async def test_inventory_shrinking_back_inline_drops_its_part_records(tmp_path: Path, client: InstanceClient) -> None:
    from bench.stacks import write_stack

    root = tmp_path / "stack"
    write_stack(root, 200)  # an inventory too big for a property value even packed: it lives in part records
    specs = load_specs([root], root=root)
    await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="shrink"))
    parts_query = "nameSTARTSWITHmtls_config.inventory.shrink."
    assert len(await client.list("sys_properties", query=parts_query, fields=["sys_id"])) >= 1
    for f in root.glob("*.yaml"):
        f.unlink()
    shutil.copy(
        Path(__file__).resolve().parents[2] / "specs/examples/two-partners/certs/acme-server-ca.pem", root / "ca.pem"
    )
    (root / "small.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: only}\nspec: {file: ca.pem}\n"
    )
    specs = load_specs([root], root=root)
    planned = await make_planned(client, specs, instance_name="local", stack="shrink", prune=True)
    await apply_planned(client, planned, allow_delete_all=True)
    assert await client.list("sys_properties", query=parts_query, fields=["sys_id"]) == []
    again = await make_planned(client, specs, instance_name="local", stack="shrink")
    assert not again.plan.has_changes and not again.plan.errors


async def test_apply_keeps_neither_the_plan_nor_the_specs_through_its_writes(tmp_path: Path) -> None:
    """Issue 18 (an apply's peak memory): once its writes are compiled, ``apply_planned`` holds no reference to the
    plan, and a caller that let go of it and of the specs (as the CLI does) has them freed before the first write.
    Seen from the writes themselves: each resource's progress callback finds both gone."""
    import gc
    import weakref

    from mtls_config.emulator import EmulatorConfig, create_app
    from tests.engine.conftest import local_settings
    from tests.engine.stacks import write_stack

    root = tmp_path / "stack"
    write_stack(root, 12)
    specs = load_specs([root], root=root)
    app = create_app(EmulatorConfig())
    seen: list[tuple[bool, bool]] = []
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
        planned = await make_planned(client, specs, instance_name="local", stack="lean")
        plan, spec_set = weakref.ref(planned.plan), weakref.ref(specs)

        def progress(address: str, status: str) -> None:
            gc.collect()
            seen.append((plan() is None, spec_set() is None))

        applying = apply_planned(client, planned, progress=progress)
        del planned, specs
        result = await applying
    assert result.ok and len(seen) == 12
    assert all(gone == (True, True) for gone in seen), seen
