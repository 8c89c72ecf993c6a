"""The writes the engine asks the instance for, as typed values, and what it gets back.

The kinds compile a change into these (``mtls_config.compile``); the runner (``mtls_config.apply``) and the
inventory store hand them to the client, one at a time or as a batch. How each is spelled on the wire (the
Table API path, the attachment upload URL, the Batch API's encoding) is the client's business, never the
engine's: ``mtls_config.client.writes``.

``what`` says what a step is for, safe to journal and print: it never holds a value.
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Create:
    """Insert a record with the sys_id chosen for it, so that a retry can never make a second one."""

    table: str
    sys_id: str
    values: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold the keystore password
    input_display_value: bool = False  # values are display values (a password2 field is encrypted from one)
    fields: tuple[str, ...] = ()  # the columns the answer should carry (all when empty)
    what: str = "create"


@dataclass(frozen=True)
class Update:
    table: str
    sys_id: str
    values: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold the keystore password
    input_display_value: bool = False
    what: str = "set fields"


@dataclass(frozen=True)
class Delete:
    """Delete a record; one already gone counts as done."""

    table: str
    sys_id: str
    what: str = "delete"


@dataclass(frozen=True)
class Upload:
    """Attach a file to a record."""

    table: str
    sys_id: str
    file_name: str
    content: bytes = field(repr=False)
    content_type: str
    what: str = "attach file"
    replacing: tuple[str, ...] = ()  # attachments this upload replaces: never mistaken for it on a retry


@dataclass(frozen=True)
class DeleteAttachment:
    """Delete an attachment; one already gone counts as done."""

    sys_id: str
    what: str = "remove old file"


RecordWrite = Create | Update | Delete
BatchableWrite = Create | Update | Delete | Upload  # what the Batch API can carry
Operation = Create | Update | Delete | Upload | DeleteAttachment


@dataclass(frozen=True)
class WriteResult:
    """What the instance answered to one write: the record (or, for an upload, the attachment's metadata) it
    returned, when it returned one."""

    record: Mapping[str, Any] | None = None
