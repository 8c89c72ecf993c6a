"""The package's boundaries, held at run time: what a module loads when it is imported in a fresh interpreter.

- The pure core (the desired-state builder, diff, plan, render, compile, the kinds, the inventory's model and
  books, the values they share) loads neither the client, httpx, the emulator, the CLI, nor any engine module that
  talks to the instance.
- The rest of the engine (observe, contents, apply, import, the inventory store, the lock, verify) talks to the
  instance only through the ``Instance`` protocol: it loads neither the client, httpx, the emulator nor the CLI.

Each group is imported in one fresh interpreter; when something leaks, each module of the group is imported in
an interpreter of its own to name the culprits.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from collections.abc import Sequence

import pytest

import mtls_config
import mtls_config.resources

OUTSIDE = ("mtls_config.client", "httpx", "mtls_config.emulator", "mtls_config.cli")
# Engine modules that read or write the instance: the pure core must not need them.
TALKING = (
    "mtls_config.observe",
    "mtls_config.contents",
    "mtls_config.apply",
    "mtls_config.importer",
    "mtls_config.engine",
    "mtls_config.reads",
    "mtls_config.inventory_store",
    "mtls_config.lock",
    "mtls_config.access",
    "mtls_config.doctor",
)
PURE = (
    "mtls_config.desired",
    "mtls_config.diff",
    "mtls_config.plan",
    "mtls_config.render",
    "mtls_config.compile",
    "mtls_config.changes",
    "mtls_config.live",
    "mtls_config.operations",
    "mtls_config.inventory",
    "mtls_config.inventory_books",
    "mtls_config.readback",
    "mtls_config.dictionary",
    *(f"mtls_config.resources.{m.name}" for m in pkgutil.iter_modules(mtls_config.resources.__path__)),
)


def _package_modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(mtls_config.__path__, "mtls_config.")]
    return sorted(m for m in found if not m.startswith(OUTSIDE) and not m.endswith("__main__"))


def _loaded(modules: Sequence[str]) -> set[str]:
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def _leaks(loaded: set[str], forbidden: Sequence[str]) -> list[str]:
    return sorted({f for f in forbidden for m in loaded if m == f or m.startswith(f + ".")})


def _check(group: Sequence[str], forbidden: Sequence[str]) -> None:
    if not _leaks(_loaded(group), forbidden):
        return
    culprits = {m: _leaks(_loaded([m]), forbidden) for m in group}
    shown = "\n".join(f"  {m} loads {', '.join(leaks)}" for m, leaks in culprits.items() if leaks)
    pytest.fail(f"modules cross the boundary:\n{shown}")


def test_the_pure_core_loads_no_client_http_emulator_or_io() -> None:
    _check(PURE, (*OUTSIDE, *TALKING))


def test_the_engine_talks_to_the_instance_only_through_the_instance_protocol() -> None:
    rest = [m for m in _package_modules() if m not in PURE]
    assert set(TALKING) <= set(rest)
    _check(rest, OUTSIDE)
