"""Choosing the target: --instance, --env, SN_INSTANCE, and the embedded local instance by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.cli.target import local_db_path, open_instance
from mtls_config.client import InstanceClient
from mtls_config.errors import ProjectError, SecretError
from mtls_config.settings import BasicAuth
from mtls_config.spec.project import Project, ProjectFile

from .conftest import CANARY_PASSWORD

CREDENTIALS = {"SN_USERNAME": "svc", "SN_PASSWORD": CANARY_PASSWORD}


def project_at(root: Path, **data: object) -> ProjectFile:
    return ProjectFile(Project.model_validate(data), root / "mtls-config.yaml", root)


@pytest.mark.anyio
async def test_nothing_configured_means_the_local_instance_which_persists(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    settings, transport = open_instance(
        None, env_name=None, project=project, insecure=False, ca_bundle=None, environ={}
    )
    assert settings.is_local and transport is not None and isinstance(settings.auth, BasicAuth)
    async with InstanceClient(settings, transport) as sn:
        assert {r["name"] for r in await sn.list("sys_rest_message", fields=["name"])}  # seeded messages
        await sn.create("sys_properties", {"name": "kept.across.runs", "value": "1"})
    assert local_db_path(project).is_file()
    assert (tmp_path / ".mtls-config" / ".gitignore").read_text().strip().endswith("*")

    settings, transport = open_instance(
        "local", env_name=None, project=project, insecure=False, ca_bundle=None, environ={}
    )
    async with InstanceClient(settings, transport) as sn:
        assert await sn.list("sys_properties", query="name=kept.across.runs", fields=["value"]) == [{"value": "1"}]


def test_sn_instance_is_used_when_no_flag_is_given(tmp_path: Path) -> None:
    settings, transport = open_instance(
        None,
        env_name=None,
        project=project_at(tmp_path),
        insecure=False,
        ca_bundle=None,
        environ={**CREDENTIALS, "SN_INSTANCE": "acme"},
    )
    assert settings.url == "https://acme.service-now.com" and transport is None
    assert not (tmp_path / ".mtls-config").exists()


def test_env_takes_url_credentials_names_and_ca_bundle_from_the_project_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "corp-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    project = project_at(
        tmp_path,
        environments={
            "prod": {
                "instance": "https://acme.service-now.com",
                "auth": {"usernameEnv": "PROD_USER", "passwordEnv": "PROD_PASS"},
                "caBundle": "certs/corp-ca.pem",
            }
        },
    )
    environ = {"PROD_USER": "deployer", "PROD_PASS": CANARY_PASSWORD, "SN_INSTANCE": "elsewhere"}
    settings, transport = open_instance(
        None, env_name="prod", project=project, insecure=False, ca_bundle=None, environ=environ
    )
    assert settings.url == "https://acme.service-now.com" and transport is None
    assert isinstance(settings.auth, BasicAuth) and settings.auth.username == "deployer"
    assert settings.verify == str(tmp_path / "certs" / "corp-ca.pem")
    # --instance wins over the environment's URL; the environment still names the credentials
    flagged, _ = open_instance(
        "https://staging.service-now.com",
        env_name="prod",
        project=project,
        insecure=False,
        ca_bundle=None,
        environ=environ,
    )
    assert flagged.url == "https://staging.service-now.com" and flagged.auth == settings.auth
    with pytest.raises(SecretError, match="PROD_PASS"):
        open_instance(None, env_name="prod", project=project, insecure=False, ca_bundle=None, environ=CREDENTIALS)


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    project = project_at(tmp_path, environments={"dev": {"instance": "local"}, "prod": {"instance": "acme"}})
    with pytest.raises(ProjectError, match=r"unknown environment 'qa' \(known: dev, prod\)"):
        open_instance(None, env_name="qa", project=project, insecure=False, ca_bundle=None, environ={})


def test_plain_http_to_a_remote_host_needs_insecure(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    with pytest.raises(ProjectError, match="--insecure"):
        open_instance(
            "http://sn.internal", env_name=None, project=project, insecure=False, ca_bundle=None, environ=CREDENTIALS
        )
    settings, _ = open_instance(
        "http://sn.internal", env_name=None, project=project, insecure=True, ca_bundle=None, environ=CREDENTIALS
    )
    assert settings.insecure
