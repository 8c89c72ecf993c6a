"""The optional project file, ``mtls-config.yaml`` at the root of a spec repository.

It names the stack (the set of records one inventory owns), the default spec paths, and named
environments: each an instance URL (or ``local``), the *names* of the environment variables that hold
its credentials (never values), spec paths and variables. Without a project file the stack is
``default``, the specs are the paths given, and the target is the embedded local instance.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from mtls_config.errors import Problem, ProjectError, SpecError
from mtls_config.files import PROJECT
from mtls_config.spec.paths import PROJECT_FILE_NAMES, default_spec_root, display_path
from mtls_config.spec.yamlsource import read_documents
from mtls_config.wording import closest

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_STACK = "default"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class AuthSettings(_Model):
    """How to authenticate: names of environment variables, never their values."""

    method: Literal["basic", "oauth"] = Field(
        default="basic", description="basic (user + password) or oauth (OAuth 2.0 against /oauth_token.do)."
    )
    grant: Literal["client_credentials", "password"] = Field(
        default="client_credentials", description="OAuth grant type (method oauth only)."
    )
    username_env: str = Field(default="SN_USERNAME", pattern=ENV_NAME, description="Variable with the user name.")
    password_env: str = Field(default="SN_PASSWORD", pattern=ENV_NAME, description="Variable with the password.")
    client_id_env: str = Field(
        default="SN_CLIENT_ID", pattern=ENV_NAME, description="Variable with the OAuth client id."
    )
    client_secret_env: str = Field(
        default="SN_CLIENT_SECRET", pattern=ENV_NAME, description="Variable with the OAuth client secret."
    )


class Environment(_Model):
    """One target instance."""

    instance: str = Field(
        min_length=1,
        description="The instance's base URL (https://acme.service-now.com) or 'local' for the embedded one.",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Credentials to use.")
    specs: list[str] = Field(
        default_factory=list, description="Spec paths for this environment (default: the project's)."
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Values for ${name} in spec string values with this environment; they override the "
        "project's variables of the same name.",
    )
    ca_bundle: str | None = Field(
        default=None, description="PEM bundle to verify the instance's TLS certificate (default: system CAs)."
    )


class Project(_Model):
    """The project file."""

    stack: str = Field(
        default=DEFAULT_STACK,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Name of the stack: the set of instance records this repository owns.",
    )
    specs: list[str] = Field(default_factory=lambda: ["."], description="Default spec paths, relative to this file.")
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Values for ${name} in spec string values ($${ writes a literal ${). "
        "Not for secrets: use secret references.",
    )
    environments: dict[str, Environment] = Field(default_factory=dict, description="Named target instances.")


@dataclass(frozen=True)
class ProjectFile:
    project: Project
    path: Path | None  # None: no project file, defaults in force
    root: Path  # the spec repository's root (the project file's folder, or the working folder)

    def environment(self, name: str) -> Environment:
        """The named environment; an unknown name is an error that lists the known ones."""
        env = self.project.environments.get(name)
        if env is None:
            known = ", ".join(sorted(self.project.environments)) or "none defined"
            close = closest(name, self.project.environments)
            hint = f"did you mean '{close}'? " if close is not None else ""
            where = display_path(self.path) if self.path is not None else "no project file (mtls-config.yaml) found"
            raise ProjectError(
                f"unknown environment '{name}' (known: {known})",
                hint=hint + f"environments are listed under 'environments:' in the project file ({where})",
            )
        return env

    def spec_root(self, spec_paths: Sequence[Path]) -> Path:
        """The spec repository that file references must stay inside: the project file's folder, or without
        one the git repository holding the spec paths (see ``default_spec_root``)."""
        return self.root if self.path is not None else default_spec_root(spec_paths)

    def variables(self, environment: str | None = None) -> dict[str, str]:
        """Values for ``${name}`` in specs: the project's, overridden by the environment's."""
        merged = dict(self.project.variables)
        if environment is not None:
            merged.update(self.environment(environment).variables)
        return merged

    def spec_paths(self, environment: str | None = None) -> list[Path]:
        """Spec paths, absolute: the environment's own if it lists any, else the project's."""
        paths = self.project.specs
        if environment is not None:
            env = self.environment(environment)
            if env.specs:
                paths = env.specs
        return [self.root / p for p in paths]


def find_project_file(start: Path) -> Path | None:
    """Look for the project file in ``start`` and its parents, stopping at a git repository's root."""
    here = (start if start.is_dir() else start.parent).resolve()
    for folder in (here, *here.parents):
        for name in PROJECT_FILE_NAMES:
            candidate = folder / name
            # Anything by that name but a folder (a FIFO, a device) is the project file, for the reader to refuse.
            if candidate.exists() and not candidate.is_dir():
                return candidate
        if (folder / ".git").exists():
            return None
    return None


def load_project(start: Path | None = None) -> ProjectFile:
    start = start or Path.cwd()
    path = find_project_file(start)
    if path is None:
        root = (start if start.is_dir() else start.parent).resolve()
        return ProjectFile(Project(), None, root)
    display = display_path(path)
    docs, problems = read_documents(path, display, lambda _data: "project", kind=PROJECT)
    if problems:
        raise SpecError(problems)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise SpecError([Problem(display, 1, 1, "", "", "the project file must be one YAML mapping")])
    doc = docs[0]
    try:
        project = Project.model_validate(doc.data)
    except ValidationError as exc:
        from mtls_config.spec.loader import pydantic_message  # the spec loader's wording, loaded for errors only

        raise SpecError(
            [
                doc.problem(tuple(e["loc"]), pydantic_message(e, Project), address="project")
                for e in exc.errors(include_url=False, include_input=True)
            ]
        ) from None
    return ProjectFile(project, path, path.parent.resolve())
