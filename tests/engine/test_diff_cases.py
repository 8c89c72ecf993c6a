"""Table-driven diff tests: one JSON file per case in tests/cases/diff/ (live + desired -> expected changes).

How a case file becomes the two states, and its placeholders, are in ``tests/engine/diffcases.py``.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.engine.diffcases import CASES, load_case, run_diff


def _run(case: dict[str, Any]) -> dict[str, Any]:
    _, _, result = run_diff(case)
    changes = []
    for c in result.changes:
        changes.append(
            {
                "address": c.address,
                "action": c.action,
                "fields": sorted(f.field for f in c.fields),
                "values": {f.field: [f.before, f.after] for f in c.fields},
                "reason": c.reason,
                "importing": c.importing,
                "sensitive": c.sensitive_changed,
            }
        )
    return {"changes": changes, "findings": [[f.address, f.severity, f.message] for f in result.findings]}


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, want in expected.items():
        have = actual.get(key)
        if key == "reason":
            if want not in str(have):
                return False
        elif key == "values":
            if any(have.get(f) != v for f, v in want.items()):  # type: ignore[union-attr]
                return False
        elif have != want:
            return False
    return True


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_diff_case(path: Path) -> None:
    case = load_case(path)
    actual = _run(case)
    ok = len(actual["changes"]) == len(case["expected"]) and all(
        _matches(e, a) for e, a in zip(case["expected"], actual["changes"], strict=True)
    )
    assert "findings" in case, f"{path.name} must state its findings ([] when there are none)"
    want_findings = case["findings"]
    ok = (
        ok
        and len(want_findings) == len(actual["findings"])
        and all(
            w[0] == a[0] and w[1] == a[1] and w[2] in a[2]
            for w, a in zip(want_findings, actual["findings"], strict=True)
        )
    )
    if not ok:
        want = json.dumps(
            {"changes": case["expected"], "findings": case["findings"]}, indent=1, sort_keys=True, default=str
        )
        have = json.dumps(actual, indent=1, sort_keys=True, default=str)
        diff_text = "\n".join(
            difflib.unified_diff(want.splitlines(), have.splitlines(), "expected", "actual", lineterm="")
        )
        pytest.fail(f"{path.name}: diff result differs\n{diff_text}")


def test_every_kind_has_cases() -> None:
    kinds = {
        json.loads(p.read_text())["desired"][0]["kind"]
        for p in CASES.glob("*.json")
        if json.loads(p.read_text())["desired"]
    }
    assert kinds == {"KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding"}
