"""The stack lock: one apply at a time per stack, recorded on the instance itself.

The lock is a ``sys_properties`` record named ``mtls_config.lock.<stack>`` whose value is JSON: who holds it
(``user@host:pid``, and the process's identity: host, boot, pid namespace, pid and start time), a random token,
when it was taken and when it expires. ``apply`` takes it before its first write and releases it afterwards,
also when the apply fails or is cancelled (``release_quietly`` is safe on a cancel path). It heals by itself:

- its lease is short (two minutes) and renewed every third of it while the holder runs, so the lock of a run
  that died frees itself within two minutes, and a long apply never outlives it;
- a lock whose holder ran on this machine (same host, boot and pid namespace) and whose process is gone is
  taken over at once, and the taker says so.

The Table API has no compare-and-swap, so the lock is built from what it does have:

- Taking a free lock is an insert with a sys_id derived from the stack name. The instance refuses a second
  insert of the same sys_id, so of two runs racing for a free lock exactly one insert succeeds.
- Taking over an *expired* lock (or one whose holder is gone) is a PATCH. A taker wins only if the instance answered its PATCH with
  ``sys_mod_count`` one above the count it read (nobody wrote in between) *and* a read-back shows its token
  (nobody wrote after). Every interleaving of two takers leaves at most one winner; a lost answer or retry
  makes a taker lose, never win twice: the lock fails closed.
- Every acquisition is confirmed by reading the record back and finding our token. A free lock is inserted
  without reading first (a held one refuses the insert, and is then read), and apply sends the read-back
  together with its own first reads (``confirm_held``): its fixed round trips are few (issue 18).

Never imports the client's transport, the emulator or the CLI; talks to the instance through ``Instance``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mtls_config.changes import Finding
from mtls_config.errors import InstanceError, Interrupted, LockError, MtlsConfigError
from mtls_config.files import SYSTEM, read_file
from mtls_config.instance import Instance
from mtls_config.inventory_store import RECORD_FLAGS
from mtls_config.jsontext import loads

logger = logging.getLogger("mtls_config.lock")

LOCK_PREFIX = "mtls_config.lock."
TABLE = "sys_properties"
FIELDS = ("sys_id", "name", "value", "sys_mod_count")
DEFAULT_TTL = dt.timedelta(minutes=2)
RELEASE_TIMEOUT = 15.0  # seconds a release may take on the way out (a failure leaves it to the lease)
RELEASE_ATTEMPTS = 3  # a release whose requests fail (each after the client's own retries) is tried again
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


@dataclass(frozen=True)
class ProcessIdentity:
    """Enough to tell, on the holder's machine, whether the holder still runs. ``boot``, ``pidns`` and ``started``
    are None where the system does not say (no /proc): the comparison then rests on host and pid."""

    host: str
    pid: int
    boot: str | None = None  # /proc/sys/kernel/random/boot_id: a pid means nothing across a reboot
    pidns: str | None = None  # /proc/self/ns/pid: a pid means nothing in another container's namespace
    started: int | None = None  # the process's start time (clock ticks after boot): a reused pid differs

    def as_json(self) -> dict[str, object]:
        return {"host": self.host, "pid": self.pid, "boot": self.boot, "pidns": self.pidns, "started": self.started}

    @classmethod
    def from_json(cls, data: Any) -> ProcessIdentity | None:
        if not isinstance(data, dict):
            return None
        host, pid, started = data.get("host"), data.get("pid"), data.get("started")
        if not isinstance(host, str) or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        return cls(
            host=host,
            pid=pid,
            boot=_text_or_none(data.get("boot")),
            pidns=_text_or_none(data.get("pidns")),
            started=started if isinstance(started, int) and not isinstance(started, bool) else None,
        )

    def same_machine(self, other: ProcessIdentity) -> bool:
        return (self.host, self.boot, self.pidns) == (other.host, other.boot, other.pidns)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _system_text(path: str) -> str | None:
    try:
        return read_file(path, SYSTEM).decode("ascii", "replace").strip() or None
    except MtlsConfigError:
        return None


def _stat_of(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a process from /proc, or None where there is no /proc (or no such process)."""
    text = _system_text(f"/proc/{pid}/stat")
    if text is None or ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def this_process() -> ProcessIdentity:
    try:
        pidns: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = None
    found = _stat_of(os.getpid())
    return ProcessIdentity(
        host=socket.gethostname(),
        pid=os.getpid(),
        boot=_system_text("/proc/sys/kernel/random/boot_id"),
        pidns=pidns,
        started=found[1] if found else None,
    )


def process_gone(holder: ProcessIdentity, here: ProcessIdentity | None = None) -> bool:
    """Whether ``holder`` ran on this machine and no longer runs. False whenever that cannot be known for sure
    (another machine or container, or a lock written by an earlier version without the identity)."""
    here = here or this_process()
    if not holder.same_machine(here):
        return False
    if holder.pid == here.pid:
        # This very process holds it (its start time agrees), or an earlier one with the same pid since reboot.
        return holder.started is not None and here.started is not None and holder.started != here.started
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: a process of another user has that pid, so it runs
        pass
    found = _stat_of(holder.pid)
    if found is None:
        return False
    state, started = found
    # A zombie has finished (its parent has not collected it yet); a different start time: the pid was reused.
    return state == "Z" or (holder.started is not None and started != holder.started)


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
    process: ProcessIdentity | None = None

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

    def holder_gone(self, here: ProcessIdentity | None = None) -> bool:
        return self.process is not None and process_gone(self.process, here)


@dataclass
class HeldLock:
    """A lock this process holds: release it with ``release``."""

    stack: str
    sys_id: str
    holder: str
    token: str
    expires: dt.datetime
    acquired: dt.datetime | None = None
    process: ProcessIdentity | None = None
    taken_from: LockInfo | None = None  # the lock of a dead holder that this one took over before it expired
    released: bool = False  # given back (``release_seen``): the context manager has nothing left to do


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
        process=ProcessIdentity.from_json(data.get("process")),
    )


def _value(
    holder: str, token: str, acquired: dt.datetime, expires: dt.datetime, process: ProcessIdentity | None
) -> str:
    data: dict[str, object] = {"holder": holder, "token": token, "acquired": _fmt(acquired), "expires": _fmt(expires)}
    if process is not None:
        data["process"] = process.as_json()
    return json.dumps(data, sort_keys=True)


async def read_lock(client: Instance, stack: str) -> LockInfo | None:
    """The stack's lock record, or None when nobody holds it."""
    records = await _lock_records(client, stack)
    return records[0] if records else None


async def _lock_records(client: Instance, stack: str) -> list[LockInfo]:
    """Every record named as the stack's lock (normally at most one)."""
    rows = await client.list(TABLE, query=f"name={lock_name(stack)}", fields=list(FIELDS), page_size=10)
    return [_info(stack, row) for row in rows]


async def unrecorded_while_applying(
    client: Instance, stack: str, conflicted: Iterable[str], now: dt.datetime | None = None
) -> dict[str, Finding]:
    """Plan errors for records found on the instance and not owned (``conflicted``: the diff's conflicts) while
    another run holds this stack's lock: that apply is most likely creating them and has not recorded them yet (a
    plan's reads are not one snapshot), so the error says so rather than "stack S does not own it". One read of
    the lock, made only when there are such conflicts; none when the lock is free, expired or its holder is gone."""
    addresses = sorted(conflicted)
    if not addresses:
        return {}
    info = await read_lock(client, stack)
    now = now or _utcnow()
    if info is None or info.expired(now) or info.holder_gone():
        return {}
    message = (
        f"exists on the instance but stack '{stack}''s inventory does not record it, while an apply of this stack "
        f"is running ({info.describe(now)}): that apply is probably creating it right now"
    )
    hint = (
        "plan again once that apply has finished ('mtls-config lock status' shows it); if the record is still "
        "not the stack's then, set 'metadata.adopt: true' on the resource or run 'mtls-config import' to take it over"
    )
    return {address: Finding(address, "error", message, hint, kind="conflict") for address in addresses}


def release_hint(info: LockInfo, flags: str = "") -> str:
    """What to do about a lock another run holds; ``flags``: how the command found the instance
    (`` --env prod``), so that the commands given work as they are."""
    frees = f"if it died, the lock frees itself at {_fmt(info.expires)}" if info.expires else "if it died"
    return (
        f"wait for it to finish ({frees}); if that run is dead and you cannot wait, check with "
        f"'mtls-config lock status{flags}' and remove the lock with 'mtls-config lock release --force{flags}'"
    )


def _held_by_other(info: LockInfo, now: dt.datetime) -> LockError:
    error = LockError(
        f"stack '{info.stack}' is locked: another apply is running ({info.describe(now)})", hint=release_hint(info)
    )
    error.held = info
    return error


async def acquire(
    client: Instance,
    stack: str,
    *,
    holder: str | None = None,
    ttl: dt.timedelta | None = None,
    now: dt.datetime | None = None,
    process: ProcessIdentity | None = None,
    confirm: bool = True,
) -> HeldLock:
    """Take the stack's lock, or raise ``LockError`` naming the holder and the expiry. A lock that has expired, or
    whose holder ran on this machine and is gone, is taken over (``taken_from`` says from whom, for the latter).
    ``process``: the identity recorded (default: this process's). ``confirm`` False: the read-back that confirms
    the lock is left to the caller (``confirm_held``), to send it with its own first requests."""
    holder = holder or default_holder()
    process = process or this_process()
    now = now or dt.datetime.now(dt.UTC)
    expires = now + (ttl or lock_ttl())
    token = secrets.token_hex(16)  # chosen before anything is sent: a record carrying it can only be ours
    value = _value(holder, token, now, expires, process)
    mine = HeldLock(
        stack=stack,
        sys_id=lock_sys_id(stack),
        holder=holder,
        token=token,
        expires=expires,
        acquired=now,
        process=process,
    )
    try:
        # A free lock is the usual case: inserted at once, without reading it first. A held one refuses the
        # insert (the same sys_id) and is read then: taken over when it expired or its holder is gone.
        current = await _insert(client, stack, value, token, now)
        if current is not None:
            if not (current.expired(now) or current.holder_gone(process)):
                raise _held_by_other(current, now)
            mine.sys_id = current.sys_id
            if not current.expired(now):
                mine.taken_from = current
            try:
                answer = await client.update(TABLE, current.sys_id, {"value": value})
            except InstanceError:
                answer = {}
            if str(answer.get("sys_mod_count", "")) != str(current.mod_count + 1):
                # Someone else wrote between our read and our write (or a retry doubled ours): do not trust it.
                await _confirm(client, stack, token, now, taken_over=True)
        if confirm:
            await _confirm(client, stack, token, now)
    except BaseException:
        # Our write may have landed though this run will not hold the lock (its answer lost and the read after it
        # failed, a refused take-over, the run cancelled): a record with our token must not outlive the failure.
        # The release reads first and deletes only our token; it is bounded and never raises.
        await release_quietly(client, mine, warn=False)
        raise
    return mine


async def confirm_held(client: Instance, held: HeldLock) -> None:
    """The read-back that confirms a lock taken with ``acquire(confirm=False)``: ``LockError`` when it is not ours
    (our record, if it is there beside another's, removed)."""
    await _confirm(client, held.stack, held.token, held.acquired or dt.datetime.now(dt.UTC))


async def _insert(client: Instance, stack: str, value: str, token: str, now: dt.datetime) -> LockInfo | None:
    """Insert our lock record; None when it is ours, else the lock record that refused it (another run's)."""
    try:
        answer = await client.create(
            TABLE,
            {
                "name": lock_name(stack),
                "value": value,
                "type": "string",
                "description": "mtls-config apply lock",
                **RECORD_FLAGS,  # written on every apply: must not flush the instance's caches
            },
            sys_id=lock_sys_id(stack),
        )
    except InstanceError as refused:
        # Most likely another run inserted the same sys_id first: name it. Otherwise the error is ours.
        seen = await read_lock(client, stack)
        if seen is None:
            if not _refused_as_duplicate(refused):
                raise
            # Refused because a lock record was there, gone when read: its run finished meanwhile.
            raise LockError(
                f"could not take the lock of stack '{stack}': another apply held it and gave it back while this "
                "run was taking it",
                hint="run apply again: its plan reads what the other apply wrote",
            ) from None
        return None if seen.token == token else seen
    if _info(stack, answer).token == token and str(answer.get("sys_mod_count", "0")) != "0":
        # The instance took our insert for an update of a lock record that existed (it should refuse a duplicate
        # sys_id): someone else's lock may have been overwritten. Fail closed: the caller removes our record.
        raise LockError(
            f"could not take the lock of stack '{stack}': the instance overwrote an existing lock record instead of "
            "refusing a second insert of its sys_id",
            hint="mtls-config's lock needs an instance that refuses duplicate sys_ids; run apply again",
        )
    return None


def _refused_as_duplicate(error: InstanceError) -> bool:
    """The instance refused an insert because a record of that sys_id exists: the emulator says "duplicate sys_id";
    a real instance's database says "Duplicate entry '<sys_id>' for key 'PRIMARY'" (KB0748828, quoted in
    docs/emulator.md; its exact wording through the Table API is unconfirmed, so both are recognised)."""
    text = str(error).lower()
    return "duplicate sys_id" in text or ("duplicate entry" in text and "primary" in text)


async def _confirm(client: Instance, stack: str, token: str, now: dt.datetime, *, taken_over: bool = False) -> None:
    """Read the lock back: ours when the only lock record of the stack carries our token (a record of another
    name-sake sys_id, such as an earlier version's, makes ours give way)."""
    seen_all = await _lock_records(client, stack)
    seen = next((info for info in seen_all if info.token == token), seen_all[0] if seen_all else None)
    others = [info for info in seen_all if info.token != token]
    if seen is not None and seen.token == token and others:
        live = [info for info in others if not info.expired(now)]
        await _delete_if_ours(client, seen, token)
        if live:
            raise _held_by_other(live[0], now)
        raise LockError(
            f"could not take the lock of stack '{stack}': it has more than one lock record",
            hint="check with 'mtls-config lock status' and remove them with 'mtls-config lock release --force'",
        )
    if seen is not None and seen.token == token and not taken_over:
        return
    if seen is not None and seen.token == token:
        # We wrote last but cannot prove nobody wrote in between: give the lock up rather than share it.
        await _delete_if_ours(client, seen, token)
        raise LockError(
            f"could not take over the lock of stack '{stack}': another run was taking it at the same time",
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


async def release(client: Instance, held: HeldLock, *, warn: bool = True) -> bool:
    """Give the lock back if it is still ours; True when a record was removed. Safe to call twice. ``warn``: log
    it when the lock is another run's by now."""
    if held.released:
        return False
    return await release_seen(client, held, await read_lock(client, held.stack), warn=warn)


async def release_seen(client: Instance, held: HeldLock, seen: LockInfo | None, *, warn: bool = True) -> bool:
    """``release`` with the lock as read already (``read_lock``, sent with other reads: apply reads it with its
    last reads, and gives it back with its last writes)."""
    if seen is None or seen.token != held.token:
        if seen is not None and warn:
            logger.warning("the lock of stack %s was no longer ours at release", held.stack)
        held.released = True
        return False
    await client.delete(TABLE, seen.sys_id, missing_ok=True)
    held.released = True
    return True


async def release_quietly(
    client: Instance, held: HeldLock, *, timeout: float = RELEASE_TIMEOUT, warn: bool = True
) -> bool:
    """``release``, bounded in time and never raising: for the way out of a run, a failed or a cancelled one
    (Ctrl-C) included. A release that fails is logged; the lease frees the lock within its lifetime anyway.
    Cancelled itself (a second Ctrl-C), it stops waiting and raises ``CancelledError``."""
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(_release_persistently(client, held, warn))
    except (MtlsConfigError, TimeoutError) as exc:
        why = exc.message if isinstance(exc, MtlsConfigError) else f"no answer within {timeout:g} s"
        logger.warning("could not release the lock of stack %s (%s); it expires at %s", held.stack, why,
                       _fmt(held.expires))  # fmt: skip
        return False


async def _release_persistently(client: Instance, held: HeldLock, warn: bool) -> bool:
    """``release``, tried again when it fails: a lock left behind stops every other run for its lease, so one
    unlucky request (the client's retries spent) must not leave it. The caller bounds the time it may take."""
    for attempt in range(1, RELEASE_ATTEMPTS + 1):
        try:
            return await release(client, held, warn=warn)
        except MtlsConfigError:
            if attempt == RELEASE_ATTEMPTS:
                raise
            logger.info("releasing the lock of stack %s failed; trying again", held.stack)
    raise AssertionError("not reached")


async def force_release(client: Instance, stack: str) -> LockInfo | None:
    """Remove the stack's lock whoever holds it (``mtls-config lock release``); the record removed, if any."""
    seen = await read_lock(client, stack)
    if seen is not None:
        await client.delete(TABLE, seen.sys_id, missing_ok=True)
    return seen


async def renew(client: Instance, held: HeldLock, ttl: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Push the expiry of a lock we still hold to ``now + ttl``; False (and nothing written) when it is not ours."""
    if held.released:
        return False
    seen = await read_lock(client, held.stack)
    if seen is None or seen.token != held.token:
        return False
    now = now or dt.datetime.now(dt.UTC)
    value = _value(held.holder, held.token, held.acquired or now, now + ttl, held.process)
    await client.update(TABLE, seen.sys_id, {"value": value})
    return True


async def _keep_alive(client: Instance, held: HeldLock, ttl: dt.timedelta, sleep: Sleep, clock: Clock) -> None:
    """While the body runs, renew the lock every third of its lifetime, so a long apply never outlives it."""
    while True:
        await sleep(ttl.total_seconds() / 3)
        try:
            if not await renew(client, held, ttl, now=clock()):
                if held.released:
                    return
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
    notify: Callable[[str], None] | None = None,
    confirm: bool = True,
) -> AsyncIterator[HeldLock]:
    """``async with stack_lock(client, stack) as held:`` -- held for the body (renewed while it runs), released
    after it even when it fails or is cancelled (unless the body gave it back: ``release_seen``). ``notify`` is
    told, in a sentence, when a dead holder's lock was taken over (default: a log warning). ``confirm`` False: the
    body sends the lock's read-back (``confirm_held``) with its own first requests."""
    ttl = ttl or lock_ttl()
    held = await acquire(client, stack, ttl=ttl, now=clock(), confirm=confirm)
    if held.taken_from is not None:
        (notify or logger.warning)(took_over_message(held.taken_from))
    keeper = asyncio.ensure_future(_keep_alive(client, held, ttl, sleep, clock))
    failure: BaseException | None = None
    try:
        yield held
    except BaseException as exc:
        failure = exc
        raise
    finally:
        keeper.cancel()
        # Waits for the keeper without taking its cancellation for ours: cancelled again meanwhile (a second
        # Ctrl-C), this run stops waiting and the lease frees the lock.
        await asyncio.wait([keeper])
        if not keeper.cancelled() and keeper.exception() is not None:
            logger.warning("the lock keeper of stack %s stopped: %r", held.stack, keeper.exception())
        # Never hides the body's own error behind a failed release; the lease frees the lock by itself.
        released = True if held.released else await release_quietly(client, held)
        if isinstance(failure, Interrupted):
            failure.lock_released = released


def took_over_message(info: LockInfo) -> str:
    return (
        f"took over the lock of stack '{info.stack}' from {info.holder or 'an unknown holder'}: "
        "that process ran on this machine and is no longer running"
    )
