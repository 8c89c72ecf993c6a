"""The project file ``mtls-config.yaml``: discovery (stops at the repository root), defaults, environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.errors import ProjectError, SpecError
from mtls_config.spec.project import DEFAULT_STACK, find_project_file, load_project

from .conftest import EXAMPLE_STACK

PROJECT = """\
stack: payments-prod
specs: [resources]
environments:
  dev:
    instance: https://acme-dev.service-now.com
  prod:
    instance: https://acme.service-now.com
    auth: {method: oauth, clientIdEnv: PROD_CLIENT_ID, clientSecretEnv: PROD_CLIENT_SECRET}
    specs: [resources, prod-only]
    caBundle: certs/corp-ca.pem
"""


def test_found_in_the_start_folder_and_in_its_parents(spec_repo: Path) -> None:
    project_file = spec_repo / "mtls-config.yaml"
    project_file.write_text(PROJECT)
    deep = spec_repo / "resources" / "partners"
    deep.mkdir(parents=True)
    assert find_project_file(spec_repo) == project_file.resolve()
    assert find_project_file(deep) == project_file.resolve()
    spec_file = deep / "acme.yaml"
    spec_file.write_text("x: 1\n")
    assert find_project_file(spec_file) == project_file.resolve()  # a file starts at its folder


def test_search_stops_at_the_git_repository_root(tmp_path: Path) -> None:
    (tmp_path / "mtls-config.yaml").write_text(PROJECT)  # above the repository: not ours
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "specs").mkdir()
    assert find_project_file(repo / "specs") is None
    assert find_project_file(repo) is None
    (repo / ".git").rmdir()
    assert find_project_file(repo / "specs") == (tmp_path / "mtls-config.yaml").resolve()


def test_yml_spelling_is_found_too(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yml").write_text("stack: x\n")
    assert find_project_file(spec_repo) == (spec_repo / "mtls-config.yml").resolve()


def test_no_project_file_gives_defaults_rooted_at_the_start(spec_repo: Path) -> None:
    project = load_project(spec_repo)
    assert project.path is None
    assert project.root == spec_repo.resolve()
    assert project.project.stack == DEFAULT_STACK
    assert project.project.environments == {}
    assert project.spec_paths() == [spec_repo.resolve() / "."]


def test_environments_and_their_spec_paths(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yaml").write_text(PROJECT)
    (spec_repo / "resources").mkdir()
    project = load_project(spec_repo / "resources")
    root = spec_repo.resolve()
    assert project.root == root
    assert project.project.stack == "payments-prod"
    assert project.spec_paths() == [root / "resources"]
    assert project.spec_paths("dev") == [root / "resources"]  # no specs of its own: the project's
    assert project.spec_paths("prod") == [root / "resources", root / "prod-only"]
    prod = project.environment("prod")
    assert prod.instance == "https://acme.service-now.com"
    assert prod.auth.method == "oauth"
    assert prod.auth.client_id_env == "PROD_CLIENT_ID"
    assert prod.auth.password_env == "SN_PASSWORD"  # default variable name
    assert prod.ca_bundle == "certs/corp-ca.pem"
    assert project.environment("dev").auth.method == "basic"


def test_an_unknown_environment_is_an_error_naming_the_known_ones(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yaml").write_text(PROJECT)
    project = load_project(spec_repo)
    with pytest.raises(ProjectError) as caught:
        project.spec_paths("prd")
    assert caught.value.message == "unknown environment 'prd' (known: dev, prod)"
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("did you mean 'prod'? ")
    assert "mtls-config.yaml" in caught.value.hint


def test_problems_in_the_project_file_have_positions(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yaml").write_text(
        "stack: Payments Prod\nenvironments:\n  prod:\n    auth: {passwordEnv: 'my password'}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_project(spec_repo)
    assert [str(p) for p in caught.value.problems] == [
        "mtls-config.yaml:1:1: project: stack: must be lower-case letters, digits and '-' (at most 63), e.g. payments-prod",
        "mtls-config.yaml:3:3: project: environments.prod.instance: required field is missing",
        "mtls-config.yaml:4:12: project: environments.prod.auth.passwordEnv: must be an environment variable "
        "name: letters, digits and '_', not starting with a digit",
    ]


def test_a_project_file_must_be_one_mapping(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yaml").write_text("stack: a\n---\nstack: b\n")
    with pytest.raises(SpecError) as caught:
        load_project(spec_repo)
    assert [str(p) for p in caught.value.problems] == [
        "mtls-config.yaml:1:1: the project file must be one YAML mapping"
    ]


def test_the_example_project_file_loads() -> None:
    project = load_project(EXAMPLE_STACK)
    assert project.project.stack == "two-partners-demo"
    assert project.spec_paths() == [EXAMPLE_STACK.resolve() / "resources"]
    assert project.environment("local").instance == "local"


def test_variables_merge_project_and_environment(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yaml").write_text(
        "variables: {port: '443', partner: acme}\n"
        "environments:\n  test:\n    instance: local\n    variables: {port: '8443'}\n"
    )
    project = load_project(spec_repo)
    assert project.variables() == {"port": "443", "partner": "acme"}
    assert project.variables("test") == {"port": "8443", "partner": "acme"}
    with pytest.raises(ProjectError, match="unknown environment 'tset'"):
        project.variables("tset")


def test_yaml_problems_in_the_project_file_are_addressed_to_the_project(spec_repo: Path) -> None:
    (spec_repo / "mtls-config.yaml").write_text("stack: a\nstack: b\n")
    with pytest.raises(SpecError) as caught:
        load_project(spec_repo)
    assert [str(p) for p in caught.value.problems] == [
        "mtls-config.yaml:2:1: project: stack: duplicate key 'stack' (first at line 1)"
    ]
