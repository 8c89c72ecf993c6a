"""Usage errors (an unknown option or command, a bad choice, a missing argument) said as every other error is:
``error: ...`` and ``  hint: ...`` on stderr, exit 1, instead of click's usage block and ``Error: Invalid value for
'--format' / '-f': Value error, ...``.

click raises them (typer >= 0.29 its vendored copy, older typer click itself); this reads what each carries (the
parameter, the option name, the context) by attribute, the same on both, and words it. Where click gives no context
(an option missing its value is found before one exists), the command is found from the arguments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mtls_config.wording import closest

_CHOICES = re.compile(r"^'?(?P<value>.*?)'? is not one of (?P<choices>.+?)\.?$")
_NO_COMMAND = re.compile(r"^No such command '(?P<name>.*?)'")
_EXTRA = re.compile(r"^Got unexpected extra arguments?(?:\(s\))? \((?P<args>.*)\)$")


def describe(exc: Any, root: Any, args: Sequence[str]) -> tuple[str, str]:
    """The message and hint for a usage error ``exc`` raised while ``root`` (the click command tree) parsed
    ``args``."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command if ctx is not None else _command_of(root, args)[1]
    path = ctx.command_path if ctx is not None else _command_of(root, args)[0]
    helping = f"'{path} --help' says more"
    if _is(exc, "MissingParameter"):
        param = getattr(exc, "param", None)
        what = "argument" if getattr(param, "param_type_name", "") == "argument" else "option"
        return f"missing {what} {_param_name(param, exc)}", _usage_hint(ctx, command, path)
    if _is(exc, "BadParameter"):
        said = str(getattr(exc, "message", "")).removeprefix("Value error, ").rstrip(".")
        choices = _CHOICES.match(said)
        if choices is not None:
            listed = choices.group("choices").replace("'", "")
            said = f"'{choices.group('value')}' is not one of {listed}"
        else:
            said = _sentence(said)
        return f"{_param_name(getattr(exc, 'param', None), exc)}: {said}", helping
    if _is(exc, "NoSuchOption"):
        name = str(getattr(exc, "option_name", ""))
        near = closest(name, _option_names(command)) if name.startswith("-") else None
        hint = f"did you mean {near}? " if near is not None else ""
        return f"unknown option {name}", hint + f"'{path} --help' lists the options"
    if _is(exc, "BadOptionUsage"):
        name = str(getattr(exc, "option_name", ""))
        message = str(getattr(exc, "message", ""))
        if "requires an argument" in message:
            return f"{name} needs a value{_metavar_of(command, name)}", helping
        return f"{name}: {_sentence(message)}", helping
    message = str(getattr(exc, "message", "") or exc)
    unknown = _NO_COMMAND.match(message)
    if unknown is not None:
        name = unknown.group("name")
        near = closest(name, _command_names(command))
        hint = f"did you mean '{near}'? " if near is not None else ""
        return f"unknown command '{name}'", hint + f"'{path} --help' lists the commands"
    extra = _EXTRA.match(message)
    if extra is not None:
        return f"unexpected argument {extra.group('args')}", _usage_hint(ctx, command, path)
    return _sentence(message), helping


def _sentence(message: str) -> str:
    """click's sentence as part of ours: no capital, no full stop."""
    return message[:1].lower() + message[1:].rstrip(".")


def _is(exc: Any, name: str) -> bool:
    """Whether ``exc`` is click's exception class ``name`` (typer's vendored copy or click's own)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _command_of(root: Any, args: Sequence[str]) -> tuple[str, Any]:
    """The command ``args`` name (its path and click command): the longest run of command names from the start."""
    path, command = "mtls-config", root
    for arg in args:
        sub = (getattr(command, "commands", None) or {}).get(arg) if not arg.startswith("-") else None
        if sub is None:
            break
        path, command = f"{path} {arg}", sub
    return path, command


def _param_name(param: Any, exc: Any) -> str:
    hint = getattr(exc, "param_hint", None)
    if hint:
        return str(hint if isinstance(hint, str) else " / ".join(hint))
    if param is None:
        return "a value"
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.metavar or param.name or "").upper()
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")] or list(getattr(param, "opts", []))
    return str(opts[0]) if opts else str(param.name)


def _option_names(command: Any) -> list[str]:
    names: list[str] = []
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "option" and not getattr(param, "hidden", False):
            names += [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    return [n for n in names if n.startswith("--")]


def _command_names(group: Any) -> list[str]:
    commands = getattr(group, "commands", None) or {}
    return list(commands)


def _metavar_of(command: Any, option: str) -> str:
    for param in getattr(command, "params", []):
        if option in getattr(param, "opts", []) and getattr(param, "metavar", None):
            return f" ({param.metavar})"
    return ""


def _usage_hint(ctx: Any, command: Any, path: str) -> str:
    pieces = command.collect_usage_pieces(ctx) if ctx is not None and command is not None else ["[OPTIONS]"]
    return f"usage: {path} {' '.join(pieces)}; '{path} --help' says more"
