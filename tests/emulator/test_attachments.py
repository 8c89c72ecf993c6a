"""Attachment API: raw and multipart uploads, list with queries, metadata, download with its metadata header,
delete, roles on the target table, and attachments following their record when it is deleted."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.emulator.models import Backend
from tests.emulator.conftest import Target, asgi_client, assert_matches

pytestmark = pytest.mark.anyio
KEYSTORE_BYTES = b"\xfe\xed\xfe\xed" + bytes(range(256)) * 4

METADATA = {
    "sys_id": "<sys_id>",
    "file_name": "client.jks",
    "content_type": "application/octet-stream",
    "size_bytes": str(len(KEYSTORE_BYTES)),
    "size_compressed": "<any>",
    "compressed": "true",
    "table_name": "sys_certificate",
    "table_sys_id": "<sys_id>",
    "download_link": "<any>",
    "image_width": "",
    "image_height": "",
    "average_image_color": "",
    "sys_tags": "",
    "sys_created_on": "<date>",
    "sys_created_by": "<any>",
    "sys_updated_on": "<date>",
    "sys_updated_by": "<any>",
    "sys_mod_count": "0",
}


async def _keystore(client: httpx.AsyncClient, name: str = "emu-attach-ks") -> str:
    r = await client.post("/api/now/table/sys_certificate", json={"name": name, "type": "key_store", "active": "false"})
    assert r.status_code == 201, r.text
    sys_id: str = r.json()["result"]["sys_id"]
    return sys_id


async def _upload(client: httpx.AsyncClient, cert_id: str, prefix: str = "/api/now/attachment") -> dict[str, Any]:
    r = await client.post(
        f"{prefix}/file",
        params={"table_name": "sys_certificate", "table_sys_id": cert_id, "file_name": "client.jks"},
        content=KEYSTORE_BYTES,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


async def test_raw_upload_download_delete(sn: Target) -> None:
    c = sn.client
    cert_id = await _keystore(c)
    try:
        meta = await _upload(c, cert_id)
        assert_matches(
            meta, {**METADATA, "table_sys_id": cert_id, "created_by_name": "<any>", "updated_by_name": "<any>"}
        )
        r = await c.get(f"/api/now/attachment/{meta['sys_id']}")
        assert r.status_code == 200
        assert_matches(r.json()["result"], {**METADATA, "sys_id": meta["sys_id"]})
        r = await c.get(f"/api/now/attachment/{meta['sys_id']}/file", headers={"Accept": "*/*"})
        assert r.status_code == 200 and r.content == KEYSTORE_BYTES
        assert json.loads(r.headers["X-Attachment-Metadata"])["sys_id"] == meta["sys_id"]
        r = await c.get(
            "/api/now/attachment", params={"sysparm_query": f"table_name=sys_certificate^table_sys_idIN{cert_id}"}
        )
        assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
        assert [a["sys_id"] for a in r.json()["result"]] == [meta["sys_id"]]
        assert (await c.delete(f"/api/now/attachment/{meta['sys_id']}")).status_code == 204
        assert (await c.get(f"/api/now/attachment/{meta['sys_id']}")).status_code == 404
    finally:
        await c.delete(f"/api/now/table/sys_certificate/{cert_id}")


async def test_multipart_upload_v1(sn: Target) -> None:
    c = sn.client
    cert_id = await _keystore(c, "emu-attach-multipart")
    try:
        r = await c.post(
            "/api/now/v1/attachment/upload",
            data={"table_name": "sys_certificate", "table_sys_id": cert_id},
            files={"uploadFile": ("client.p12", KEYSTORE_BYTES, "application/x-pkcs12")},
        )
        assert r.status_code == 201, r.text
        meta = r.json()["result"]
        assert meta["file_name"] == "client.p12" and meta["content_type"] == "application/x-pkcs12"
        r = await c.get(f"/api/now/v1/attachment/{meta['sys_id']}/file")
        assert r.content == KEYSTORE_BYTES
    finally:
        await c.delete(f"/api/now/table/sys_certificate/{cert_id}")


async def test_list_limit_default_and_pagination(client: httpx.AsyncClient) -> None:
    cert_id = await _keystore(client)
    ids = [(await _upload(client, cert_id))["sys_id"] for _ in range(3)]
    r = await client.get(
        "/api/now/attachment", params={"sysparm_query": f"table_sys_id={cert_id}", "sysparm_limit": "2"}
    )
    assert r.headers["X-Total-Count"] == "3" and [a["sys_id"] for a in r.json()["result"]] == ids[:2]
    r = await client.get(
        "/api/now/attachment",
        params={"sysparm_query": f"table_sys_id={cert_id}", "sysparm_limit": "2", "sysparm_offset": "2"},
    )
    assert [a["sys_id"] for a in r.json()["result"]] == ids[2:]


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({"table_sys_id": "{id}", "file_name": "a"}, {"Content-Type": "application/octet-stream"}, 400),
        ({"table_name": "sys_certificate", "file_name": "a"}, {"Content-Type": "application/octet-stream"}, 400),
        ({"table_name": "sys_certificate", "table_sys_id": "{id}"}, {"Content-Type": "application/octet-stream"}, 400),
        ({"table_name": "sys_certificate", "table_sys_id": "{id}", "file_name": "a"}, {}, 400),
        (
            {"table_name": "sys_certificate", "table_sys_id": "0" * 32, "file_name": "a"},
            {"Content-Type": "text/plain"},
            404,
        ),
        ({"table_name": "u_nope", "table_sys_id": "{id}", "file_name": "a"}, {"Content-Type": "text/plain"}, 400),
    ],
    ids=["no-table", "no-record", "no-file-name", "no-content-type", "missing-record", "unknown-table"],
)
async def test_raw_upload_errors(app: Starlette, params: dict[str, str], headers: dict[str, str], status: int) -> None:
    async with asgi_client(app) as client:
        cert_id = await _keystore(client)
        filled = {k: v.replace("{id}", cert_id) for k, v in params.items()}
        request = client.build_request("POST", "/api/now/attachment/file", params=filled, content=b"x", headers=headers)
        assert ("Content-Type" in request.headers) == ("Content-Type" in headers)
        r = await client.send(request)
    assert r.status_code == status, r.text
    assert r.json()["status"] == "failure"


async def test_roles_follow_the_target_table(app: Starlette, backend: Backend) -> None:
    async with asgi_client(app) as admin:
        cert_id = await _keystore(admin)
        meta = await _upload(admin, cert_id)
    async with asgi_client(app, auth=("wsa", "wsa-pass")) as wsa:
        # web_service_admin cannot see certificates: their attachments are invisible, uploads refused
        assert (await wsa.get(f"/api/now/attachment/{meta['sys_id']}")).status_code == 404
        r = await wsa.get("/api/now/attachment")
        assert r.json()["result"] == [] and r.headers["X-Total-Count"] == "0"
        r = await wsa.post(
            "/api/now/attachment/file",
            params={"table_name": "sys_certificate", "table_sys_id": cert_id, "file_name": "x"},
            content=b"x",
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 404
        msg = backend.records("sys_rest_message")[0]["sys_id"]
        r = await wsa.post(
            "/api/now/attachment/file",
            params={"table_name": "sys_rest_message", "table_sys_id": msg, "file_name": "notes.txt"},
            content=b"notes",
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 201
    async with asgi_client(app, auth=("itil", "itil-pass")) as itil:
        assert (await itil.delete(f"/api/now/attachment/{r.json()['result']['sys_id']}")).status_code == 404


async def test_attachments_follow_their_record(client: httpx.AsyncClient, backend: Backend) -> None:
    cert_id = await _keystore(client)
    meta = await _upload(client, cert_id)
    await client.delete(f"/api/now/table/sys_certificate/{cert_id}")
    assert backend.records("sys_attachment") == [] and backend.attachment_bytes(meta["sys_id"]) is None


async def test_table_api_reads_sys_attachment(client: httpx.AsyncClient) -> None:
    cert_id = await _keystore(client)
    meta = await _upload(client, cert_id)
    r = await client.get(
        "/api/now/table/sys_attachment",
        params={"sysparm_query": f"table_sys_id={cert_id}", "sysparm_fields": "sys_id,file_name,size_bytes"},
    )
    assert r.json()["result"] == [
        {"sys_id": meta["sys_id"], "file_name": "client.jks", "size_bytes": str(len(KEYSTORE_BYTES))}
    ]
