"""The instance client: Table, Attachment and Batch APIs over httpx (async), with retries and accounting.

One ``InstanceClient`` per instance. It bounds concurrency with a semaphore, retries only what is safe to
repeat (reads, PATCH, DELETE, creates that carry their own ``sys_id``; anything the instance provably did
not process, such as a 429 or a refused connection), and maps every failure once, here, into
``mtls_config.errors``. Nothing it raises, logs or reprs carries a secret (a credential, a token, a keystore
password it sent): headers and bodies are never logged, transport exceptions are re-raised ``from None``, and
every message passes through ``mtls_config.redaction``.

Never imports the emulator or the CLI; the CLI hands in a transport when the target is the local instance.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import functools
import json
import logging
import random
import re
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from mtls_config import __version__
from mtls_config.client.answers import check_path, check_record, check_records, parse_answer
from mtls_config.client.auth import TOKEN_PATH, TokenReply, authenticator_for
from mtls_config.client.batch import BATCH_PATH, BatchRequest, BatchResponse, parse_batch_reply, split_batches
from mtls_config.client.deadline import Deadline
from mtls_config.client.failures import error_for_status, redirect_error
from mtls_config.client.query import in_list_chunks
from mtls_config.client.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from mtls_config.client.stats import RequestStats
from mtls_config.client.urls import UrlMaker
from mtls_config.client.writes import write, write_batch
from mtls_config.concurrency import gather_all
from mtls_config.errors import (
    AuthenticationFailed,
    BadResponse,
    InstanceError,
    InstanceTimeout,
    InstanceUnreachable,
    ProjectError,
)
from mtls_config.files import CERTIFICATE, read_file
from mtls_config.operations import BatchableWrite, Operation, WriteResult
from mtls_config.redaction import redact
from mtls_config.settings import InstanceSettings
from mtls_config.wording import plural

logger = logging.getLogger("mtls_config.client")

LOCAL_BASE_URL = "http://localhost"
TABLE_PATH = "/api/now/table"
ATTACHMENT_PATH = "/api/now/attachment"
MAX_BODY_BYTES = 64 * 1024 * 1024
# The instance's default per-item input limit is 5 MB; stay well under it for the whole batch body.
BATCH_MAX_BYTES = 4 * 1024 * 1024
BATCH_MAX_ITEMS = 50
BATCH_MAX_ROUNDS = 20
ATTACHMENT_PAGE_SIZE = 1000
MAX_FANOUT_PAGES = 100  # pages of one read asked for at once on the strength of X-Total-Count

Sleep = Callable[[float], Awaitable[None]]
# The client whose credentials gate the current task (and the tasks it starts) holds.
_HOLDING_GATE: contextvars.ContextVar[InstanceClient | None] = contextvars.ContextVar("holding_gate", default=None)


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    after_ambiguous: bool = False  # an earlier attempt may have been carried out by the instance


@dataclass(frozen=True)
class _Request:
    """What one request sends, however many attempts it takes."""

    op: str  # the operation it counts under (table.list, attachment.upload, ...)
    method: str
    path: str
    params: Mapping[str, str] | None
    content: bytes | None = field(repr=False)  # may hold the keystore password
    content_type: str | None
    accept: str
    allow: frozenset[int]  # error statuses the caller handles itself
    authenticate: bool

    @property
    def where(self) -> str:
        return f"{self.method} {self.path}"


class _Retryable(Exception):
    """One attempt failed in a way a later attempt may not. Internal: never leaves this module."""

    def __init__(self, final: InstanceError, *, ambiguous: bool, retry_after: float | None = None) -> None:
        super().__init__(final.message)
        self.final = final
        self.ambiguous = ambiguous  # the instance may have carried the request out
        self.retry_after = retry_after


Reconcile = Callable[[], Awaitable["_Reply | None"]]


class InstanceClient:
    """``async with InstanceClient(settings) as client: rows = await client.list("sys_certificate")``."""

    def __init__(
        self,
        settings: InstanceSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        batch_max_items: int = BATCH_MAX_ITEMS,
        batch_max_bytes: int = BATCH_MAX_BYTES,
    ) -> None:
        if settings.is_local and transport is None:
            raise InstanceError(
                "the local instance needs the embedded emulator's transport",
                hint="open it with mtls_config.cli.target.open_instance, or give an instance URL",
            )
        self.settings = settings
        self.base_url = LOCAL_BASE_URL if settings.is_local else settings.url
        self.stats = RequestStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._retry = retry or RetryPolicy(max_retries=settings.max_retries)
        self._max_body_bytes = max_body_bytes
        self._batch_max_items = batch_max_items
        self._batch_max_bytes = batch_max_bytes
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        # The batches whose bodies are made: no more than can be in flight. A body made before its turn to go out
        # was held while it waited (issue 18: an inventory of 20 000 resources is hundreds of batches at once).
        self._batch_bodies = asyncio.Semaphore(settings.max_concurrency)
        self._credentials_gate = asyncio.Lock()
        self._credentials_proven = False
        self._credentials_refused: AuthenticationFailed | None = None
        # What the request holding the gate met when it found no instance, and how many had arrived by then.
        self._unreachable: tuple[InstanceUnreachable, int] | None = None
        self._gate_arrivals = 0
        self._gate_holder: tuple[str, float] | None = None  # the request holding the gate, and since when
        self.deadline = Deadline(settings.command_timeout)
        self._auth = authenticator_for(settings.auth, self._post_token, clock=clock)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            verify=_verify(settings.verify),
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.max_concurrency),
            headers={"User-Agent": f"mtls-config/{__version__}"},
        )
        self._urls = UrlMaker(self._http.base_url)

    def __repr__(self) -> str:
        return f"InstanceClient({self.base_url!r})"

    async def __aenter__(self) -> InstanceClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- Table API -------------------------------------------------------------------------------------

    async def list(
        self,
        table: str,
        *,
        query: str = "",
        fields: Sequence[str] | None = None,
        page_size: int = 1000,
        display_value: str = "false",
        exclude_reference_link: bool = True,
    ) -> list[dict[str, Any]]:
        """Every record matching ``query``, following offset pagination; one request when it fits a page."""
        params: dict[str, str] = {
            "sysparm_query": _stable_order(query),
            "sysparm_display_value": display_value,
            "sysparm_exclude_reference_link": _flag(exclude_reference_link),
        }
        if fields is not None:
            params["sysparm_fields"] = ",".join(fields)
        return await self._paged("table.list", f"{TABLE_PATH}/{table}", params, page_size)

    async def list_in(
        self,
        table: str,
        column: str,
        values: Iterable[str],
        *,
        fields: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> builtins.list[dict[str, Any]]:
        """Every record whose ``column`` is one of ``values``: one ``IN`` query per URL-sized chunk, all chunks at
        once. A comma separates IN values and no escape for it is documented, so a value holding one gets an
        equality query of its own; a value holding ``^`` cannot be queried at all (``ValueError``)."""
        wanted = sorted(set(values))
        queries = [f"{column}IN{','.join(chunk)}" for chunk in in_list_chunks(v for v in wanted if "," not in v)]
        queries += [f"{column}={v}" for v in wanted if "," in v]
        pages = await gather_all(self.list(table, query=q, fields=fields, page_size=page_size) for q in queries)
        return [row for rows in pages for row in rows]

    async def sample(
        self, table: str, *, query: str = "", fields: Sequence[str] | None = None, limit: int = 1
    ) -> builtins.list[dict[str, Any]]:
        """At most ``limit`` records of ``table``: one request, never more pages (whether a table answers)."""
        params: dict[str, str] = {"sysparm_query": _stable_order(query), "sysparm_exclude_reference_link": "true"}
        if fields is not None:
            params["sysparm_fields"] = ",".join(fields)
        page, _ = await self._page("table.list", f"{TABLE_PATH}/{table}", params, limit, 0)
        return page or []

    async def sample_attachments(self, table: str, *, limit: int = 1) -> builtins.list[dict[str, Any]]:
        """At most ``limit`` attachment records of ``table``'s records, through the Attachment API: one request."""
        params = {"sysparm_query": _stable_order(f"table_name={table}")}
        page, _ = await self._page("attachment.list", ATTACHMENT_PATH, params, limit, 0)
        return page or []

    async def probe_batch(self) -> BatchResponse:
        """One harmless read (the caller's own role grants, one record) through the Batch API: whether it serves."""
        query = urlencode(
            {"sysparm_query": "user=javascript:gs.getUserID()", "sysparm_fields": "sys_id", "sysparm_limit": "1"}
        )
        (answer,) = await self.batch([BatchRequest("probe", "GET", f"{TABLE_PATH}/sys_user_has_role?{query}")])
        return answer

    async def get(self, table: str, sys_id: str, *, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
        """One record, or None when the instance says 404."""
        params = {"sysparm_exclude_reference_link": "true"}
        if fields is not None:
            params["sysparm_fields"] = ",".join(fields)
        reply = await self._call(
            "table.get", "GET", f"{TABLE_PATH}/{table}/{sys_id}", params=params, safe=True, allow=frozenset({404})
        )
        if reply.status == 404:
            return None
        return _result_object(reply, "table.get")

    async def create(
        self,
        table: str,
        values: Mapping[str, str],
        *,
        sys_id: str | None = None,
        input_display_value: bool = False,
    ) -> dict[str, Any]:
        """Insert a record. With ``sys_id`` the insert is idempotent: after an ambiguous failure the record is
        looked up by ``sys_id`` before anything is sent again, so a retry never makes a second record."""
        body = dict(values)
        if sys_id is not None:
            body["sys_id"] = sys_id
        params = {"sysparm_exclude_reference_link": "true", "sysparm_input_display_value": _flag(input_display_value)}
        reconcile: Reconcile | None = None
        if sys_id is not None:

            async def reconcile() -> _Reply | None:
                found = await self.get(table, sys_id)
                return None if found is None else _synthetic(201, found)

        reply = await self._call(
            "table.create",
            "POST",
            f"{TABLE_PATH}/{table}",
            params=params,
            json_body=body,
            safe=False,
            reconcile=reconcile,
        )
        return _result_object(reply, "table.create")

    async def update(
        self, table: str, sys_id: str, values: Mapping[str, str], *, input_display_value: bool = False
    ) -> dict[str, Any]:
        """Partial update (PATCH); repeating it leaves the same result, so it is retried."""
        params = {"sysparm_exclude_reference_link": "true", "sysparm_input_display_value": _flag(input_display_value)}
        reply = await self._call(
            "table.update", "PATCH", f"{TABLE_PATH}/{table}/{sys_id}", params=params, json_body=dict(values), safe=True
        )
        return _result_object(reply, "table.update")

    async def delete(self, table: str, sys_id: str, *, missing_ok: bool = True) -> None:
        await self._delete("table.delete", f"{TABLE_PATH}/{table}/{sys_id}", missing_ok=missing_ok)

    # -- Attachment API --------------------------------------------------------------------------------

    async def list_attachments(self, table: str, sys_ids: Sequence[str]) -> builtins.list[dict[str, Any]]:
        """Attachment metadata for all of ``sys_ids`` on ``table``: one query per URL-sized chunk, all chunks at
        once, each paginated."""
        queries = [f"table_name={table}^table_sys_idIN{','.join(chunk)}" for chunk in in_list_chunks(sys_ids)]
        pages = await gather_all(
            self._paged("attachment.list", ATTACHMENT_PATH, {"sysparm_query": _stable_order(q)}, ATTACHMENT_PAGE_SIZE)
            for q in queries
        )
        return [row for rows in pages for row in rows]

    async def list_table_attachments(self, table: str) -> builtins.list[dict[str, Any]]:
        """Metadata of every attachment on ``table``: needs no record ids, so it can go out with the first reads."""
        params = {"sysparm_query": _stable_order(f"table_name={table}")}
        return await self._paged("attachment.list", ATTACHMENT_PATH, params, ATTACHMENT_PAGE_SIZE)

    async def upload_attachment(
        self,
        table: str,
        sys_id: str,
        file_name: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        *,
        replacing: Collection[str] = (),
    ) -> dict[str, Any]:
        """Attach ``content`` to a record. Never blindly re-sent: after an ambiguous failure the record's
        attachments are listed, and one with this name, size and content (downloaded to compare) is taken as
        the upload having happened. ``replacing``: ids of attachments this upload replaces, which are never
        taken for it (pass them whenever the old and new files could be identical)."""

        async def reconcile() -> _Reply | None:
            for meta in await self.list_attachments(table, [sys_id]):
                if (
                    meta.get("sys_id") not in replacing
                    and meta.get("file_name") == file_name
                    and str(meta.get("size_bytes")) == str(len(content))
                    and await self.download_attachment(str(meta.get("sys_id"))) == content
                ):
                    return _synthetic(201, meta)
            return None

        reply = await self._call(
            "attachment.upload",
            "POST",
            f"{ATTACHMENT_PATH}/file",
            params={"table_name": table, "table_sys_id": sys_id, "file_name": file_name},
            content=content,
            content_type=content_type,
            safe=False,
            reconcile=reconcile,
        )
        return _result_object(reply, "attachment.upload")

    async def download_attachment(self, attachment_sys_id: str) -> bytes:
        reply = await self._call(
            "attachment.download", "GET", f"{ATTACHMENT_PATH}/{attachment_sys_id}/file", accept="*/*", safe=True
        )
        return reply.body

    async def delete_attachment(self, attachment_sys_id: str, *, missing_ok: bool = True) -> None:
        await self._delete("attachment.delete", f"{ATTACHMENT_PATH}/{attachment_sys_id}", missing_ok=missing_ok)

    # -- the engine's typed writes ----------------------------------------------------------------------

    async def write(self, op: Operation) -> WriteResult:
        """One typed write (create, update, delete, upload, delete attachment), retried where that is safe."""
        return await write(self, op)

    async def write_batch(self, ops: Sequence[BatchableWrite]) -> builtins.list[WriteResult | None]:
        """Typed writes through the Batch API, answers in order; None for a write the batch does not confirm
        (do it on its own). Raises ``InstanceError`` when the batch as a whole fails."""
        return await write_batch(self, ops)

    # -- Batch API -------------------------------------------------------------------------------------

    async def batch(self, requests: Sequence[BatchRequest]) -> builtins.list[BatchResponse]:
        """Run ``requests`` through ``/api/now/v1/batch``, in as many batches as the size limits need; requests
        the instance reports as unserviced are sent again in a follow-up batch. Answers come in request order."""
        ids = [r.id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("batch request ids must be unique")
        for request in requests:
            check_path(request.method, urlsplit(request.url).path)
        answers: dict[str, BatchResponse] = {}
        pending = list(requests)
        for _round in range(BATCH_MAX_ROUNDS):
            if not pending:
                break
            groups = split_batches(pending, max_items=self._batch_max_items, max_bytes=self._batch_max_bytes)
            outcomes = await asyncio.gather(*(self._send_batch(g) for g in groups), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            still: builtins.list[BatchRequest] = []
            for group, outcome in zip(groups, outcomes, strict=True):
                assert not isinstance(outcome, BaseException)
                serviced, unserviced = outcome
                for answer in serviced:
                    answers[answer.id] = answer
                for request in group:
                    if request.id in answers:
                        continue
                    if request.id not in unserviced and not request.safe_to_repeat:
                        raise BadResponse(
                            f"the Batch API neither serviced nor listed as unserviced request {request.id} "
                            f"({request.method} {request.url}); its outcome is unknown"
                        )
                    still.append(request)
            if len(still) == len(pending):
                raise BadResponse(f"the Batch API serviced none of {plural(len(pending), 'request')}; giving up")
            if still:
                logger.info("batch: re-sending %d unserviced requests", len(still))
            pending = still
        if pending:
            raise BadResponse(
                f"the Batch API left {plural(len(pending), 'request')} unserviced after {BATCH_MAX_ROUNDS} rounds"
            )
        return [answers[i] for i in ids]

    async def _send_batch(self, group: builtins.list[BatchRequest]) -> tuple[builtins.list[BatchResponse], set[str]]:
        async with self._batch_bodies:
            # The body as ``json_body`` would make it, made here so that the items' wire forms (every file's base64
            # a second time) are not held while the request is out.
            payload = {"batch_request_id": uuid.uuid4().hex, "rest_requests": [r.wire() for r in group]}
            body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
            del payload
            # A batch that holds a POST is not repeated after an ambiguous failure: its creates may have happened.
            reply = await self._call(
                "batch",
                "POST",
                BATCH_PATH,
                content=body,
                content_type="application/json",
                safe=all(r.safe_to_repeat for r in group),
            )
        serviced, unserviced = parse_batch_reply(_json(reply, "batch"))
        known = {r.id for r in group}
        return [s for s in serviced if s.id in known], set(unserviced)

    # -- plumbing --------------------------------------------------------------------------------------

    async def _paged(
        self, op: str, path: str, params: Mapping[str, str], page_size: int
    ) -> builtins.list[dict[str, Any]]:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        first, total = await self._page(op, path, params, page_size, 0)
        if first is None:
            return []
        rows = list(first)
        if len(first) < page_size or (total is not None and len(first) >= total):
            return rows
        if total is not None and total <= page_size * MAX_FANOUT_PAGES:
            # The count says how many pages are left: ask for them all at once, not one round trip each (a count
            # beyond any real table's is not trusted with that: pages are then read one after another).
            offsets = range(page_size, total, page_size)
            for page, _total in await gather_all(self._page(op, path, params, page_size, o) for o in offsets):
                if page is None:
                    return rows
                if page and page[0] == first[0]:
                    raise BadResponse(f"{op}: the instance ignored sysparm_offset (the same page came back twice)")
                rows.extend(page)
                if len(page) < page_size:
                    return rows
            if len(rows) >= total:
                return rows
        # No count, or rows beyond what it said: page on one after another until a short page.
        offset = len(rows)
        while True:
            page, _total = await self._page(op, path, params, page_size, offset)
            if page is None:
                return rows
            if page and len(page) == page_size and page[0] == rows[offset - page_size]:
                raise BadResponse(f"{op}: the instance ignored sysparm_offset (the same page came back twice)")
            rows.extend(page)
            offset += len(page)
            if len(page) < page_size:
                return rows

    async def _page(
        self, op: str, path: str, params: Mapping[str, str], page_size: int, offset: int
    ) -> tuple[builtins.list[dict[str, Any]] | None, int | None]:
        """One page and the instance's total count; (None, None) for a v1-style 404, which means "no rows"
        (a missing table is a 400 "Invalid table")."""
        page_params = {**params, "sysparm_limit": str(page_size), "sysparm_offset": str(offset)}
        reply = await self._call(op, "GET", path, params=page_params, safe=True, allow=frozenset({404}))
        if reply.status == 404:
            return None, None
        page = _json(reply, op).get("result")
        if not isinstance(page, list) or not all(isinstance(row, dict) for row in page):
            raise BadResponse(f"{op}: the instance answered a result that is not a list of records")
        return check_records(page, op), _int_header(reply.headers, "X-Total-Count")

    async def _delete(self, op: str, path: str, *, missing_ok: bool) -> None:
        reply = await self._call(op, "DELETE", path, safe=True, allow=frozenset({404}))
        if reply.status == 404 and not missing_ok and not reply.after_ambiguous:
            raise error_for_status(404, reply.body, method="DELETE", path=path, instance=self.base_url)

    async def _post_token(self, form: dict[str, str]) -> TokenReply:
        reply = await self._call(
            "oauth.token",
            "POST",
            TOKEN_PATH,
            content=urlencode(form).encode("ascii"),
            content_type="application/x-www-form-urlencoded",
            safe=True,
            authenticate=False,
            allow=frozenset(range(400, 500)) - {429},
        )
        return TokenReply(reply.status, reply.body)

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        safe: bool,
        reconcile: Reconcile | None = None,
        allow: frozenset[int] = frozenset(),
        authenticate: bool = True,
    ) -> _Reply:
        """Send with retries. ``safe``: may be repeated after an ambiguous failure. ``reconcile``: for an unsafe
        request, finds out after an ambiguous failure whether it was carried out (its answer, or None)."""
        check_path(method, path)
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            content_type = "application/json"
        request = _Request(op, method, path, params, content, content_type, accept, allow, authenticate)
        send = functools.partial(self._send, request, safe, reconcile)
        if not authenticate or self._credentials_proven or _HOLDING_GATE.get() is self:
            return await send()
        return await self._gated(request.where, send)

    async def _send(self, request: _Request, safe: bool, reconcile: Reconcile | None) -> _Reply:
        """One request with its retries, each wait within the command's time limit."""
        ambiguous_before = False
        retry = 0
        while True:
            try:
                try:
                    reply = await self._attempt(request, retry)
                except InstanceError:
                    # A re-sent create refused as a duplicate: the earlier attempt landed after our look-up.
                    if ambiguous_before and reconcile is not None:
                        done = await reconcile()
                        if done is not None:
                            return done
                    raise
                if ambiguous_before:
                    return _Reply(reply.status, reply.headers, reply.body, after_ambiguous=True)
                return reply
            except _Retryable as failure:
                if failure.ambiguous and not safe:
                    if reconcile is None:
                        raise failure.final from None
                    done = await self._reconciled(reconcile, failure)
                    if done is not None:
                        logger.info("%s: the attempt had been carried out; not sending it again", request.where)
                        return done
                if retry >= self._retry.max_retries:
                    raise failure.final from None
                ambiguous_before = ambiguous_before or failure.ambiguous
                delay = self._retry.delay(retry, self._rng, failure.retry_after)
                self._check_time_to_wait(failure, delay, retry)
                logger.info("%s: %s; retry %d in %.1f s", request.where, failure.final.message, retry + 1, delay)
                await self._sleep(delay)
                retry += 1

    def _check_time_to_wait(self, failure: _Retryable, delay: float, retry: int) -> None:
        """Raise the failure now when waiting to retry would end after the command's time limit: a
        ``Retry-After`` is honoured only within what is left."""
        left = self.deadline.remaining()
        asked = failure.retry_after
        if left is None or (delay < left and (asked is None or asked < left)):
            return
        final = failure.final
        if asked is not None and asked >= left:
            why = f"the instance asked to wait {asked:g} s (Retry-After) before trying again"
        else:
            why = f"the next try would wait {delay:.1f} s"
        raise type(final)(
            f"{final.message}; not retried: {why}, beyond the {max(left, 0):.1f} s left of the command's "
            f"{self.deadline.seconds:g} s (--timeout)",
            hint=final.hint,
            status=final.status,
        ) from None

    @staticmethod
    async def _reconciled(reconcile: Reconcile, failure: _Retryable) -> _Reply | None:
        """The reconciled answer; when the look-up itself fails, the failure that made it necessary is the
        one worth reporting (unless time ran out: that is the news)."""
        try:
            return await reconcile()
        except InstanceTimeout:
            raise
        except InstanceError:
            raise failure.final from None

    async def _gated(self, where: str, send: Callable[[], Awaitable[_Reply]]) -> _Reply:
        """Until the instance has accepted the credentials once, requests go one at a time, the first one with all
        its retries: a wrong password then costs one failed login, not one per concurrent request (instances
        lock accounts after a few), and an instance that does not answer costs one request's attempts, not
        every waiting request's in turn: the requests queued while it failed so fail unsent (a later request tries
        again). Waiting here counts against the command's time limit."""
        waiting_since = time.monotonic()
        arrival = self._gate_arrivals
        self._gate_arrivals += 1
        try:
            async with asyncio.timeout(self.deadline.remaining()):
                await self._credentials_gate.acquire()
        except TimeoutError:
            holder = self._gate_holder
            detail = "queued behind the first request, which checks the credentials"
            if holder is not None:
                detail = (
                    f"queued behind {holder[0]}, the first request, which checks the credentials and had no "
                    f"complete answer after {time.monotonic() - holder[1]:.1f} s"
                )
            raise self.deadline.exceeded(where, time.monotonic() - waiting_since, detail=detail) from None
        try:
            if self._credentials_refused is not None:
                raise self._credentials_refused
            if self._unreachable is not None and arrival < self._unreachable[1]:
                first = self._unreachable[0]
                raise type(first)(
                    f"{where} was not sent: an earlier request found the instance unreachable ({first.message})",
                    hint=first.hint,
                )
            if not self._credentials_proven:
                holding = _HOLDING_GATE.set(self)  # what this request sends meanwhile (look-ups) is not queued
                self._gate_holder = (where, time.monotonic())
                try:
                    reply = await send()
                except AuthenticationFailed as exc:
                    self._credentials_refused = exc
                    raise
                except InstanceError as exc:
                    # Any answer but 401 means the credentials were accepted (a 403 is about roles, not logins).
                    self._credentials_proven = exc.status is not None
                    if isinstance(exc, InstanceUnreachable) and exc.status is None:
                        self._unreachable = (exc, self._gate_arrivals)  # for those queued until now
                    raise
                finally:
                    _HOLDING_GATE.reset(holding)
                    self._gate_holder = None
                self._credentials_proven = True
                return reply
        finally:
            self._credentials_gate.release()
        return await send()  # proven while this one waited: no need to hold the gate

    async def _attempt(self, request: _Request, retry: int) -> _Reply:
        method, path = request.method, request.path
        headers = {"Accept": request.accept}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        authenticate = request.authenticate
        authorization = await self._auth.header() if authenticate else None
        reply = await self._exchange(request, headers, authorization, retry)
        if reply.status == 401 and authenticate and await self._auth.renew(authorization):
            authorization = await self._auth.header()
            reply = await self._exchange(request, headers, authorization, retry)
        if 300 <= reply.status < 400:
            raise redirect_error(
                reply.status, reply.headers.get("Location", ""), method=method, path=path, instance=self.base_url
            )
        if reply.status in request.allow:
            return reply
        if reply.status in RETRYABLE_STATUSES:
            final = error_for_status(
                reply.status,
                reply.body,
                method=method,
                path=path,
                instance=self.base_url,
                attempts=retry + 1,
            )
            # A 429 is refused before any work is done; a 5xx from a gateway may come after the work was done.
            raise _Retryable(
                final,
                ambiguous=reply.status != 429,
                retry_after=parse_retry_after(reply.headers.get("Retry-After")),
            )
        if reply.status >= 400:
            raise error_for_status(reply.status, reply.body, method=method, path=path, instance=self.base_url)
        return reply

    async def _exchange(
        self, request: _Request, headers: dict[str, str], authorization: str | None, retry: int
    ) -> _Reply:
        """One HTTP round trip, under the concurrency limit; transport failures become ``_Retryable``."""
        op, method, path, content = request.op, request.method, request.path, request.content
        if authorization is not None:
            headers = {**headers, "Authorization": authorization}
        url = self._urls.url(self._http, path, request.params)  # made once, as httpx makes it (issue 18)
        if url is None:
            built = self._http.build_request(method, path, params=request.params, content=content, headers=headers)
        else:
            built = self._http.build_request(method, url, content=content, headers=headers)
        sent = _request_size(built, content)
        left = self.deadline.remaining()
        if left is not None and left <= 0:
            raise self.deadline.exceeded(request.where, 0.0, detail="no time was left to send it")
        async with self._semaphore:
            started = time.perf_counter()
            try:
                # The whole round trip, a slow drip of bytes included, within what is left of the time limit.
                async with asyncio.timeout(self.deadline.remaining()):
                    response = await self._http.send(built, stream=True)
                    try:
                        body = await self._read_body(response, op)
                    finally:
                        await response.aclose()
            except TimeoutError:
                elapsed = time.perf_counter() - started
                self.stats.record(op, bytes_sent=sent, bytes_received=0, retry=retry > 0, elapsed_ms=elapsed * 1000)
                tries = f", attempt {retry + 1}" if retry else ""
                raise self.deadline.exceeded(
                    request.where, elapsed, detail=f"the instance had not finished answering{tries}"
                ) from None
            except httpx.TransportError as exc:
                elapsed = (time.perf_counter() - started) * 1000
                self.stats.record(op, bytes_sent=sent, bytes_received=0, retry=retry > 0, elapsed_ms=elapsed)
                logger.debug("%s %s -> %s after %.0f ms", method, path, type(exc).__name__, elapsed)
                raise self._transport_failure(exc, method, path, retry) from None
        elapsed = (time.perf_counter() - started) * 1000
        received = len(body) + sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
        self.stats.record(op, bytes_sent=sent, bytes_received=received, retry=retry > 0, elapsed_ms=elapsed)
        logger.debug("%s %s -> %d in %.0f ms", method, path, response.status_code, elapsed)
        return _Reply(response.status_code, response.headers, body)

    async def _read_body(self, response: httpx.Response, op: str) -> bytes:
        declared = _int_header(response.headers, "Content-Length")
        if declared is not None and declared > self._max_body_bytes:
            raise BadResponse(f"{op}: the instance sent {declared} bytes, more than the {self._max_body_bytes} allowed")
        chunks: builtins.list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise BadResponse(f"{op}: the instance's answer exceeds {self._max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _transport_failure(self, exc: httpx.TransportError, method: str, path: str, retry: int) -> Exception:
        reason = redact(str(exc) or type(exc).__name__)
        where = f"{method} {path}"
        if _is_tls_failure(exc):
            return InstanceUnreachable(
                f"TLS verification of {self.base_url} failed ({where}): {reason}",
                hint="if the instance uses a private CA, pass --ca-bundle with its PEM (or set caBundle in the "
                "project file's environment); never turn verification off for a real instance",
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
            return InstanceUnreachable(f"cannot send {where} to {self.base_url}: {reason}")
        if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
            reason = (
                f"the connection stalled: no byte {'from' if isinstance(exc, httpx.ReadTimeout) else 'to'} "
                f"the instance for {self.settings.timeout:g} s"
            )
        # Connection not made: the instance never saw the request. Anything later: it may have.
        not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        tries = f" after {retry + 1} attempts" if retry else ""
        final = InstanceUnreachable(
            f"cannot reach {self.base_url}: {where} failed with {type(exc).__name__}{tries}: {reason}",
            hint="check the instance URL, your network or proxy (HTTPS_PROXY), and that the instance is up",
        )
        return _Retryable(final, ambiguous=not not_sent)


_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def _verify(verify: bool | str) -> bool | ssl.SSLContext:
    if isinstance(verify, str):
        # Read through the bounded reader (a regular file, at most a certificate file's cap), not by OpenSSL.
        pems = _PEM_CERTIFICATE.findall(read_file(verify, CERTIFICATE).decode("ascii", "replace"))
        if not pems:
            raise ProjectError(f"CA bundle {verify} holds no PEM certificate")
        try:
            return ssl.create_default_context(cadata="\n".join(pems))
        except (OSError, ssl.SSLError) as exc:
            raise ProjectError(f"cannot use CA bundle {verify}: {exc}") from None
    return verify


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _stable_order(query: str) -> str:
    """Offset pagination needs a stable order; add one unless the query sets its own."""
    if "ORDERBY" in query:
        return query
    return f"{query}^ORDERBYsys_id" if query else "ORDERBYsys_id"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _request_size(request: httpx.Request, content: bytes | None) -> int:
    head = len(request.method) + len(request.url.raw_path) + sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
    return head + (len(content) if content else 0)


def _json(reply: _Reply, op: str) -> dict[str, Any]:
    try:
        data = parse_answer(reply.body, op)
    except ValueError as exc:
        if "nested" in str(exc):
            raise BadResponse(f"{op}: the instance answered {reply.status} with {exc}") from None
        kind = reply.headers.get("Content-Type", "unknown type")
        raise BadResponse(
            f"{op}: the instance answered {reply.status} with a body that is not JSON ({kind})",
            hint="a proxy or login page may be answering instead of the instance; check the instance URL",
        ) from None
    if not isinstance(data, dict):
        raise BadResponse(f"{op}: the instance answered JSON that is not an object")
    return data


def _result_object(reply: _Reply, op: str) -> dict[str, Any]:
    result = _json(reply, op).get("result")
    if not isinstance(result, dict):
        raise BadResponse(f"{op}: the instance's answer has no result record")
    return check_record(result, op)


def _synthetic(status: int, record: dict[str, Any]) -> _Reply:
    return _Reply(status, httpx.Headers(), json.dumps({"result": record}).encode("utf-8"), after_ambiguous=True)
