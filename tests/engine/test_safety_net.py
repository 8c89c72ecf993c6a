"""The safety net between a reviewed plan and the instance: a saved plan is applied only when it is a plan, of this
format, for this instance, stack and specs, unedited and still true; a plan that deletes too much needs a flag.

Saved-plan cases are data: tests/cases/saved_plans/*.json, each an edit of a real saved plan (``text`` replaces the
file; ``set`` a value at a path; ``delete`` a key; ``checksum: recompute`` makes the checksum match the edit, so
the check after it is the one tested) and the message ``apply`` must stop with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mtls_config.changes import Change, DiffResult, Fingerprint
from mtls_config.cli.main import main
from mtls_config.errors import StalePlan, UnsafePlan
from mtls_config.plan import Plan, check_still_true, make_plan, raise_if_unsafe

CASES = Path(__file__).resolve().parents[1] / "cases" / "saved_plans"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _edited(saved: dict[str, Any], case: dict[str, Any]) -> str:
    if "text" in case:
        return str(case["text"])
    data = json.loads(json.dumps(saved))
    if "set" in case:
        path, value = case["set"]
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    for key in case.get("delete", []):
        del data[key]
    if case.get("checksum") == "recompute":
        data["checksum"] = Plan.model_validate(data).body_checksum()
    return json.dumps(data, indent=2, sort_keys=True)


def test_a_saved_plan_that_cannot_be_trusted_is_refused_and_nothing_is_written(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(["plan", "--out", "plan.json"], capsys)
    assert code == 2
    saved = json.loads((stack_dir / "plan.json").read_text())
    paths = sorted(CASES.glob("*.json"))
    assert len(paths) >= 10
    for path in paths:
        case = json.loads(path.read_text())
        edited = stack_dir / f"{path.stem}.json"
        edited.write_text(_edited(saved, case))
        code, out, err = run(["apply", str(edited)], capsys)
        assert code == 1, f"{path.name}: {out}{err}"
        assert case["stderr"] in err, f"{path.name}: {err}"
        code, out, _ = run(["plan", "--json"], capsys)
        assert code == 2 and json.loads(out)["summary"]["create"] == 8, f"{path.name} wrote to the instance"
    assert not (stack_dir / ".mtls-config" / "journal").exists()  # no apply got as far as its first write


def test_a_saved_plan_of_specs_edited_since_is_stale(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 2
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("warnDays: 45", "warnDays: 50"))
    code, _, err = run(["apply", "plan.json"], capsys)
    assert code == 1 and "the specs changed since the plan was made" in err
    assert "run 'mtls-config plan' again" in err


def test_a_prune_of_more_than_half_of_what_the_stack_owns_needs_the_flag(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    (stack_dir / "resources" / "globex-orders.yaml").unlink()
    acme = stack_dir / "resources" / "acme-payments.yaml"
    docs = acme.read_text().split("\n---\n")
    acme.write_text("\n---\n".join(d for d in docs if "kind: TrustStoreCert" not in d))
    code, _, err = run(["apply", "--prune", "--auto-approve"], capsys)
    assert code == 1
    assert "the plan deletes 5 of 8 owned records (more than 50%)" in err and "--allow-delete-all" in err
    code, out, _ = run(["plan", "--prune", "--json"], capsys)
    assert code == 2 and json.loads(out)["summary"]["delete"] == 5  # nothing was deleted
    code, out, err = run(["apply", "--prune", "--auto-approve", "--allow-delete-all"], capsys)
    assert code == 0, out + err
    assert "5 applied" in out


def _plan(*changes: Change, instance: str = "local", stack: str = "s", digest: str = "sha256:a", mod: int = 1) -> Plan:
    return make_plan(
        DiffResult(changes, ()),
        instance=instance,
        stack=stack,
        spec_digest=digest,
        inventory_sys_id="i1",
        inventory_mod_count=mod,
        inventory_generation=1,
        prune=True,
    )


def _change(address: str, action: str = "update", mod: int = 1) -> Change:
    kind, _, name = address.partition("/")
    fingerprints = (Fingerprint("", "sys_protocol_profile", f"{name}-id", mod),)
    return Change(address, kind, name, "sys_protocol_profile", action, "why", live=fingerprints)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("deletes", "owned", "allowed"),
    [(1, 4, True), (2, 4, True), (3, 4, False), (4, 4, False), (0, 0, True)],
    ids=["a-quarter", "half", "three-quarters", "all", "nothing-owned"],
)
def test_the_delete_fraction(deletes: int, owned: int, allowed: bool) -> None:
    plan = _plan(*(_change(f"ProtocolProfile/p{i}", "delete") for i in range(deletes)))
    if allowed:
        raise_if_unsafe(plan, owned, allow_delete_all=False, max_delete_fraction=0.5)
    else:
        with pytest.raises(UnsafePlan, match="--allow-delete-all"):
            raise_if_unsafe(plan, owned, allow_delete_all=False, max_delete_fraction=0.5)
    raise_if_unsafe(plan, owned, allow_delete_all=True, max_delete_fraction=0.5)


def test_a_lower_fraction_refuses_sooner() -> None:
    plan = _plan(_change("ProtocolProfile/p1", "delete"))
    raise_if_unsafe(plan, 4, allow_delete_all=False, max_delete_fraction=0.5)
    with pytest.raises(UnsafePlan, match=r"deletes 1 of 4 owned records \(more than 20%\)"):
        raise_if_unsafe(plan, 4, allow_delete_all=False, max_delete_fraction=0.2)


@pytest.mark.parametrize(
    ("fresh", "message"),
    [
        (_plan(_change("ProtocolProfile/a"), instance="other"), "instance differs: planned for local, now other"),
        (_plan(_change("ProtocolProfile/a"), stack="other"), "stack differs: planned for s, now other"),
        (_plan(_change("ProtocolProfile/a"), digest="sha256:b"), "the specs changed since the plan was made"),
        (_plan(_change("ProtocolProfile/a"), mod=2), r"inventory \(sys_mod_count 1 -> 2\)"),
        (_plan(_change("ProtocolProfile/a", mod=3)), r"sys_protocol_profile/a-id \(1 -> 3\)"),
        (_plan(_change("ProtocolProfile/a", "delete")), "ProtocolProfile/a: planned update, now delete"),
        (_plan(), "ProtocolProfile/a: "),
        (_plan(_change("ProtocolProfile/a"), _change("ProtocolProfile/b")), "ProtocolProfile/b: not in the saved plan"),
    ],
    ids=["instance", "stack", "specs", "inventory", "record", "action", "gone", "new-change"],
)
def test_a_saved_plan_must_still_be_true(fresh: Plan, message: str) -> None:
    saved = _plan(_change("ProtocolProfile/a"))
    check_still_true(saved, _plan(_change("ProtocolProfile/a")))
    with pytest.raises(StalePlan, match=message):
        check_still_true(saved, fresh)


def test_a_plan_saved_before_the_sides_were_named_still_applies(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Format 1 only ever gains keys: a plan file without changed_fields[].instance/.spec (made by an earlier
    # version) has the same checksum and applies.
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 2
    saved = json.loads((stack_dir / "plan.json").read_text())
    fields = [f for c in saved["resource_changes"] for f in c["changed_fields"]]
    assert fields and all({"instance", "spec"} <= set(f) for f in fields)
    for f in fields:
        del f["instance"], f["spec"]
    (stack_dir / "older.json").write_text(json.dumps(saved, indent=2, sort_keys=True))
    code, out, err = run(["apply", "older.json"], capsys)
    assert code == 0, out + err
    assert "8 applied, 0 failed" in out
