"""Who is calling an emulated instance: its users and their roles, and the OAuth 2.0 token endpoint's grants and
bearer tokens.

Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import OAuthRefused


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str]

    def has_any(self, roles: frozenset[str]) -> bool:
        """Whether the user holds one of ``roles`` (admin holds every role; an empty set needs none)."""
        return not roles or "admin" in self.roles or bool(self.roles & roles)


@dataclass(frozen=True)
class Token:
    user: str
    client_id: str
    expires_at: float


class Accounts:
    """The users who can log in (``EmulatorConfig.users``) and the tokens issued to them. Passwords live only in
    the config, in memory: they are never stored or served."""

    def __init__(self, config: EmulatorConfig, now: Callable[[], float]) -> None:
        self.config = config
        self._now = now
        self._tokens: dict[str, Token] = {}
        self._refresh_tokens: dict[str, Token] = {}

    def authenticate(self, name: str, password: str) -> User | None:
        entry = self.config.users.get(name)
        if entry is None or not secrets.compare_digest(entry[0].encode(), password.encode()):
            return None
        return self.user(name)

    def user(self, name: str) -> User | None:
        entry = self.config.users.get(name)
        return None if entry is None else User(name, frozenset(entry[1]))

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
