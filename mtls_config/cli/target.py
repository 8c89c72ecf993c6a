"""Which instance a command talks to, and how: ``--instance URL|local``, ``--env NAME``, ``SN_INSTANCE``, or the
embedded local instance.

Resolution order for the URL: ``--instance``, then the project file's environment named by ``--env``, then
``$SN_INSTANCE``, else ``local``. ``local`` is the emulator stored at ``<project root>/.mtls-config/instance.db``
and served in-process, so ``mtls-config apply`` works on a fresh machine with nothing running. This is the only
module outside the emulator that imports it: the engine gets an ``InstanceClient`` and nothing else.
Never imports the engine (observe, diff, plan, apply); prints nothing but the ``--insecure`` warning, which every
run that connects with it must show (its callers in ``cli/`` print the rest).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import httpx
import typer

from mtls_config.cli.console import stderr
from mtls_config.errors import ProjectError
from mtls_config.secrets import SecretValue
from mtls_config.settings import (
    DEFAULT_COMMAND_TIMEOUT,
    LOCAL_INSTANCE,
    BasicAuth,
    InstanceSettings,
    is_loopback_host,
    settings_from_env,
)
from mtls_config.spec.project import AuthSettings, ProjectFile

if TYPE_CHECKING:
    from mtls_config.client import InstanceClient

LOCAL_STATE_DIR = ".mtls-config"
LOCAL_DB_NAME = "instance.db"
LOCAL_USER = "admin"
LOCAL_PASSWORD = "admin"  # the embedded instance's documented default; it never listens on a socket


def local_db_path(project: ProjectFile) -> Path:
    return project.root / LOCAL_STATE_DIR / LOCAL_DB_NAME


TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        metavar="SECONDS",
        help="Time allowed for all of the command's requests to the instance, retries and waits included; "
        "a read that stalls fails sooner.",
    ),
]


def connect(
    instance: str | None,
    *,
    env_name: str | None,
    project: ProjectFile,
    insecure: bool,
    ca_bundle: str | None,
    timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
) -> InstanceClient:
    """A client for the resolved target (``async with connect(...) as client``); its ``settings.url`` names it.
    ``timeout``: seconds for all its requests (``--timeout``). With ``insecure``, says so on stderr: every run."""
    from mtls_config.client import InstanceClient

    settings, transport = open_instance(
        instance, env_name=env_name, project=project, insecure=insecure, ca_bundle=ca_bundle
    )
    if insecure:
        stderr().print(f"warning: {insecure_warning(settings)}", markup=False)
    return InstanceClient(replace(settings, command_timeout=timeout), transport=transport)


def insecure_warning(settings: InstanceSettings) -> str:
    """What ``--insecure`` does on this run: it lets credentials and keystore passwords travel unencrypted."""
    parts = urlsplit(settings.url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        return (
            f"--insecure: the instance credentials and keystore passwords go to {parts.scheme}://{parts.netloc} "
            "over plain http, unencrypted: anyone on the network path can read them"
        )
    return (
        "--insecure: plain http:// to an instance on another machine is allowed on this run; credentials and "
        "keystore passwords sent that way travel unencrypted"
    )


def open_instance(
    instance: str | None,
    *,
    env_name: str | None,
    project: ProjectFile,
    insecure: bool,
    ca_bundle: str | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[InstanceSettings, httpx.AsyncBaseTransport | None]:
    """Settings for the target instance, and the in-process transport when the target is the local instance."""
    env = os.environ if environ is None else environ
    auth: AuthSettings | None = None
    url = instance
    if env_name is not None:
        chosen = project.environment(env_name)
        auth = chosen.auth
        url = url or chosen.instance
        if ca_bundle is None and chosen.ca_bundle is not None:
            bundle = Path(chosen.ca_bundle)
            ca_bundle = str(bundle if bundle.is_absolute() else project.root / bundle)
    settings = settings_from_env(url, env=env, auth=auth, ca_bundle=ca_bundle, insecure=insecure)
    if settings.url != LOCAL_INSTANCE:
        return settings, None
    return _local(settings, project)


def _local(settings: InstanceSettings, project: ProjectFile) -> tuple[InstanceSettings, httpx.AsyncBaseTransport]:
    from mtls_config.emulator import EmulatorConfig, create_app

    db_path = local_db_path(project)
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        ignore = db_path.parent / ".gitignore"
        if not ignore.exists():
            # The local instance's database holds keystore files and passwords: keep it out of git.
            ignore.write_text("# written by mtls-config: the local instance's state, never commit it\n*\n")
    except OSError as exc:
        raise ProjectError(f"cannot create the local instance's folder {db_path.parent}: {exc.strerror}") from None
    app = create_app(EmulatorConfig(db_path=db_path, seed_data=True))
    auth = BasicAuth(LOCAL_USER, SecretValue(LOCAL_PASSWORD.encode(), "local instance default", published=True))
    return replace(settings, auth=auth), httpx.ASGITransport(app=app)
