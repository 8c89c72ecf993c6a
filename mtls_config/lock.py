"""The stack lock: one apply at a time per stack, recorded on the instance itself.

The lock is a ``sys_properties`` record named ``mtls_config.lock.<stack>`` whose value is JSON: who holds it
(``user@host:pid``), a random token, when it was taken and when it expires. ``apply`` takes it before its
first write and releases it afterwards, also when the apply fails; a killed run leaves it behind, and it
stops counting once it has expired (or ``mtls-config lock release`` removes it). While an apply runs, the lock
is renewed every third of its lifetime, so a long apply never outlives it.

The Table API has no compare-and-swap, so the lock is built from what it does have:

- Taking a free lock is an insert with a sys_id derived from the stack name. The instance refuses a second
  insert of the same sys_id, so of two runs racing for a free lock exactly one insert succeeds.
- Taking over an *expired* lock is a PATCH. A taker wins only if the instance answered its PATCH with
  ``sys_mod_count`` one above the count it read (nobody wrote in between) *and* a read-back shows its token
  (nobody wrote after). Every interleaving of two takers leaves at most one winner; a lost answer or retry
  makes a taker lose, never win twice: the lock fails closed.
- Every acquisition is confirmed by reading the record back and finding our token.

Never imports the client's transport, the emulator or the CLI; talks to the instance through ``Instance``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mtls_config.errors import InstanceError, LockError, MtlsConfigError
from mtls_config.instance import Instance
from mtls_config.inventory_store import RECORD_FLAGS
from mtls_config.jsontext import loads

logger = logging.getLogger("mtls_config.lock")

LOCK_PREFIX = "mtls_config.lock."
TABLE = "sys_properties"
FIELDS = ("sys_id", "name", "value", "sys_mod_count")
DEFAULT_TTL = dt.timedelta(minutes=30)
TTL_VARIABLE = "MTLS_CONFIG_LOCK_TTL"  # seconds; for very long applies or tests
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lock_name(stack: str) -> str:
    return LOCK_PREFIX + stack


def lock_sys_id(stack: str) -> str:
    """The lock record's fixed sys_id: the same for every run of a stack, so that two inserts collide."""
    return hashlib.sha256(lock_name(stack).encode("utf-8")).hexdigest()[:32]


def default_holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def lock_ttl(environ: dict[str, str] | None = None) -> dt.timedelta:
    raw = (os.environ if environ is None else environ).get(TTL_VARIABLE, "")
    if not raw:
        return DEFAULT_TTL
    try:
        seconds = float(raw)
    except ValueError:
        raise LockError(f"{TTL_VARIABLE} must be a number of seconds, not {raw!r}") from None
    if seconds <= 0:
        raise LockError(f"{TTL_VARIABLE} must be positive")
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class LockInfo:
    """A lock record as read from the instance."""

    stack: str
    sys_id: str
    mod_count: int
    holder: str
    token: str
    acquired: dt.datetime | None
    expires: dt.datetime | None

    def expired(self, now: dt.datetime) -> bool:
        # A record we cannot read (hand-edited, empty) has no valid expiry: treat it as expired, not as eternal.
        return self.expires is None or self.expires <= now

    def describe(self, now: dt.datetime) -> str:
        expires = _fmt(self.expires)
        if self.expired(now):
            state = f"expired at {expires}"
        else:
            left = int((self.expires - now).total_seconds()) if self.expires else 0
            state = f"expires at {expires} (in {left // 60} min {left % 60} s)"
        return f"held by {self.holder or 'an unknown holder'} since {_fmt(self.acquired)}, {state}"


@dataclass(frozen=True)
class HeldLock:
    """A lock this process holds: release it with ``release``."""

    stack: str
    sys_id: str
    holder: str
    token: str
    expires: dt.datetime
    acquired: dt.datetime | None = None


def _fmt(when: dt.datetime | None) -> str:
    return when.strftime(TIME_FORMAT) if when else "an unknown time"


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _info(stack: str, row: dict[str, Any]) -> LockInfo:
    try:
        data = loads(str(row.get("value") or "{}"), max_depth=4)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    try:
        mod_count = int(str(row.get("sys_mod_count") or "0"))
    except ValueError:
        mod_count = 0
    return LockInfo(
        stack=stack,
        sys_id=str(row.get("sys_id") or ""),
        mod_count=mod_count,
        holder=str(data.get("holder") or ""),
        token=str(data.get("token") or ""),
        acquired=_parse_time(data.get("acquired")),
        expires=_parse_time(data.get("expires")),
    )


def _value(holder: str, token: str, acquired: dt.datetime, expires: dt.datetime) -> str:
    return json.dumps(
        {"holder": holder, "token": token, "acquired": _fmt(acquired), "expires": _fmt(expires)}, sort_keys=True
    )


async def read_lock(client: Instance, stack: str) -> LockInfo | None:
    """The stack's lock record, or None when nobody holds it."""
    rows = await client.list(TABLE, query=f"name={lock_name(stack)}", fields=list(FIELDS), page_size=10)
    if not rows:
        return None
    return _info(stack, rows[0])


def _held_by_other(info: LockInfo, now: dt.datetime) -> LockError:
    return LockError(
        f"stack '{info.stack}' is locked: another apply is running ({info.describe(now)})",
        hint="wait for it to finish; if that run is dead, check with 'mtls-config lock status' and remove the "
        "lock with 'mtls-config lock release' (or wait until it expires)",
    )


async def acquire(
    client: Instance,
    stack: str,
    *,
    holder: str | None = None,
    ttl: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> HeldLock:
    """Take the stack's lock, or raise ``LockError`` naming the holder and the expiry."""
    holder = holder or default_holder()
    now = now or dt.datetime.now(dt.UTC)
    expires = now + (ttl or lock_ttl())
    token = secrets.token_hex(16)
    value = _value(holder, token, now, expires)
    sys_id = lock_sys_id(stack)
    current = await read_lock(client, stack)
    if current is None:
        try:
            await client.create(
                TABLE,
                {
                    "name": lock_name(stack),
                    "value": value,
                    "type": "string",
                    "description": "mtls-config apply lock",
                    **RECORD_FLAGS,  # written on every apply: must not flush the instance's caches
                },
                sys_id=sys_id,
            )
        except InstanceError:
            # Most likely another run inserted the same sys_id first: name it. Otherwise the error is ours.
            seen = await read_lock(client, stack)
            if seen is None:
                raise
            if seen.token != token:
                raise _held_by_other(seen, now) from None
    elif current.expired(now):
        try:
            answer = await client.update(TABLE, current.sys_id, {"value": value})
        except InstanceError:
            answer = {}
        if str(answer.get("sys_mod_count", "")) != str(current.mod_count + 1):
            # Someone else wrote between our read and our write (or a retry doubled ours): do not trust it.
            await _confirm(client, stack, token, now, taken_over=True)
    else:
        raise _held_by_other(current, now)
    await _confirm(client, stack, token, now)
    taken = sys_id if current is None else current.sys_id
    return HeldLock(stack=stack, sys_id=taken, holder=holder, token=token, expires=expires, acquired=now)


async def _confirm(client: Instance, stack: str, token: str, now: dt.datetime, *, taken_over: bool = False) -> None:
    seen = await read_lock(client, stack)
    if seen is not None and seen.token == token and not taken_over:
        return
    if seen is not None and seen.token == token:
        # We wrote last but cannot prove nobody wrote in between: give the lock up rather than share it.
        await _delete_if_ours(client, seen, token)
        raise LockError(
            f"could not take over the expired lock of stack '{stack}': another run was taking it at the same time",
            hint="run apply again",
        )
    if seen is None:
        raise LockError(
            f"could not take the lock of stack '{stack}': the lock record disappeared while taking it",
            hint="run apply again",
        )
    raise _held_by_other(seen, now)


async def _delete_if_ours(client: Instance, info: LockInfo, token: str) -> None:
    if info.token == token:
        await client.delete(TABLE, info.sys_id, missing_ok=True)


async def release(client: Instance, held: HeldLock) -> bool:
    """Give the lock back if it is still ours; True when a record was removed."""
    seen = await read_lock(client, held.stack)
    if seen is None or seen.token != held.token:
        logger.warning("the lock of stack %s was no longer ours at release", held.stack)
        return False
    await client.delete(TABLE, seen.sys_id, missing_ok=True)
    return True


async def force_release(client: Instance, stack: str) -> LockInfo | None:
    """Remove the stack's lock whoever holds it (``mtls-config lock release``); the record removed, if any."""
    seen = await read_lock(client, stack)
    if seen is not None:
        await client.delete(TABLE, seen.sys_id, missing_ok=True)
    return seen


async def renew(client: Instance, held: HeldLock, ttl: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Push the expiry of a lock we still hold to ``now + ttl``; False (and nothing written) when it is not ours."""
    seen = await read_lock(client, held.stack)
    if seen is None or seen.token != held.token:
        return False
    now = now or dt.datetime.now(dt.UTC)
    value = _value(held.holder, held.token, held.acquired or now, now + ttl)
    await client.update(TABLE, seen.sys_id, {"value": value})
    return True


async def _keep_alive(client: Instance, held: HeldLock, ttl: dt.timedelta, sleep: Sleep, clock: Clock) -> None:
    """While the body runs, renew the lock every third of its lifetime, so a long apply never outlives it."""
    while True:
        await sleep(ttl.total_seconds() / 3)
        try:
            if not await renew(client, held, ttl, now=clock()):
                logger.warning("the lock of stack %s is no longer held by this run", held.stack)
                return
        except MtlsConfigError as exc:  # the next beat tries again; the lock lasts two more beats
            logger.warning("could not renew the lock of stack %s (%s)", held.stack, exc.message)


@asynccontextmanager
async def stack_lock(
    client: Instance,
    stack: str,
    *,
    ttl: dt.timedelta | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = _utcnow,
) -> AsyncIterator[HeldLock]:
    """``async with stack_lock(client, stack):`` -- held for the body (renewed while it runs), released after it
    even when it fails."""
    ttl = ttl or lock_ttl()
    held = await acquire(client, stack, ttl=ttl, now=clock())
    keeper = asyncio.ensure_future(_keep_alive(client, held, ttl, sleep, clock))
    try:
        yield held
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        try:
            await release(client, held)
        except MtlsConfigError as exc:
            # Never hide the body's own error behind a failed release; the lock expires by itself.
            logger.warning(
                "could not release the lock of stack %s (%s); it expires at %s", stack, exc.message, _fmt(held.expires)
            )
