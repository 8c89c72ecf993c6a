"""Who is calling an emulated instance: its users and their roles, and the OAuth 2.0 token endpoint's grants and
bearer tokens.

Users who can log in: those of ``EmulatorConfig.users`` (their passwords live only in the config, in memory), and
``sys_user`` records whose ``user_password`` an admin set (kept as a salted one-way hash). A user's roles are its
configured ones and those its ``sys_user_has_role`` rows grant (facts-2 §10).

Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import OAuthRefused
from mtls_config.emulator.store import Record, Store

_HASH = "pbkdf2_sha256"
_ITERATIONS = 4096  # a local emulator's file, not a production password store: cheap enough per request


def hash_password(clear: str) -> str:
    """The one-way form ``sys_user.user_password`` keeps."""
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", clear.encode(), salt.encode(), _ITERATIONS).hex()
    return f"{_HASH}${_ITERATIONS}${salt}${digest}"


def password_matches(stored: str, clear: str) -> bool:
    """Whether ``clear`` is the password behind ``stored``. A value that is not our hash (written without
    ``sysparm_input_display_value``, so kept as given) matches nothing."""
    kind, _, rest = stored.partition("$")
    iterations, _, rest = rest.partition("$")
    salt, _, digest = rest.partition("$")
    if kind != _HASH or not iterations.isdigit() or not digest:
        return False
    again = hashlib.pbkdf2_hmac("sha256", clear.encode(), salt.encode(), int(iterations)).hex()
    return secrets.compare_digest(again, digest)


def granted_roles(store: Store, user_sys_id: str) -> set[str]:
    """The names of the roles the user's active ``sys_user_has_role`` rows grant."""
    roles = store.tables["sys_user_role"]
    return {
        roles[row["role"]].get("name", "")
        for row in store.tables["sys_user_has_role"].values()
        if row.get("user") == user_sys_id and row.get("state", "active") == "active" and row.get("role") in roles
    }


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str]
    sys_id: str = ""  # its sys_user record ("" when it has none)

    def has_any(self, roles: frozenset[str]) -> bool:
        """Whether the user holds one of ``roles`` (admin holds every role; an empty set needs none)."""
        return not roles or "admin" in self.roles or bool(self.roles & roles)


@dataclass(frozen=True)
class Token:
    user: str
    client_id: str
    expires_at: float


class Accounts:
    """The users who can log in and the tokens issued to them. Not thread-safe: the backend holds its lock."""

    def __init__(self, config: EmulatorConfig, store: Store, now: Callable[[], float]) -> None:
        self.config = config
        self.store = store
        self._now = now
        self._tokens: dict[str, Token] = {}
        self._refresh_tokens: dict[str, Token] = {}

    def _record(self, name: str) -> Record | None:
        return next((r for r in self.store.tables["sys_user"].values() if r.get("user_name") == name), None)

    def authenticate(self, name: str, password: str) -> User | None:
        entry = self.config.users.get(name)
        if entry is not None:
            return self.user(name) if secrets.compare_digest(entry[0].encode(), password.encode()) else None
        record = self._record(name)
        if record is None or record.get("active") != "true" or record.get("locked_out") == "true":
            return None
        return self.user(name) if password_matches(record.get("user_password", ""), password) else None

    def user(self, name: str) -> User | None:
        """The user called ``name`` with its roles, or None when no such user exists."""
        entry = self.config.users.get(name)
        record = self._record(name)
        if entry is None and record is None:
            return None
        roles = set(entry[1]) if entry is not None else set()
        sys_id = record["sys_id"] if record is not None else ""
        if sys_id:
            roles |= granted_roles(self.store, sys_id)
        return User(name, frozenset(roles), sys_id)

    def forget_tokens(self) -> None:
        self._tokens.clear()
        self._refresh_tokens.clear()

    def issue_token(self, *, grant_type: str, form: Mapping[str, str]) -> dict[str, Any]:
        """OAuth 2.0 token endpoint (``/oauth_token.do``); raises OAuthRefused when refused."""
        client_id = form.get("client_id", "")
        expected = self.config.oauth_clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected.encode(), form.get("client_secret", "").encode()):
            raise OAuthRefused()
        if grant_type == "client_credentials":
            user = self.config.oauth_client_credentials_user
        elif grant_type == "password":
            found = self.authenticate(form.get("username", ""), form.get("password", ""))
            if found is None:
                raise OAuthRefused()
            user = found.name
        elif grant_type == "refresh_token":
            old = self._refresh_tokens.get(form.get("refresh_token", ""))
            if old is None or old.client_id != client_id or old.expires_at < self._now():
                raise OAuthRefused()
            user = old.user
        else:
            raise OAuthRefused("unsupported_grant_type")
        now = self._now()
        access = secrets.token_urlsafe(48)
        refresh = secrets.token_urlsafe(48)
        self._tokens[access] = Token(user, client_id, now + self.config.oauth_token_lifetime_s)
        self._refresh_tokens[refresh] = Token(user, client_id, now + self.config.oauth_refresh_token_lifetime_s)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": self.config.oauth_token_lifetime_s,
        }

    def token_user(self, token: str) -> User | None:
        found = self._tokens.get(token)
        if found is None or found.expires_at < self._now():
            return None
        return self.user(found.user)
