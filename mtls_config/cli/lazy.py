"""Commands whose modules are imported only when they run: the root group of ``mtls-config``.

Every command module pulls in what its commands need (the engine, the HTTP client, pyjks and pycryptodomex,
the emulator's web stack, rich's progress bars): importing them all for ``--version`` or ``validate`` cost
three times the start-up of importing the core libraries. The root group lists each such command by name with
the first paragraph of its help, enough for ``mtls-config --help``; the module is imported, and its commands
built, when one of them is invoked, asked for its own help, or walked (shell completion,
``tools/write_references.py``).

A module lists its commands through a ``register(app)`` function that adds them to a typer app, as it did
when every module was imported up front. ``tests/test_cli_lazy.py`` holds the listing true to the commands
(names, help, hidden) and the import set of ``--version`` and ``validate``.

Never imports a command module at import time: that is the point.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

Command = Any  # typer's vendored click.Command: its type is not part of typer's public API


@dataclass(frozen=True)
class LazyCommand:
    """A top-level command (or command group) that ``module``'s ``register(app)`` adds; ``help`` is the first
    paragraph of its help text, as ``mtls-config --help`` lists it."""

    name: str
    module: str
    help: str
    hidden: bool = False


class LazyCommands(MutableMapping[str, Command]):
    """The root group's commands by name: the built ones, and the lazy ones built on first access.

    Iterating (names, ``len``, ``in``) imports nothing; looking one up imports its module and builds every
    command the module registers. Order: the built commands first, then the lazy ones as declared.
    """

    def __init__(self, built: MutableMapping[str, Command], lazy: Sequence[LazyCommand], settings: dict[str, Any]):
        self._built: dict[str, Command] = dict(built)
        self._unbuilt = {spec.name: spec for spec in lazy if spec.name not in self._built}
        self._order = [*self._built, *self._unbuilt]
        self._settings = settings
        # Called with each command as it is built, so that what is done to the built tree (helptext's flags)
        # is done to the lazily built commands too.
        self.prepare: Callable[[Command], None] | None = None

    def __getitem__(self, name: str) -> Command:
        spec = self._unbuilt.get(name)
        if spec is not None:
            self._load(spec.module)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self._built and name not in self._unbuilt:
            self._order.append(name)
        self._built[name] = command
        self._unbuilt.pop(name, None)

    def __delitem__(self, name: str) -> None:
        if name not in self._built and name not in self._unbuilt:
            raise KeyError(name)
        self._built.pop(name, None)
        self._unbuilt.pop(name, None)
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))  # a copy: looking a command up while iterating builds others

    def __len__(self) -> int:
        return len(self._order)

    def built(self) -> dict[str, Command]:
        """The commands built so far (nothing imported)."""
        return dict(self._built)

    def listed(self, name: str) -> Command | None:
        """The command as a listing shows it: built if it is, else a stand-in with its name, help and hidden
        flag (nothing imported)."""
        if name in self._built:
            return self._built[name]
        spec = self._unbuilt.get(name)
        if spec is None:
            return None
        return TyperCommand(name=spec.name, help=spec.help, hidden=spec.hidden)

    def _load(self, module_name: str) -> None:
        module = importlib.import_module(module_name)
        register = getattr(module, "register", None)
        if register is None:
            raise RuntimeError(f"{module_name} has no register(app) for its lazily listed commands")
        app = typer.Typer(add_completion=False, **self._settings)
        register(app)
        group = typer.main.get_group(app)
        declared = {spec.name for spec in self._unbuilt.values() if spec.module == module_name}
        if set(group.commands) != declared:
            raise RuntimeError(
                f"{module_name} registers {sorted(group.commands)}, the lazy listing says {sorted(declared)}"
            )
        for name, command in group.commands.items():
            if self.prepare is not None:
                self.prepare(command)
            self._built[name] = command
            del self._unbuilt[name]


class LazyGroup(TyperGroup):
    """The root group: lazy commands listed from their declarations, built when used (see the module)."""

    lazy_commands: Sequence[LazyCommand] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        settings = {"rich_markup_mode": self.rich_markup_mode, "suggest_commands": self.suggest_commands}
        self.commands = LazyCommands(self.commands, self.lazy_commands, settings)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: TyperGroup's version looks every command up

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        if self._listing and isinstance(self.commands, LazyCommands):
            return self.commands.listed(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # The help lists every command by name and first paragraph: the declarations say both.
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_group(commands: Sequence[LazyCommand]) -> type[LazyGroup]:
    """The root group class for ``typer.Typer(cls=...)`` with these lazily imported commands."""
    return type("MtlsConfigGroup", (LazyGroup,), {"lazy_commands": tuple(commands)})


def first_paragraph(help_text: str | None) -> str:
    """The part of a command's help that a group's listing shows (as typer's rich help cuts it)."""
    return inspect.cleandoc(help_text or "").split("\n\n")[0].strip()
