"""Shared pieces of the reliability suite: sizes (CI vs full), the figures it reports, the convergence checks
every fault/crash/concurrency test ends with, and helpers to drive the CLI against a served emulator.

Sizes: the CI run is reduced but honest (every kind of fault, >= 20 kill points); ``MTLS_CONFIG_FULL=1`` runs
the full size documented in docs/security.md.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import os
import re
import shutil
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mtls_config.claims import inventory_keys, read_claims
from mtls_config.engine import make_planned
from mtls_config.instance import Instance
from mtls_config.inventory import PROPERTY_PREFIX, parse_part_name
from mtls_config.inventory_store import read_inventory
from mtls_config.lock import LOCK_PREFIX
from mtls_config.spec.loader import SpecSet

FULL = os.environ.get("MTLS_CONFIG_FULL") == "1"

# Figures the suite reports (the terminal summary, and $MTLS_CONFIG_RELIABILITY_RESULTS when set).
FIGURES: dict[str, int] = collections.Counter()
_figures_lock = threading.Lock()


def count(name: str, n: int = 1) -> None:
    with _figures_lock:
        FIGURES[name] += n


KEYSTORE_TYPES = {"key_store", "pkcs12_key_store"}


@dataclass(frozen=True)
class Converged:
    certificates: int
    profiles: int
    attachments: int
    journal_lines: int


async def seed_counts(client: Instance) -> dict[str, int]:
    """Records the instance holds that the stack must never lose (the seeded messages and their functions)."""
    tables = ("sys_rest_message", "sys_rest_message_fn", "sys_soap_message", "sys_soap_message_function")
    return {t: len(await client.list(t, fields=["sys_id"])) for t in tables}


async def assert_converged(
    client: Instance,
    specs: SpecSet,
    stack: str,
    *,
    journal_dirs: list[Path] | None = None,
    seeded: dict[str, int] | None = None,
) -> Converged:
    """The acceptance checks after a (re-)run: final state == desired (plan no-op), no duplicates, no orphan
    attachments, no active keystore without its file, no pending inventory entry, no lock left, nothing
    lost, and every owned resource accounted for in the journal."""
    planned = await make_planned(client, specs, instance_name="test", stack=stack)
    pending = [c.address for c in planned.plan.resource_changes if c.action != "no-op"]
    assert not planned.plan.errors, planned.plan.errors
    desired = {r.address for r in specs.resources}
    lost = [a for a in pending if a in desired]
    count("records_lost", len([c for c in planned.plan.resource_changes if c.action == "create"]))
    assert not pending, f"not converged: {pending[:10]} ({len(pending)} changes left); lost: {len(lost)}"

    certs = await client.list("sys_certificate", fields=["sys_id", "name", "type", "active"])
    names = collections.Counter(c["name"] for c in certs)
    duplicates = sorted(n for n, k in names.items() if k > 1)
    assert not duplicates, f"duplicate certificates: {duplicates[:10]}"
    profiles = await client.list("sys_protocol_profile", fields=["sys_id", "protocol"])
    protocols = collections.Counter(p["protocol"] for p in profiles)
    assert not [p for p, k in protocols.items() if k > 1], "duplicate protocol profiles"
    props = await client.list("sys_properties", query="nameSTARTSWITHmtls_config.", fields=["sys_id", "name"])
    prop_names = collections.Counter(p["name"] for p in props)
    assert prop_names[PROPERTY_PREFIX + stack] == 1, prop_names
    assert not [n for n in prop_names if n.startswith(LOCK_PREFIX)], f"lock left behind: {prop_names}"
    # A large inventory's part records: only those of the write the head names (one token) may remain.
    tokens = {parsed[0] for n in prop_names if (parsed := parse_part_name(stack, n)) is not None}
    assert len(tokens) <= 1, f"inventory parts of {len(tokens)} writes left behind"

    attachments = await client.list("sys_attachment", fields=["sys_id", "table_name", "table_sys_id", "file_name"])
    existing: dict[str, set[str]] = {"sys_certificate": {c["sys_id"] for c in certs}}
    existing["sys_properties"] = {p["sys_id"] for p in props}
    per_record: collections.Counter[str] = collections.Counter()
    orphans = []
    for a in attachments:
        table = a["table_name"]
        ids = existing.get(table)
        if ids is None:
            ids = existing[table] = {r["sys_id"] for r in await client.list(table, fields=["sys_id"])}
        if a["table_sys_id"] not in ids:
            orphans.append(a)
        per_record[a["table_sys_id"]] += 1
    assert not orphans, f"orphan attachments: {orphans[:5]}"
    doubled = [k for k, n in per_record.items() if n > 1]
    assert not doubled, f"records with more than one attachment: {doubled[:5]}"
    broken = [
        c["name"]
        for c in certs
        if c["type"] in KEYSTORE_TYPES and c["active"] == "true" and per_record[c["sys_id"]] != 1
    ]
    assert not broken, f"active keystores without their file: {broken[:5]}"

    inventory, _record, _att = await read_inventory(client, stack)
    assert not [a for a, r in inventory.resources.items() if r.pending], "pending inventory entries left"
    assert set(inventory.resources) == desired, "the inventory does not list exactly the desired resources"
    # The stack claims exactly the names its inventory owns: none missing, none left over.
    owned_claims = {key.sys_id for key in inventory_keys(inventory)}
    own = (await read_claims(client, stack)).own_ids()
    assert own == owned_claims, (
        f"claims of stack {stack}: {len(own - owned_claims)} stale, {len(owned_claims - own)} missing"
    )

    if seeded is not None:
        now = await seed_counts(client)
        gone = sum(max(0, seeded[t] - now[t]) for t in seeded)
        count("records_lost", gone)
        assert not gone, f"seeded records lost: {seeded} -> {now}"

    lines = 0
    if journal_dirs is not None:
        mentioned: set[str] = set()
        for folder in journal_dirs:
            for path in sorted(folder.glob("*.jsonl")):
                for raw in path.read_text(encoding="utf-8").splitlines():
                    entry = json.loads(raw)
                    lines += 1
                    mentioned.add(str(entry.get("address", "")))
        unaccounted = sorted(desired - mentioned)
        assert not unaccounted, f"owned resources no journal line accounts for: {unaccounted[:10]}"
    return Converged(len(certs), len(profiles), len(attachments), lines)


def fault_counts(log: list[dict[str, Any]]) -> dict[str, int]:
    """Faults the emulator injected, from its request log: 5xx, 429 and dropped/lost answers (status 0)."""
    statuses = collections.Counter(int(e["status"]) for e in log)
    return {
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "429": statuses.get(429, 0),
        "dropped_or_lost": statuses.get(0, 0),
        "requests": len(log),
    }


EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"


def example_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, password: str = "admin") -> Path:
    """A copy of the example stack as a spec repository and the working directory, for the CLI run in-process:
    no colours, wide lines, the instance user ``admin`` with ``password``, no other instance settings."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".mtls-config"))
    (repo / ".git").mkdir()
    monkeypatch.chdir(repo)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("SN_USERNAME", "admin")
    monkeypatch.setenv("SN_PASSWORD", password)
    for var in ("SN_INSTANCE", "SN_CLIENT_ID", "SN_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    return repo


async def read_body(receive: Any) -> bytes:
    """The whole body of an ASGI request."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def request_text(body: bytes) -> str:
    """A request body as text, with the bodies of a Batch API call's items decoded (they travel base64-encoded)."""
    text = body.decode("utf-8", "replace")
    try:
        items = json.loads(text).get("rest_requests", [])
    except (ValueError, AttributeError):
        return text
    for item in items if isinstance(items, list) else []:
        text += " " + str(item.get("url", ""))
        raw = item.get("body")
        if isinstance(raw, str):
            text += " " + base64.b64decode(raw).decode("utf-8", "replace")
    return text


def replaying(body: bytes) -> Any:
    """An ASGI ``receive`` that hands the app a body already read (by a wrapper that looked at it first)."""
    replayed = False

    async def receive() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class Meeting:
    """ASGI wrapper: holds each POST whose body (batch items decoded) holds ``marker`` until a second one has
    arrived (or ``wait`` seconds pass), so two runs reach that write at the same moment whatever their start-up
    times; ``both`` is set once they met. Open (``closed=False``), it lets everything through."""

    def __init__(self, app: Any, marker: str, *, wait: float, closed: bool = True) -> None:
        self.app = app
        self.state = app.state
        self.marker = marker
        self.wait = wait
        self.closed = closed
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.arrived = 0
        self.both = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.closed or scope["type"] != "http" or scope["method"] != "POST" or "/_emulator" in scope["path"]:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if self.marker in request_text(body):
            with self.lock:
                self.arrived += 1
                if self.arrived >= 2:
                    self.both.set()
            await asyncio.to_thread(self.both.wait, self.wait)
        await self.app(scope, replaying(body), send)


def project(root: Path, stack: str, specs: str = ".") -> None:
    """A project file making ``root`` a spec repository of ``stack`` (so the CLI can run in it)."""
    (root / ".git").mkdir(exist_ok=True)
    (root / "mtls-config.yaml").write_text(f"stack: {stack}\nspecs: [{specs}]\n", encoding="utf-8")


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _unescape_json(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("u"):
            return chr(int(token[1:], 16))
        return {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(token, token)

    return re.sub(r'\\(["\\/bfnrt]|u[0-9a-fA-F]{4})', one, text)


def _decoded(text: str) -> set[str]:
    """``text`` and what it says once one layer of an encoding is undone: URL-encoding, JSON escapes, base64
    (any run, any alignment, either alphabet), hex. The leak search decodes the output rather than encoding the
    canaries, so it does not share the masking code's idea of which forms exist."""
    out = {text, urllib.parse.unquote(text), urllib.parse.unquote_plus(text), _unescape_json(text)}
    for run in re.findall(r"[A-Za-z0-9+/_-]{12,}={0,2}", text):
        for offset in range(4):
            chunk = run[offset:]
            chunk = chunk[: len(chunk) - len(chunk) % 4].replace("-", "+").replace("_", "/")
            with contextlib.suppress(ValueError):
                out.add(base64.b64decode(chunk).decode("utf-8", "replace"))
    for run in re.findall(r"[0-9a-fA-F]{16,}", text):
        for offset in range(2):
            chunk = run[offset:]
            with contextlib.suppress(ValueError):
                out.add(bytes.fromhex(chunk[: len(chunk) - len(chunk) % 2]).decode("utf-8", "replace"))
    return out


def decoded_views(text: str) -> set[str]:
    """``text`` with up to two layers of encoding undone, in every combination (a JSON body URL-encoded by an
    echo; a batch item's base64 body quoted as a JSON string): a canary found in none of them did not leak."""
    return {view for once in _decoded(text) for view in _decoded(once)}
