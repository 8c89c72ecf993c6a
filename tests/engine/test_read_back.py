"""Every write is read back: what the instance kept, compared with what was sent (``mtls_config.readback``), on
its own and through the runner, for single writes, batched writes and batched writes whose answers carry no
record."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.engine import apply_planned, make_planned
from mtls_config.operations import Create, Update
from mtls_config.readback import same_value, unkept
from mtls_config.resources import trust_store_cert
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import local_settings

pytestmark = pytest.mark.anyio
PEM = (Path(__file__).resolve().parents[2] / "specs/examples/two-partners/certs/acme-server-ca.pem").read_text()


@pytest.mark.parametrize(
    ("sent", "kept", "same"),
    [
        ("true", "true", True),
        ("true", "false", False),
        ("false", "0", True),
        ("TRUE", "true", True),
        ("443", "443", True),
        ("443", "0443", True),
        ("443", "8443", False),
        ("0", "", False),  # an integer written as 0 and kept empty did not stick
        ("Acme", "acme", False),  # a name is kept as written; the instance only *compares* ignoring case
        ("", "", True),
    ],
)
def test_a_value_is_compared_as_the_instance_stores_it(sent: str, kept: str, same: bool) -> None:
    assert same_value(sent, kept) is same


def test_unkept_fields_name_table_column_sent_and_kept() -> None:
    op = Update("sys_rest_message", "m1", {"use_mutual_auth": "true", "protocol_name": "p1", "gone": "x"})
    record = {"use_mutual_auth": "false", "protocol_name": {"link": "https://x/p1", "value": "p1"}}
    found = unkept(op, record)
    assert [u.describe() for u in found] == [
        "sys_rest_message.gone: sent 'x', no such field in the answer",
        "sys_rest_message.use_mutual_auth: sent 'true', kept 'false'",
    ]


def test_write_only_columns_are_never_compared() -> None:
    op = Update("sys_certificate", "c1", {"active": "true", "key_store_password": "canary-Secr3t"})
    found = unkept(op, {"active": "true", "key_store_password": "gAAAA-ciphertext"}, write_only=("key_store_password",))
    assert found == []


def test_a_long_value_is_shortened_in_the_message() -> None:
    op = Create("sys_certificate", "c1", {"short_description": "x" * 200})
    (only,) = unkept(op, {"short_description": "y"})
    assert len(only.describe()) < 120 and "..." in only.describe()


def test_pem_text_the_instance_rewraps_is_kept() -> None:
    kind = trust_store_cert.KIND
    rewrapped = PEM.replace("\n", "\r\n").replace("-----\r\n", "-----\r\n ")
    op = Create("sys_certificate", "c1", {"pem_certificate": PEM})
    assert unkept(op, {"pem_certificate": rewrapped}, form=kind.stored_form) == []
    other = PEM.replace("A", "B", 1)
    assert unkept(op, {"pem_certificate": other}, form=kind.stored_form) != []


class NoBatchRecords(httpx.AsyncBaseTransport):
    """Batch API answers whose Table API items carry no body, as when the instance omits it: the runner must read
    the records itself. Everything else passes through."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/api/now/v1/batch":
            return response
        data = json.loads(await response.aread())
        for item in data.get("serviced_requests", []):
            sent = next(r for r in json.loads(request.content)["rest_requests"] if r["id"] == item["id"])
            if "/api/now/table/" in sent["url"] and not sent["url"].startswith("/api/now/table/sys_properties"):
                item.pop("body", None)
        body = json.dumps(data).encode()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)


@pytest.mark.parametrize("batch_answers", ["with records", "without records"])
async def test_a_batched_write_that_did_not_stick_fails_its_resource(stack_dir: Path, batch_answers: str) -> None:
    app = create_app(EmulatorConfig(ignore_fields=("sys_certificate.short_description",)))
    inner = httpx.ASGITransport(app=app)
    transport = NoBatchRecords(inner) if batch_answers == "without records" else inner
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    journal = stack_dir / "journal.jsonl"
    async with InstanceClient(local_settings(), transport=transport) as client:
        planned = await make_planned(client, specs, instance_name="local", stack="s")
        result = await apply_planned(client, planned, journal_path=journal)
    failed = {o.address: o for o in result.outcomes if o.status == "failed"}
    # Every certificate sets a description; the emulator keeps none of them. Their profiles and bindings wait.
    assert set(failed) == {
        "KeyStore/Acme Payments client",
        "KeyStore/Globex client",
        "TrustStoreCert/Acme Payments server CA",
        "TrustStoreCert/Globex orders server",
    }
    message = failed["TrustStoreCert/Acme Payments server CA"].message
    assert message == (
        "create: the instance did not keep what was written: sys_certificate.short_description: "
        "sent \"CA that issued Acme's API server certificate\", kept ''"
    )
    assert "business rule" in failed["KeyStore/Globex client"].hint
    assert {o.status for o in result.outcomes if o.address not in failed} == {"skipped"}
    if isinstance(transport, NoBatchRecords):
        # the creates went in one batch; the records were then read in one query
        reads = [
            p
            for p in transport.paths
            if p.startswith("GET /api/now/table/sys_certificate?") and "sys_mod_count" not in p  # not the plan's
        ]
        assert len(reads) == 1 and "sys_idIN" in reads[0], reads
    # The journal names the field, never the values.
    text = journal.read_text()
    assert "the instance did not keep sys_certificate.short_description" in text
    assert "CA that issued" not in text


async def test_a_record_the_instance_did_not_return_after_a_batch_fails(stack_dir: Path) -> None:
    app = create_app(EmulatorConfig())

    class Vanishing(NoBatchRecords):
        """Reads after a batch (they ask for the written columns, not sys_mod_count) find nothing."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            params = request.url.params
            if (
                request.url.path == "/api/now/table/sys_certificate"
                and "sys_mod_count" not in params.get("sysparm_fields", "")
                and "sys_idIN" in params.get("sysparm_query", "")
            ):
                return httpx.Response(200, json={"result": []})
            return await super().handle_async_request(request)

    transport = Vanishing(httpx.ASGITransport(app=app))
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    async with InstanceClient(local_settings(), transport=transport) as client:
        result = await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="s"))
    failed = [o for o in result.outcomes if o.status == "failed"]
    assert failed and all("did not return sys_certificate/" in o.message for o in failed)
    assert all("deleted meanwhile, or an ACL hides it" in o.hint for o in failed)
