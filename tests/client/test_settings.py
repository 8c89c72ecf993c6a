"""Settings from the environment: URL forms, credential variables, OAuth detection, the http:// rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.errors import ProjectError, SecretError
from mtls_config.settings import (
    BasicAuth,
    InstanceSettings,
    OAuthClientCredentials,
    OAuthPassword,
    settings_from_env,
)
from mtls_config.spec.project import AuthSettings

from .conftest import CANARY_CLIENT_SECRET, CANARY_PASSWORD

BASIC_ENV = {"SN_USERNAME": "svc", "SN_PASSWORD": CANARY_PASSWORD}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("acme", "https://acme.service-now.com"),
        ("https://acme.service-now.com/", "https://acme.service-now.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("local", "local"),
    ],
)
def test_instance_url_forms(given: str, expected: str) -> None:
    assert settings_from_env(given, env=BASIC_ENV).url == expected


def test_instance_comes_from_sn_instance_then_defaults_to_local() -> None:
    assert settings_from_env(None, env={**BASIC_ENV, "SN_INSTANCE": "dev1"}).url == "https://dev1.service-now.com"
    local = settings_from_env(None, env={})
    assert local.url == "local" and local.auth is None and local.is_local


def test_plain_http_to_a_remote_host_is_refused_unless_insecure() -> None:
    with pytest.raises(ProjectError, match=r"plain http:// to acme.example") as caught:
        settings_from_env("http://acme.example", env=BASIC_ENV)
    assert "--insecure" in str(caught.value)
    assert settings_from_env("http://acme.example", env=BASIC_ENV, insecure=True).insecure


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ProjectError) as caught:
        settings_from_env(f"https://svc:{CANARY_PASSWORD}@acme.service-now.com", env={})
    assert CANARY_PASSWORD not in str(caught.value)
    assert CANARY_PASSWORD not in repr(caught.value)


def test_basic_auth_from_the_standard_variables() -> None:
    settings = settings_from_env("acme", env=BASIC_ENV)
    assert isinstance(settings.auth, BasicAuth)
    assert settings.auth.username == "svc"
    assert settings.auth.password.reveal_text() == CANARY_PASSWORD
    assert CANARY_PASSWORD not in repr(settings)


def test_missing_password_names_the_variable() -> None:
    with pytest.raises(SecretError, match="SN_PASSWORD"):
        settings_from_env("acme", env={"SN_USERNAME": "svc"})


def test_oauth_is_detected_from_client_variables() -> None:
    env = {"SN_CLIENT_ID": "cid", "SN_CLIENT_SECRET": CANARY_CLIENT_SECRET}
    settings = settings_from_env("acme", env=env)
    assert isinstance(settings.auth, OAuthClientCredentials)
    both = settings_from_env("acme", env={**env, **BASIC_ENV})
    assert isinstance(both.auth, OAuthPassword)
    assert CANARY_CLIENT_SECRET not in repr(both) and CANARY_PASSWORD not in repr(both)


def test_project_file_names_other_variables_and_an_explicit_method() -> None:
    names = AuthSettings(method="basic", username_env="PROD_USER", password_env="PROD_PASS")
    env = {"PROD_USER": "u", "PROD_PASS": "p4ss", "SN_CLIENT_ID": "cid", "SN_CLIENT_SECRET": "s3cret"}
    settings = settings_from_env("acme", env=env, auth=names)
    assert isinstance(settings.auth, BasicAuth) and settings.auth.username == "u"
    oauth = AuthSettings(method="oauth", grant="client_credentials", client_id_env="CID", client_secret_env="CSEC")
    with pytest.raises(SecretError, match="CID"):
        settings_from_env("acme", env=env, auth=oauth)


def test_ca_bundle_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="CA bundle"):
        settings_from_env("acme", env=BASIC_ENV, ca_bundle=tmp_path / "missing.pem")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert settings_from_env("acme", env=BASIC_ENV, ca_bundle=bundle).verify == str(bundle)


def test_settings_validate_themselves() -> None:
    with pytest.raises(ProjectError):
        InstanceSettings(url="ftp://acme", auth=None)
    with pytest.raises(ProjectError):
        InstanceSettings(url="https://acme.service-now.com", auth=None, max_concurrency=0)


def test_the_variables_a_project_file_names_choose_the_method() -> None:
    env = {"PROD_USER": "u", "PROD_PASS": "p4ss", "SN_CLIENT_ID": "cid", "SN_CLIENT_SECRET": "s3cret"}
    basic = settings_from_env("acme", env=env, auth=AuthSettings(username_env="PROD_USER", password_env="PROD_PASS"))
    assert isinstance(basic.auth, BasicAuth)  # although SN_CLIENT_ID/SECRET happen to be set
    oauth = settings_from_env("acme", env={**env, "CID": "c"}, auth=AuthSettings(client_id_env="CID"))
    assert isinstance(oauth.auth, OAuthClientCredentials) and oauth.auth.client_id == "c"
