"""What the instance account may do: its roles, read in a run's first round, and the roles a stack needs.

A user without a table's role does not get an error from the Table API: its reads come back ``200 []``
(``reference/servicenow-facts-2.md`` §7, §10). A plan made from such reads would propose creating every record that
exists, and call every owned record "deleted outside mtls-config". So every command that reads a stack's tables
checks the roles first and stops, naming the roles that are missing, instead of planning from filtered reads.

The roles come from ``sys_user_has_role`` (``user=javascript:gs.getUserID()``, the role's name dot-walked), one
request in the first round. The roles each table needs come from the kinds (``Kind.table_roles``); the stack's
inventory and lock in ``sys_properties`` need admin.

The rule for an owned record that reads no longer return: once the roles are known to be held, it was deleted
outside mtls-config, and the plan creates it again. When the roles are missing, or the user cannot read its own
grants, no plan is made at all.

Never imports the client, the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mtls_config.concurrency import settle
from mtls_config.errors import BadResponse, PermissionDenied
from mtls_config.instance import Instance

T = TypeVar("T")

GRANTS_TABLE = "sys_user_has_role"
GRANTS_QUERY = "user=javascript:gs.getUserID()"
GRANTS_FIELDS = ("role.name", "inherited", "state", "user.user_name")
ADMIN = "admin"
# What the stack's own records need: the inventory and the lock are sys_properties records (admin on a stock
# instance, servicenow-api.md §6).
INVENTORY_ROLES = (ADMIN,)
HOW_TO_GRANT = (
    "grant them to the user in User Administration > Users > (the user) > Roles, or create sys_user_has_role "
    "records for it as an admin; or run with a user that holds them"
)
DOCTOR = "'mtls-config doctor' shows what the user can do"


@dataclass(frozen=True)
class Grants:
    """The account's active roles as its own grants list them; ``rows`` is how many grants came back at all."""

    user: str
    roles: frozenset[str]
    rows: int

    @property
    def unreadable(self) -> bool:
        """No grant came back: the user has no role at all, or may not read its own grants."""
        return self.rows == 0

    def holds(self, any_of: Sequence[str]) -> bool:
        """Whether one of ``any_of`` (or admin) is held; no role at all is needed when ``any_of`` is empty."""
        return not any_of or ADMIN in self.roles or any(role in self.roles for role in any_of)


def grants_of(rows: Iterable[Mapping[str, object]]) -> Grants:
    """Grants from ``sys_user_has_role`` rows: only active ones count (a requested or revoked role is not held)."""
    roles: set[str] = set()
    users: set[str] = set()
    count = 0
    for row in rows:
        count += 1
        if "role.name" not in row:
            raise BadResponse(
                f"the instance answered a {GRANTS_TABLE} record without a role.name (the role's name, dot-walked)"
            )
        state = str(row.get("state") or "active")
        name = str(row.get("role.name") or "")
        if name and state == "active":
            roles.add(name)
        user = str(row.get("user.user_name") or "")
        if user:
            users.add(user)
    return Grants(next(iter(users)) if len(users) == 1 else "", frozenset(roles), count)


async def read_grants(client: Instance) -> Grants:
    rows = await client.list(GRANTS_TABLE, query=GRANTS_QUERY, fields=list(GRANTS_FIELDS), page_size=1000)
    return grants_of(rows)


async def load_while_reading(client: Instance, load: Callable[[], T]) -> tuple[T, asyncio.Future[Grants]]:
    """``load()`` (reading the specs) in a thread while the plan's first request, the account's roles, is out. That
    request goes alone (it proves the credentials: ``InstanceClient``), so sent after the specs were read it was a
    round trip of its own before the plan's reads; sent now, it overlaps the reading. Give the read to
    ``engine.make_planned(grants=...)``, which takes it over (and settles it whatever happens). A spec error stops
    the run with the read cancelled or its answer dropped. Here, not in the engine: the request goes out before the
    engine's modules load (``load`` may import them, in its thread)."""
    grants = asyncio.ensure_future(read_grants(client))
    try:
        return await asyncio.to_thread(load), grants
    except BaseException:
        await settle(grants)
        raise


@dataclass(frozen=True)
class Need:
    """Roles one of which the account must hold (admin always will do), and the tables that need them."""

    any_of: tuple[str, ...]
    tables: tuple[str, ...]

    def roles_text(self) -> str:
        return " or ".join(self.any_of)

    def describe(self) -> str:
        """``admin, for KeyStore and TrustStoreCert (sys_certificate), the stack's inventory (sys_properties)``."""
        by_purpose: dict[str, list[str]] = {}
        for table in self.tables:
            by_purpose.setdefault(_purpose(table), []).append(table)
        return f"{self.roles_text()}, for " + _and([f"{p} ({', '.join(t)})" for p, t in by_purpose.items()])


def _purpose(table: str) -> str:
    # Imported here, not above: a run's first request (``load_while_reading``) goes out before the kinds load.
    from mtls_config.inventory_store import TABLE as INVENTORY_TABLE
    from mtls_config.resources import registry

    if table == INVENTORY_TABLE:
        return "the stack's inventory and lock"
    return _and(list(registry.kinds_of_table(table))) or "its records"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def needs(tables: Iterable[str], *, inventory: bool = True) -> list[Need]:
    """The roles the given tables need, grouped by role, tables sorted; the inventory's with ``inventory``."""
    from mtls_config.inventory_store import TABLE as INVENTORY_TABLE
    from mtls_config.resources import registry

    by_roles: dict[tuple[str, ...], set[str]] = {}
    for table in tables:
        roles = registry.roles_of_table(table)
        if roles:  # a table every user reads (the users and groups a certificate notifies) needs none
            by_roles.setdefault(roles, set()).add(table)
    if inventory:
        by_roles.setdefault(INVENTORY_ROLES, set()).add(INVENTORY_TABLE)
    return [Need(roles, tuple(sorted(found))) for roles, found in sorted(by_roles.items())]


class MissingRoles(PermissionDenied):
    """The account lacks roles the stack needs (or its roles could not be read): nothing was planned."""

    def __init__(self, message: str, *, missing: Sequence[Need], hint: str) -> None:
        super().__init__(message, hint=hint)
        self.missing = tuple(missing)


def missing_roles(grants: Grants, wanted: Sequence[Need]) -> list[Need]:
    return [need for need in wanted if not grants.holds(need.any_of)]


def check_roles(grants: Grants, wanted: Sequence[Need]) -> None:
    """Raise ``MissingRoles`` unless the account holds a role of every need."""
    who = f"instance user '{grants.user}'" if grants.user else "the instance user"
    if grants.unreadable:
        raise MissingRoles(
            f"{who} has no role grants this user can read (sys_user_has_role, {GRANTS_QUERY}, returned nothing): "
            "it holds no role, or it may not read its own grants. mtls-config needs "
            + "; ".join(n.describe() for n in wanted)
            + ". Without them the instance filters reads to empty lists, and a plan from those would propose "
            "creating records that exist",
            missing=wanted,
            hint=HOW_TO_GRANT.replace("grant them", "grant the roles", 1)
            + "; if it holds them, let it read its own sys_user_has_role records. "
            + DOCTOR,
        )
    lacking = missing_roles(grants, wanted)
    if lacking:
        held = ", ".join(sorted(grants.roles)) or "none"
        raise MissingRoles(
            f"{who} lacks the roles this needs: "
            + "; ".join(n.describe() for n in lacking)
            + f". It holds: {held}. Without them the instance filters reads to empty lists, and a plan from those "
            "would propose creating records that exist",
            missing=lacking,
            hint=f"{HOW_TO_GRANT}. {DOCTOR}",
        )
