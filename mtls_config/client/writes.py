"""The engine's typed writes (``mtls_config.operations``) on the wire: each one as a Table or Attachment API call,
or as an item of a Batch API request, and the answer as a ``WriteResult``.

The paths, query parameters and bodies of writes are spelled here and nowhere else in the engine.
Never imports the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from mtls_config.client.batch import BatchRequest, BatchResponse
from mtls_config.operations import (
    BatchableWrite,
    Create,
    Delete,
    DeleteAttachment,
    Operation,
    Update,
    Upload,
    WriteResult,
)

if TYPE_CHECKING:
    from mtls_config.client.instance import InstanceClient

TABLE_PATH = "/api/now/table"
UPLOAD_PATH = "/api/now/attachment/file"


def batch_request(request_id: str, op: BatchableWrite) -> BatchRequest:
    """``op`` as one item of a Batch API request."""
    if isinstance(op, Upload):
        query = urlencode({"table_name": op.table, "table_sys_id": op.sys_id, "file_name": op.file_name})
        return BatchRequest(
            id=request_id, method="POST", url=f"{UPLOAD_PATH}?{query}", content=op.content, content_type=op.content_type
        )
    if isinstance(op, Delete):
        return BatchRequest(id=request_id, method="DELETE", url=f"{TABLE_PATH}/{op.table}/{op.sys_id}")
    params: dict[str, str] = {}
    if op.input_display_value:
        params["sysparm_input_display_value"] = "true"
    if isinstance(op, Create) and op.fields:
        params["sysparm_fields"] = ",".join(op.fields)
    query = f"?{urlencode(params)}" if params else ""
    if isinstance(op, Create):
        body = {**op.values, "sys_id": op.sys_id}
        return BatchRequest(id=request_id, method="POST", url=f"{TABLE_PATH}/{op.table}{query}", body=body)
    return BatchRequest(
        id=request_id, method="PATCH", url=f"{TABLE_PATH}/{op.table}/{op.sys_id}{query}", body=dict(op.values)
    )


def batch_result(op: BatchableWrite, answer: BatchResponse | None) -> WriteResult | None:
    """What an item's answer says was done; None when it does not say the write holds (redo it on its own)."""
    if answer is None:
        return None
    record = answer.body.get("result") if isinstance(answer.body, dict) else None
    if isinstance(op, Upload):
        # An upload holds only with the new attachment's id: without it, a retry could not tell it apart.
        if answer.ok and isinstance(record, dict) and record.get("sys_id"):
            return WriteResult(record)
        return None
    method = "DELETE" if isinstance(op, Delete) else "POST" if isinstance(op, Create) else "PATCH"
    if not answer.done(method):
        return None
    return WriteResult(record if isinstance(record, dict) else None)


async def write_batch(client: InstanceClient, ops: Sequence[BatchableWrite]) -> list[WriteResult | None]:
    """``ops`` through the Batch API, answers in order. Raises ``InstanceError`` when the batch as a whole fails."""
    answers = await client.batch([batch_request(str(i), op) for i, op in enumerate(ops)])
    by_id = {a.id: a for a in answers}
    return [batch_result(op, by_id.get(str(i))) for i, op in enumerate(ops)]


async def write(client: InstanceClient, op: Operation) -> WriteResult:
    """One write on its own, with the client's idempotent retries (a create carries its sys_id, an upload is
    looked for before it is sent again); a delete of something already gone is done."""
    if isinstance(op, Create):
        return WriteResult(
            await client.create(op.table, op.values, sys_id=op.sys_id, input_display_value=op.input_display_value)
        )
    if isinstance(op, Update):
        return WriteResult(
            await client.update(op.table, op.sys_id, op.values, input_display_value=op.input_display_value)
        )
    if isinstance(op, Delete):
        await client.delete(op.table, op.sys_id, missing_ok=True)
        return WriteResult()
    if isinstance(op, Upload):
        meta = await client.upload_attachment(
            op.table, op.sys_id, op.file_name, op.content, op.content_type, replacing=op.replacing
        )
        return WriteResult(meta)
    assert isinstance(op, DeleteAttachment)
    await client.delete_attachment(op.sys_id, missing_ok=True)
    return WriteResult()
