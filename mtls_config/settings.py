"""How to reach one instance: its URL, credentials, TLS options, timeouts and limits.

``settings_from_env`` builds an ``InstanceSettings`` from the environment (``SN_INSTANCE``, ``SN_USERNAME`` /
``SN_PASSWORD``, ``SN_CLIENT_ID`` / ``SN_CLIENT_SECRET``, or the variable names a project file's ``AuthSettings``
gives). Credentials come only from the environment, never from command-line arguments, and are held as
``SecretValue`` so that no repr, log line or error shows them.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mtls_config.errors import ProjectError, SecretError
from mtls_config.files import CERTIFICATE, read_file
from mtls_config.secrets import SecretValue
from mtls_config.spec.project import AuthSettings

LOCAL_INSTANCE = "local"
INSTANCE_VARIABLE = "SN_INSTANCE"
DEFAULT_COMMAND_TIMEOUT = 900.0  # --timeout: 15 minutes for all of a command's talk with the instance
_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: SecretValue


@dataclass(frozen=True)
class OAuthClientCredentials:
    """OAuth 2.0 client-credentials grant against ``/oauth_token.do``."""

    client_id: str
    client_secret: SecretValue


@dataclass(frozen=True)
class OAuthPassword:
    """OAuth 2.0 resource-owner password grant against ``/oauth_token.do``."""

    client_id: str
    client_secret: SecretValue
    username: str
    password: SecretValue


Auth = BasicAuth | OAuthClientCredentials | OAuthPassword


@dataclass(frozen=True)
class InstanceSettings:
    url: str  # "https://acme.service-now.com" (no trailing slash) or "local"
    auth: Auth | None
    verify: bool | str = True  # a CA bundle path, or whether to verify against the default CAs
    insecure: bool = False  # allow plain http:// to a host that is not loopback
    timeout: float = 30.0  # a read or write that moves no byte for this long fails (and is retried)
    command_timeout: float | None = None  # seconds for all of a command's requests, retries and waits (--timeout)
    max_concurrency: int = 10
    max_retries: int = 5

    def __post_init__(self) -> None:
        if self.url != LOCAL_INSTANCE:
            check_instance_url(self.url, insecure=self.insecure)
        if self.max_concurrency < 1:
            raise ProjectError("max_concurrency must be at least 1")
        if self.max_retries < 0:
            raise ProjectError("max_retries must not be negative")
        if self.timeout <= 0:
            raise ProjectError("timeout must be positive")
        if self.command_timeout is not None and self.command_timeout <= 0:
            raise ProjectError("the command's time limit must be positive")

    @property
    def is_local(self) -> bool:
        return self.url == LOCAL_INSTANCE


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_instance_url(url: str, *, insecure: bool = False) -> None:
    """Refuse URLs we must not send credentials to: no scheme/host, userinfo, or plain http to a remote host."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ProjectError(
            f"instance URL {url!r} is not an http(s) URL",
            hint="give https://<name>.service-now.com, a bare instance name (acme for "
            "https://acme.service-now.com: letters, digits and '-'), or 'local'",
        )
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and shell history; refuse without echoing them.
        raise ProjectError(
            "the instance URL must not contain credentials",
            hint="set SN_USERNAME and SN_PASSWORD (or OAuth variables) in the environment instead",
        )
    base = f"{parts.scheme}://{parts.netloc}"
    if parts.path not in ("", "/"):
        # An instance serves its APIs at its root: a path (a copied API or browser address) would be put in front
        # of every request path, and the instance answers "Requested URI does not represent any resource".
        raise ProjectError(
            f"instance URL {url!r} has a path ({parts.path!r}); mtls-config needs the instance's base URL",
            hint=f"give {base} (mtls-config adds the API paths itself)",
        )
    if parts.query or parts.fragment:
        raise ProjectError(
            f"instance URL {base} must not carry a query or fragment", hint=f"give the instance's base URL, {base}"
        )
    if parts.scheme == "http" and not insecure and not is_loopback_host(parts.hostname):
        raise ProjectError(
            f"refusing plain http:// to {parts.hostname}: credentials would travel unencrypted",
            hint="use https://, or pass --insecure if you really mean it (for a test server on a trusted network)",
        )


def normalize_instance_url(instance: str) -> str:
    """``acme`` (or ``Acme``: host names ignore case) -> ``https://acme.service-now.com``; a URL loses its trailing
    slash; ``local`` (in any case) stays."""
    value = instance.strip()
    if value.lower() == LOCAL_INSTANCE:
        return LOCAL_INSTANCE
    if _INSTANCE_NAME.match(value.lower()):
        return f"https://{value.lower()}.service-now.com"
    return value.rstrip("/")


def settings_from_env(
    instance: str | None,
    *,
    env: Mapping[str, str] | None = None,
    auth: AuthSettings | None = None,
    ca_bundle: str | Path | None = None,
    insecure: bool = False,
) -> InstanceSettings:
    """Settings for ``instance`` (or ``$SN_INSTANCE``, else ``local``) with credentials from the environment.

    With ``auth`` None, or an ``AuthSettings`` whose ``method`` was not set explicitly, the method is
    detected: OAuth when the project file names client variables, basic when it names only user variables;
    otherwise OAuth when the client id and secret variables are both set (password grant when the user
    and password variables are set too), basic auth otherwise. The local instance needs no credentials;
    it gets ``None`` here and the caller supplies the embedded instance's user.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    url = normalize_instance_url(instance or environ.get(INSTANCE_VARIABLE, "") or LOCAL_INSTANCE)
    if url != LOCAL_INSTANCE:
        check_instance_url(url, insecure=insecure)  # before credentials: a bad URL is the first thing to fix
    names = auth or AuthSettings()
    verify: bool | str = True
    if ca_bundle is not None:
        bundle = Path(ca_bundle)
        if not bundle.is_file():
            if bundle.exists():  # a FIFO, a device, a folder: the reader says which
                read_file(bundle, CERTIFICATE, shown=f"{bundle} (CA bundle)")
            raise ProjectError(f"CA bundle {bundle} does not exist or is not a file")
        verify = str(bundle)
    credentials = None if url == LOCAL_INSTANCE else _credentials(names, environ, explicit=auth is not None)
    return InstanceSettings(url=url, auth=credentials, verify=verify, insecure=insecure)


def _credentials(names: AuthSettings, environ: Mapping[str, str], *, explicit: bool) -> Auth:
    method = names.method
    named = names.model_fields_set if explicit else set()
    if "method" not in named:
        # Which variables the project file names says which method it means; else, which are set.
        if named & {"client_id_env", "client_secret_env"}:
            method = "oauth"
        elif named & {"username_env", "password_env"}:
            method = "basic"
        else:
            has_client = bool(environ.get(names.client_id_env)) and bool(environ.get(names.client_secret_env))
            method = "oauth" if has_client else "basic"
    grant = names.grant
    if method == "oauth" and "grant" not in names.model_fields_set:
        has_user = bool(environ.get(names.username_env)) and bool(environ.get(names.password_env))
        grant = "password" if has_user else "client_credentials"
    if method == "basic":
        return BasicAuth(
            username=_plain(environ, names.username_env, names.password_env),
            password=_secret(environ, names.password_env),
        )
    client_id = _plain(environ, names.client_id_env, names.client_secret_env)
    client_secret = _secret(environ, names.client_secret_env)
    if grant == "client_credentials":
        return OAuthClientCredentials(client_id=client_id, client_secret=client_secret)
    return OAuthPassword(
        client_id=client_id,
        client_secret=client_secret,
        username=_plain(environ, names.username_env, names.password_env),
        password=_secret(environ, names.password_env),
    )


def _plain(environ: Mapping[str, str], name: str, partner: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise SecretError(
            f"environment variable {name} is not set",
            hint=f"export {name} and {partner} with the instance credentials (never pass them as arguments)",
        )
    return value


def _secret(environ: Mapping[str, str], name: str) -> SecretValue:
    value = environ.get(name, "")
    if not value:
        raise SecretError(
            f"environment variable {name} is not set or empty",
            hint=f"export {name} from your secret store before running",
        )
    return SecretValue(value.encode("utf-8"), f"env:{name}")
