"""Credentials on the wire: a basic ``Authorization`` header, or OAuth 2.0 bearer tokens from ``/oauth_token.do``.

Tokens are fetched lazily, shared by concurrent requests (one fetch at a time), refreshed shortly before
they expire or after a 401, with the ``refresh_token`` grant when the instance gave one and a new grant
otherwise. Every secret and token is held as a ``SecretValue`` as soon as it is known, which registers it with
``mtls_config.redaction``: no message can show it, even when the instance echoes it back.
Never imports the emulator or the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mtls_config.client.failures import describe, error_envelope
from mtls_config.errors import AuthenticationFailed, BadResponse
from mtls_config.jsontext import loads
from mtls_config.secrets import SecretValue
from mtls_config.settings import Auth, BasicAuth, OAuthClientCredentials, OAuthPassword

TOKEN_PATH = "/oauth_token.do"
# Refresh this many seconds before the instance says a token expires, so a request never races the expiry.
EXPIRY_MARGIN = 30.0
DEFAULT_TOKEN_LIFETIME = 1800.0
MAX_TOKEN_LIFETIME = 86400.0


@dataclass(frozen=True)
class TokenReply:
    status: int
    body: bytes


PostForm = Callable[[dict[str, str]], Awaitable[TokenReply]]


class Authenticator(Protocol):
    async def header(self) -> str | None:
        """The ``Authorization`` header value for the next request."""
        ...

    async def renew(self, rejected: str | None) -> bool:
        """After a 401 on ``rejected``: get a fresh credential; False when trying again cannot help."""
        ...


class NoAuth:
    async def header(self) -> str | None:
        return None

    async def renew(self, rejected: str | None) -> bool:
        return False


class BasicAuthenticator:
    def __init__(self, auth: BasicAuth) -> None:
        pair = auth.username.encode("utf-8") + b":" + auth.password.reveal()
        # The encoded pair alone is a secret too (an echo of the header may drop "Basic ").
        published = auth.password.published
        self._pair = SecretValue(base64.b64encode(pair), "basic auth credentials", published=published)
        self._header = SecretValue(b"Basic " + self._pair.reveal(), "basic auth header", published=published)

    async def header(self) -> str | None:
        return self._header.reveal_text()

    async def renew(self, rejected: str | None) -> bool:
        return False


@dataclass(frozen=True)
class _Token:
    access: SecretValue
    refresh: SecretValue | None
    expires_at: float


class OAuthAuthenticator:
    """Bearer tokens for the client-credentials or password grant."""

    def __init__(
        self,
        auth: OAuthClientCredentials | OAuthPassword,
        post_form: PostForm,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._post_form = post_form
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def header(self) -> str | None:
        token = self._token
        if token is None or self._clock() >= token.expires_at:
            token = await self._fresh_token(stale=token)
        return "Bearer " + token.access.reveal_text()

    async def renew(self, rejected: str | None) -> bool:
        current = self._token
        if current is not None and rejected is not None and rejected != "Bearer " + current.access.reveal_text():
            return True  # another request already replaced the rejected token
        await self._fresh_token(stale=current, force=True)
        return True

    async def _fresh_token(self, *, stale: _Token | None, force: bool = False) -> _Token:
        async with self._lock:
            token = self._token
            if token is not None and token is not stale and (force or self._clock() < token.expires_at):
                return token  # refreshed by a concurrent request while we waited for the lock
            if stale is not None and stale.refresh is not None:
                refreshed = await self._request(
                    {"grant_type": "refresh_token", "refresh_token": stale.refresh.reveal_text()}, quiet=True
                )
                if refreshed is not None:
                    self._token = refreshed
                    return refreshed
            granted = await self._request(self._grant_form(), quiet=False)
            assert granted is not None
            self._token = granted
            return granted

    def _grant_form(self) -> dict[str, str]:
        auth = self._auth
        if isinstance(auth, OAuthPassword):
            return {"grant_type": "password", "username": auth.username, "password": auth.password.reveal_text()}
        return {"grant_type": "client_credentials"}

    async def _request(self, form: dict[str, str], *, quiet: bool) -> _Token | None:
        form = {**form, "client_id": self._auth.client_id, "client_secret": self._auth.client_secret.reveal_text()}
        reply = await self._post_form(form)
        if reply.status != 200:
            if quiet:
                return None  # a refused refresh token: fall back to a new grant
            message, detail = error_envelope(reply.body)
            said = describe(message, detail)
            raise AuthenticationFailed(
                f"the instance refused the OAuth {form['grant_type']} grant ({reply.status})"
                + (f": {said}" if said else ""),
                hint="check SN_CLIENT_ID/SN_CLIENT_SECRET (and SN_USERNAME/SN_PASSWORD for the password grant), "
                "and that the OAuth application registry entry is active",
                status=reply.status,
            )
        try:
            data = loads(reply.body, max_depth=4)
            access = data["access_token"]
        except (ValueError, KeyError, TypeError):
            raise BadResponse("the OAuth token endpoint answered without an access_token") from None
        if not isinstance(access, str) or not access:
            raise BadResponse("the OAuth token endpoint answered an empty access_token")
        refresh = data.get("refresh_token")
        try:
            lifetime = float(data.get("expires_in", DEFAULT_TOKEN_LIFETIME))
        except (TypeError, ValueError, OverflowError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        if math.isnan(lifetime):
            lifetime = DEFAULT_TOKEN_LIFETIME
        lifetime = min(max(lifetime, 0.0), MAX_TOKEN_LIFETIME)  # infinity too: a token is renewed within a day
        return _Token(
            access=SecretValue(access.encode("utf-8"), "oauth access token"),
            refresh=SecretValue(refresh.encode("utf-8"), "oauth refresh token")
            if isinstance(refresh, str) and refresh
            else None,
            expires_at=self._clock() + max(lifetime - EXPIRY_MARGIN, 0.0),
        )


def authenticator_for(
    auth: Auth | None, post_form: PostForm, *, clock: Callable[[], float] = time.monotonic
) -> Authenticator:
    if auth is None:
        return NoAuth()
    if isinstance(auth, BasicAuth):
        return BasicAuthenticator(auth)
    return OAuthAuthenticator(auth, post_form, clock=clock)
