"""The engine's typed writes on the wire: their Batch API encoding, what an answer says was done, and each write
alone and batched through the real client against the emulator."""

from __future__ import annotations

import base64
import json

import pytest

from mtls_config.client import BatchResponse, InstanceClient
from mtls_config.client.writes import batch_request, batch_result
from mtls_config.operations import Create, Delete, DeleteAttachment, Update, Upload

from .conftest import Control

pytestmark = pytest.mark.anyio


def _body(op: Create | Update | Delete | Upload) -> object:
    encoded = batch_request("1", op).encoded_body()
    return None if encoded is None else base64.b64decode(encoded)


def test_each_write_is_encoded_for_the_batch_api() -> None:
    create = Create("sys_certificate", "c1", {"name": "n", "key_store_password": "pw"}, input_display_value=True)
    request = batch_request("7", create)
    assert (request.id, request.method) == ("7", "POST")
    assert request.url == "/api/now/table/sys_certificate?sysparm_input_display_value=true"
    assert json.loads(_body(create)) == {"name": "n", "key_store_password": "pw", "sys_id": "c1"}  # type: ignore[arg-type]
    assert "pw" not in repr(request) and "pw" not in repr(create)

    narrow = batch_request("1", Create("sys_properties", "p1", {"value": "v"}, fields=("sys_id", "value")))
    assert narrow.url == "/api/now/table/sys_properties?sysparm_fields=sys_id%2Cvalue"

    update = batch_request("1", Update("sys_protocol_profile", "p1", {"default_port": "443"}))
    assert (update.method, update.url) == ("PATCH", "/api/now/table/sys_protocol_profile/p1")
    assert update.body == {"default_port": "443"}

    delete = batch_request("1", Delete("sys_certificate", "c1"))
    assert (delete.method, delete.url, delete.body, delete.content) == (
        "DELETE",
        "/api/now/table/sys_certificate/c1",
        None,
        None,
    )

    upload = Upload("sys_certificate", "c1", "client file.jks", b"\xfe\xed", "application/octet-stream")
    encoded = batch_request("1", upload)
    assert encoded.method == "POST"
    assert (
        encoded.url == "/api/now/attachment/file?table_name=sys_certificate&table_sys_id=c1&file_name=client+file.jks"
    )
    assert (encoded.content, encoded.content_type) == (b"\xfe\xed", "application/octet-stream")


@pytest.mark.parametrize(
    ("op", "status", "body", "done"),
    [
        (Create("t", "c1"), 201, {"result": {"sys_id": "c1"}}, True),
        (Create("t", "c1"), 500, None, False),
        (Update("t", "c1"), 200, {"result": {"sys_id": "c1"}}, True),
        (Delete("t", "c1"), 404, None, True),  # already gone: the delete holds
        (Delete("t", "c1"), 403, None, False),
        (Upload("t", "c1", "f", b"x", "a/b"), 201, {"result": {"sys_id": "a1"}}, True),
        (Upload("t", "c1", "f", b"x", "a/b"), 201, {"result": {}}, False),  # no id: a retry could not tell it apart
    ],
    ids=["create", "create-failed", "update", "delete-gone", "delete-refused", "upload", "upload-without-id"],
)
def test_what_an_answer_says_was_done(
    op: Create | Update | Delete | Upload, status: int, body: object, done: bool
) -> None:
    result = batch_result(op, BatchResponse(id="1", status=status, body=body))
    assert (result is not None) == done
    if result is not None and isinstance(body, dict):
        assert result.record == body["result"]
    assert batch_result(op, None) is None  # not answered at all


async def test_typed_writes_alone_and_batched(sn: InstanceClient, control: Control) -> None:
    created = await sn.write(Create("sys_certificate", "a" * 32, {"name": "one", "type": "trust_store"}))
    assert created.record is not None and created.record["name"] == "one"
    attached = await sn.write(Upload("sys_certificate", "a" * 32, "one.der", b"\x30\x00", "application/pkix-cert"))
    assert attached.record is not None
    await sn.write(DeleteAttachment(str(attached.record["sys_id"])))
    assert await sn.list_attachments("sys_certificate", ["a" * 32]) == []
    await sn.write(DeleteAttachment(str(attached.record["sys_id"])))  # already gone: done

    await control.clear()
    results = await sn.write_batch(
        [
            Create("sys_certificate", "b" * 32, {"name": "two", "type": "trust_store"}),
            Update("sys_certificate", "a" * 32, {"short_description": "edited"}),
            Upload("sys_certificate", "a" * 32, "one.der", b"\x30\x01", "application/pkix-cert"),
            Delete("sys_certificate", "c" * 32),  # never existed: done all the same
        ]
    )
    assert all(r is not None for r in results)
    assert [r["path"] for r in await control.requests()] == ["/api/now/v1/batch"]  # one round trip
    record = await sn.get("sys_certificate", "a" * 32, fields=["short_description"])
    assert record == {"short_description": "edited"}
    assert await sn.get("sys_certificate", "b" * 32) is not None
    await sn.write(Delete("sys_certificate", "b" * 32))
    assert await sn.get("sys_certificate", "b" * 32) is None
