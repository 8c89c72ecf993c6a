"""What the engine needs from an instance connection, as a structural type.

``mtls_config.client.InstanceClient`` satisfies it; observe and apply depend only on this protocol, so
the engine never imports the transport or the emulator. Reads are by table and query; writes are typed
operations (``mtls_config.operations``), alone or batched: how either is spelled on the wire is the client's.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from mtls_config.operations import BatchableWrite, Operation, WriteResult


class Instance(Protocol):
    base_url: str

    async def list(
        self,
        table: str,
        *,
        query: str = "",
        fields: Sequence[str] | None = None,
        page_size: int = 1000,
        display_value: str = "false",
        exclude_reference_link: bool = True,
    ) -> builtins.list[dict[str, Any]]: ...

    async def list_in(
        self,
        table: str,
        column: str,
        values: Iterable[str],
        *,
        fields: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> builtins.list[dict[str, Any]]: ...

    async def get(self, table: str, sys_id: str, *, fields: Sequence[str] | None = None) -> dict[str, Any] | None: ...

    async def create(
        self, table: str, values: Mapping[str, str], *, sys_id: str | None = None, input_display_value: bool = False
    ) -> dict[str, Any]: ...

    async def update(
        self, table: str, sys_id: str, values: Mapping[str, str], *, input_display_value: bool = False
    ) -> dict[str, Any]: ...

    async def delete(self, table: str, sys_id: str, *, missing_ok: bool = True) -> None: ...

    async def list_attachments(self, table: str, sys_ids: Sequence[str]) -> builtins.list[dict[str, Any]]: ...

    async def list_table_attachments(self, table: str) -> builtins.list[dict[str, Any]]: ...

    async def upload_attachment(
        self,
        table: str,
        sys_id: str,
        file_name: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        *,
        replacing: Sequence[str] = (),
    ) -> dict[str, Any]: ...

    async def download_attachment(self, attachment_sys_id: str) -> bytes: ...

    async def delete_attachment(self, attachment_sys_id: str, *, missing_ok: bool = True) -> None: ...

    async def write(self, op: Operation) -> WriteResult: ...

    async def write_batch(self, ops: Sequence[BatchableWrite]) -> builtins.list[WriteResult | None]: ...
