"""``mtls-config doctor``: can this account, on this instance, do what the specs need? Each check says what it found
and, when it is not ok, how to fix it.

The checks, in order: reachability, TLS, credentials (all three from the first request), then together: the user,
its roles, read access to each table the specs use (or, without specs, every table mtls-config uses), the columns
the specs need (the data dictionary), the Batch and Attachment APIs, the update set that would capture changes to
messages (``reference/servicenow-facts-2.md`` §9), and the instance's build. A check is ``ok``, ``warn`` (works,
but look at it) or ``fail``; ``skip`` when an earlier failure leaves nothing to check. The report passes when no
check fails.

Never prints (the CLI renders the report); never imports the emulator or the CLI; talks to the instance only
through ``DoctorInstance``.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from mtls_config.access import DOCTOR, HOW_TO_GRANT, Grants, Need, check_roles, needs, read_grants
from mtls_config.concurrency import gather_all
from mtls_config.errors import (
    AuthenticationFailed,
    InstanceUnreachable,
    MtlsConfigError,
    PermissionDenied,
    TableNotFound,
)
from mtls_config.instance import Instance
from mtls_config.observe import NaturalKeys, read_dictionary
from mtls_config.resources import registry
from mtls_config.settings import is_loopback_host
from mtls_config.spec.project import ProjectFile
from mtls_config.spec.stack import load_stack
from mtls_config.wording import plural

Status = Literal["ok", "warn", "fail", "skip"]
UPDATE_SET_PREFERENCE = "sys_update_set"  # the user preference naming its current update set (facts-2 §9)
DEFAULT_UPDATE_SET = "Default"
BUILD_PROPERTIES = ("glide.buildtag", "glide.war", "glide.buildname")
# Tables whose changes an update set captures (they extend sys_metadata, facts-2 §9).
CAPTURED = ("sys_rest_message", "sys_rest_message_fn", "sys_soap_message", "sys_soap_message_function")


class BatchAnswer(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def error_message(self) -> str: ...

    @property
    def ok(self) -> bool: ...


class DoctorInstance(Instance, Protocol):
    """What doctor needs beyond the engine's reads: single-page probes of a table, the attachments, the Batch API."""

    async def sample(
        self, table: str, *, query: str = "", fields: Sequence[str] | None = None, limit: int = 1
    ) -> builtins.list[dict[str, Any]]: ...

    async def sample_attachments(self, table: str, *, limit: int = 1) -> builtins.list[dict[str, Any]]: ...

    async def probe_batch(self) -> BatchAnswer: ...


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    found: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "found": self.found, "fix": self.fix}


@dataclass(frozen=True)
class Report:
    instance: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"instance": self.instance, "ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True)
class Scope:
    """What to check: the tables (and their columns) the specs use, or, without specs, every one the tool uses."""

    tables: tuple[str, ...]
    source: str  # "the specs of stack X", "every table mtls-config uses"

    @classmethod
    def everything(cls) -> Scope:
        return cls(tuple(sorted(registry.read_tables())), "every table mtls-config uses")

    @property
    def binds_messages(self) -> bool:
        return any(table in CAPTURED for table in self.tables)


async def diagnose(
    client: DoctorInstance, scope: Scope, *, url: str, local: bool = False, prelude: Sequence[Check] = ()
) -> Report:
    """Every check against ``client``; ``prelude``: checks the caller made already (the specs)."""
    checks: list[Check] = list(prelude)
    wanted = needs(scope.tables)
    try:
        grants: Grants | None = await read_grants(client)
    except AuthenticationFailed as exc:
        checks += [_reached(url), _tls(url, local), Check("credentials", "fail", exc.message, exc.hint or "")]
        return Report(url, tuple(checks + _skipped()))
    except InstanceUnreachable as exc:
        if "TLS" in exc.message:
            checks += [_reached(url), Check("tls", "fail", exc.message, exc.hint or "")]
        else:
            checks += [Check("reachability", "fail", exc.message, exc.hint or ""), Check("tls", "skip", "")]
        checks.append(Check("credentials", "skip", "not tried: the instance did not answer"))
        return Report(url, tuple(checks + _skipped()))
    except MtlsConfigError as exc:  # an answer, not a 401: the credentials were accepted
        grants = None
        roles_error: MtlsConfigError | None = exc
    else:
        roles_error = None
    checks += [_reached(url), _tls(url, local), Check("credentials", "ok", "accepted")]
    results = await gather_all(
        [
            _guarded("user", partial(_user, client)),
            _guarded("roles", partial(_roles, grants, roles_error, wanted)),
            *(_guarded(f"read {t}", partial(_read, client, t, grants)) for t in scope.tables),
            _guarded("columns", partial(_columns, client, scope)),
            _guarded("batch api", partial(_batch, client)),
            _guarded("attachment api", partial(_attachments, client)),
            _guarded("update set", partial(_update_set, client, scope)),
            _guarded("build", partial(_build, client)),
        ]
    )
    return Report(url, tuple(checks + results))


def unusable(target: str, error: MtlsConfigError, prelude: Sequence[Check] = ()) -> Report:
    """The report when the connection settings themselves are wrong (no credentials, a bad URL): nothing was sent."""
    checks = [*prelude, Check("settings", "fail", error.message, error.hint or "")]
    for name in ("reachability", "tls", "credentials"):
        checks.append(Check(name, "skip", "not tried: the connection settings are incomplete"))
    return Report(target, tuple(checks + _skipped()))


def _skipped() -> list[Check]:
    return [
        Check(name, "skip", "not checked: the instance cannot be used with these settings")
        for name in ("user", "roles", "read access", "columns", "batch api", "attachment api", "update set", "build")
    ]


def _host(url: str) -> str:
    """The host of an instance URL (``http://[::1]:8080/x`` -> ``::1``)."""
    return urlsplit(url).hostname or ""


def _reached(url: str) -> Check:
    return Check("reachability", "ok", f"{url} answered")


def _tls(url: str, local: bool) -> Check:
    if local:
        return Check("tls", "ok", "the embedded local instance: no network")
    if url.startswith("https://"):
        return Check("tls", "ok", "https, certificate verified")
    host = _host(url)
    if is_loopback_host(host):
        return Check("tls", "ok", "plain http to a loopback address (a local emulator); a real instance is https")
    return Check(
        "tls",
        "warn",
        "plain http to a non-loopback address: credentials and keystore passwords travel in clear",
        "use the instance's https:// URL",
    )


async def _guarded(name: str, check: Callable[[], Awaitable[Check]]) -> Check:
    """``check()``, a failure reported as a failed check. The check is made here, not by the caller: made and then
    cancelled before this ran (the doctor stopped by Ctrl-C), it would be left never awaited."""
    try:
        return await check()
    except MtlsConfigError as exc:
        return Check(name, "fail", exc.message, exc.hint or "")


async def _user(client: DoctorInstance) -> Check:
    rows = await client.sample("sys_user", query="sys_id=javascript:gs.getUserID()", fields=["user_name", "name"])
    if not rows:
        return Check("user", "warn", "the user cannot read its own sys_user record", "")
    row = rows[0]
    name = str(row.get("name") or "")
    return Check("user", "ok", str(row.get("user_name", "")) + (f" ({name})" if name else ""))


async def _roles(grants: Grants | None, error: MtlsConfigError | None, wanted: Sequence[Need]) -> Check:
    if grants is None:
        assert error is not None
        return Check("roles", "fail", f"the user's role grants cannot be read: {error.message}", HOW_TO_GRANT)
    try:
        check_roles(grants, wanted)
    except MtlsConfigError as exc:
        return Check("roles", "fail", exc.message, (exc.hint or "").replace(f". {DOCTOR}", ""))
    return Check("roles", "ok", "holds " + ", ".join(sorted(grants.roles)) + "; needs " + "; ".join(
        n.describe() for n in wanted
    ))  # fmt: skip


async def _read(client: DoctorInstance, table: str, grants: Grants | None) -> Check:
    name = f"read {table}"
    roles = registry.roles_of_table(table)
    try:
        rows = await client.sample(table, fields=["sys_id"])
    except TableNotFound as exc:
        return Check(name, "fail", exc.message, "the plugin that provides it may be missing; check the instance")
    except PermissionDenied as exc:
        return Check(name, "fail", f"refused: {exc.message}", exc.hint or HOW_TO_GRANT)
    if grants is not None and not grants.holds(roles):
        needed = " or ".join(roles)
        return Check(
            name,
            "fail",
            f"filtered: without {needed} the instance answers this user's reads with no rows",
            f"grant {needed} (see the roles check)",
        )
    return Check(name, "ok", "readable" + (" (rows found)" if rows else " (no rows yet)"))


async def _columns(client: DoctorInstance, scope: Scope) -> Check:
    dictionary = await read_dictionary(client, scope.tables)
    if not dictionary.readable:
        return Check(
            "columns",
            "warn",
            "sys_dictionary and sys_db_object returned nothing to this user: the columns were not checked",
            "let the user read sys_dictionary and sys_db_object (admin can)",
        )
    wanted = registry.written_columns(scope.tables, dictionary)
    lacking = registry.lacking_columns(scope.tables, dictionary)
    unknown = [t for t in wanted if not dictionary.knows(t)]
    count = sum(len(c) for c in wanted.values())
    if lacking:
        return Check(
            "columns",
            "fail",
            f"the instance has no column {', '.join(lacking)} ({count} needed for {scope.source})",
            "a write of a column the instance lacks is dropped silently: check the instance's release and plugins",
        )
    if unknown:
        return Check("columns", "warn", f"no dictionary entry for {', '.join(unknown)}", "")
    return Check("columns", "ok", f"all {plural(count, 'column')} mtls-config writes are present ({scope.source})")


async def _batch(client: DoctorInstance) -> Check:
    answer = await client.probe_batch()
    if not answer.ok:
        detail = answer.error_message or f"status {answer.status}"
        return Check("batch api", "fail", f"a GET through /api/now/v1/batch answered {detail}", "")
    return Check("batch api", "ok", "/api/now/v1/batch serves requests")


async def _attachments(client: DoctorInstance) -> Check:
    rows = await client.sample_attachments("sys_certificate")
    return Check(
        "attachment api", "ok", "/api/now/attachment lists certificates' files" + (" (some found)" if rows else "")
    )


async def _update_set(client: DoctorInstance, scope: Scope) -> Check:
    if not scope.binds_messages:
        return Check(
            "update set",
            "ok",
            f"nothing mtls-config writes for {scope.source} is captured (certificates and profiles are not "
            "tracked by update sets)",
        )
    preference = await client.sample(
        "sys_user_preference",
        query=f"user=javascript:gs.getUserID()^name={UPDATE_SET_PREFERENCE}",
        fields=["value"],
    )
    chosen = str(preference[0].get("value") or "") if preference else ""
    query = f"sys_id={chosen}" if chosen else f"name={DEFAULT_UPDATE_SET}"
    found = await client.sample("sys_update_set", query=query, fields=["sys_id", "name", "state", "application"])
    if not found:
        return Check(
            "update set",
            "warn",
            "the user's current update set cannot be read (sys_user_preference sys_update_set, sys_update_set)",
            "changes to REST/SOAP messages go to the user's current update set: see docs/concepts.md, "
            "'Update sets and promotion'",
        )
    current = found[0]
    name, state = str(current.get("name", "")), str(current.get("state", ""))
    where = f"changes to REST/SOAP messages are captured in update set '{name}' ({state or 'state unknown'})"
    never = (
        "apply each instance from git; never promote these captures: the protocol profile they reference is a sys_id "
        "that does not exist on the next instance"
    )
    if name == DEFAULT_UPDATE_SET:
        return Check("update set", "ok", where, never)
    return Check(
        "update set",
        "warn",
        where + ": someone may promote it with the captures in it",
        "set the user's current update set to Default (or a throwaway set that is never promoted); " + never,
    )


async def _build(client: DoctorInstance) -> Check:
    rows = await client.sample(
        "sys_properties", query="nameIN" + ",".join(BUILD_PROPERTIES), fields=["name", "value"], limit=10
    )
    values: Mapping[str, str] = {str(r.get("name")): str(r.get("value") or "") for r in rows}
    shown = [f"{name}={values[name]}" for name in BUILD_PROPERTIES if values.get(name)]
    if not shown:
        return Check("build", "warn", "the build properties cannot be read (" + ", ".join(BUILD_PROPERTIES) + ")", "")
    return Check("build", "ok", ", ".join(shown))


def scope_for(project: ProjectFile, env: str | None) -> tuple[Scope, Check]:
    """What to check for a spec repository: the tables its specs touch; without a project file or specs, every
    table mtls-config uses. The check says which, or why the specs could not be read."""
    if project.path is None:
        return Scope.everything(), Check("specs", "ok", "no project file here: checking every table mtls-config uses")
    try:
        stack = load_stack(None, env, project=project)
    except MtlsConfigError as exc:
        first = str(exc).splitlines()[0]
        return Scope.everything(), Check(
            "specs", "fail", f"the specs cannot be read ({first})", "run 'mtls-config validate' for every problem"
        )
    tables = NaturalKeys.of_specs(stack.specs).tables()
    if not tables:
        return Scope.everything(), Check("specs", "ok", f"stack '{stack.name}' has no resources: checking every table")
    source = f"the specs of stack '{stack.name}'"
    return Scope(tables, source), Check("specs", "ok", f"{plural(len(stack.specs.resources), 'resource')} in {source}")
