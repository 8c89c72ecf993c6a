"""Table-driven compile tests: one JSON file per case in tests/cases/compile/ (live + desired -> the operations
apply would send, per change, in stages and phases).

A case has the diff cases' shape (``desired``, ``live``, ``inventory``, ``prune``; see tests/engine/diffcases.py),
plus ``expected``: for every change that is not a no-op, in plan order, its address, action, stage and phases of
operations. The sys_ids chosen for new records are ``new-1``, ``new-2``... in plan order. A desired item may carry
``content`` (``file_name``, ``text``, ``content_type``): the file apply uploads.

``MTLS_CONFIG_UPDATE_CASES=1`` writes ``expected`` from what the code does: read every change by eye before
committing it.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mtls_config.compile import compile_changes
from mtls_config.operations import Create, Delete, DeleteAttachment, Operation, Update, Upload
from tests.engine.diffcases import load_case, run_diff

CASES = Path(__file__).resolve().parents[1] / "cases" / "compile"
UPDATE = os.environ.get("MTLS_CONFIG_UPDATE_CASES") == "1"


def _op(op: Operation) -> dict[str, Any]:
    if isinstance(op, Create | Update):
        shown: dict[str, Any] = {"op": type(op).__name__.lower(), "table": op.table, "sys_id": op.sys_id}
        shown["values"] = dict(op.values)
        if op.input_display_value:
            shown["input_display_value"] = True
    elif isinstance(op, Delete):
        shown = {"op": "delete", "table": op.table, "sys_id": op.sys_id}
    elif isinstance(op, Upload):
        shown = {"op": "upload", "table": op.table, "sys_id": op.sys_id, "file_name": op.file_name}
        shown["content"] = op.content.decode()
        shown["content_type"] = op.content_type
        if op.replacing:
            shown["replacing"] = list(op.replacing)
    else:
        assert isinstance(op, DeleteAttachment)
        shown = {"op": "delete_attachment", "sys_id": op.sys_id}
    shown["what"] = op.what
    return shown


def _compiled(case: dict[str, Any]) -> list[dict[str, Any]]:
    desired, live, result = run_diff(case)
    assert not result.errors, result.errors
    counter = itertools.count(1)
    compiled = compile_changes(result.changes, desired, live, new_id=lambda: f"new-{next(counter)}")
    return [
        {
            "address": t.change.address,
            "action": t.change.action,
            "stage": t.stage,
            "phases": [[_op(op) for op in phase] for phase in t.phases],
        }
        for t in compiled.tasks
    ]


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_compile_case(path: Path) -> None:
    raw = json.loads(path.read_text())
    actual = _compiled(load_case(path))
    if UPDATE:
        raw["expected"] = actual
        path.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n")
        return
    if actual != raw["expected"]:
        want = json.dumps(raw["expected"], indent=1, sort_keys=True)
        have = json.dumps(actual, indent=1, sort_keys=True)
        shown = "\n".join(difflib.unified_diff(want.splitlines(), have.splitlines(), "expected", "actual", lineterm=""))
        pytest.fail(f"{path.name}: the compiled operations differ\n{shown}")


def test_every_kind_and_action_has_a_case() -> None:
    seen = {
        (task["address"].partition("/")[0], task["action"])
        for p in CASES.glob("*.json")
        for task in json.loads(p.read_text())["expected"]
    }
    wanted = {
        (kind, action)
        for kind in ("KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding")
        for action in ("create", "update", "delete")
    } | {("KeyStore", "replace"), ("TrustStoreCert", "replace")}
    assert wanted <= seen, sorted(wanted - seen)


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_a_kind_declares_every_column_it_writes(path: Path) -> None:
    """``Kind.written_columns`` is what a plan checks against the instance's dictionary: every column a compiled
    create or update writes must be in it (a column missing there would go unchecked)."""
    from mtls_config.resources.registry import kind_named

    desired, live, result = run_diff(load_case(path))
    by_address = {d.address: d for d in desired.resources}
    for task in compile_changes(result.changes, desired, live).tasks:
        d = by_address.get(task.change.address)
        if d is None:
            continue  # a delete of a resource no longer in the specs
        declared = kind_named(d.kind).written_columns(d, None)
        for op in (op for phase in task.phases for op in phase if isinstance(op, Create | Update)):
            assert set(op.values) <= set(declared.get(op.table, ())), (task.change.address, op.table, op.values)
