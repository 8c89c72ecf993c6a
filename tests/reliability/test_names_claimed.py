"""Names claimed across stacks (finding 7 of issue 17): a stack cannot create a record whose name another stack owns
on the instance, and two applies that race on the same new names end with exactly one record per name.

Plan conflicts: one data file per case in ``cases/claims/``: stack A applies, then something happens (the record is
deleted by hand, stack B's spec spells the name in another case, or asks to adopt it), and stack B's plan must stop
with an error naming stack A, planning no change for it.

Races: one data file per case in ``cases/races/``: two ``mtls-config apply`` processes started at once, against a
served emulator or the embedded local instance (two projects sharing its folder), for two stacks declaring the
same names or one stack applied twice, ``trials`` times (``full_trials`` at full size). Each case lists the
outcomes it accepts (exit codes, and a line the failing run must print); anything else fails the test. After every
trial: exactly one record per name, every name claimed by the stack whose inventory owns it, no lock left, and the
winner's specs plan as no change.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stacks import counts, mint_pems
from mtls_config.claims import CLAIM_PREFIX, ClaimKey, read_claims
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.engine import apply_planned, make_planned
from mtls_config.errors import MtlsConfigError
from mtls_config.instance import Instance
from mtls_config.inventory import PROPERTY_PREFIX, Inventory
from mtls_config.inventory_store import read_inventory, store_inventory
from mtls_config.lock import LOCK_PREFIX, acquire, release
from mtls_config.names import folded
from mtls_config.spec.loader import SpecSet, load_specs
from tests.engine.conftest import local_settings, open_local
from tests.engine.stacks import write_stack
from tests.reliability.cli_runner import Finished, Zygote, base_env
from tests.reliability.harness import FULL, Meeting, assert_converged, count, project

CLAIM_CASES = sorted((Path(__file__).parent / "cases" / "claims").glob("*.json"))
RACE_CASES = sorted((Path(__file__).parent / "cases" / "races").glob("*.json"))
SIZE = 8  # resources per stack in a race: 2 keystores, 2 profiles, 4 trust-store certificates


def _stack(root: Path, stack: str, pems: list[str], n: int = SIZE) -> None:
    write_stack(root / "specs", n, pems=pems)
    project(root, stack, "specs")


async def _names(client: Instance) -> collections.Counter[tuple[str, str]]:
    """How many records answer to each name, as the instance compares names."""
    certs = await client.list("sys_certificate", fields=["name"])
    profiles = await client.list("sys_protocol_profile", fields=["protocol"])
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    found.update(("sys_certificate", folded(r["name"])) for r in certs)
    found.update(("sys_protocol_profile", folded(r["protocol"])) for r in profiles)
    return found


# -- plan conflicts ------------------------------------------------------------------------------------------


def _edit(root: Path, edits: list[list[str]]) -> None:
    for spec in sorted((root / "specs").glob("*.yaml")):
        text = spec.read_text(encoding="utf-8")
        for old, new in edits:
            text = text.replace(old, new)
        spec.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("path", CLAIM_CASES, ids=[p.stem for p in CLAIM_CASES])
def test_a_name_another_stack_owns_is_a_plan_error_naming_it(path: Path, zygote: Zygote, tmp_path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    pems = mint_pems(counts(SIZE)[2])
    _stack(tmp_path / "a", "stack-a", pems)
    _stack(tmp_path / "b", "stack-b", pems)
    _edit(tmp_path / "b", case.get("edit_b", []))
    app = create_app(EmulatorConfig())

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            a = load_specs([tmp_path / "a" / "specs"], root=tmp_path / "a")
            assert (await apply_planned(client, await make_planned(client, a, instance_name="i", stack="stack-a"))).ok
            for name in case.get("delete_by_hand", []):  # a record removed outside mtls-config: the name is A's still
                rows = await client.list("sys_certificate", query=f"name={name}", fields=["sys_id"])
                await client.delete("sys_certificate", rows[0]["sys_id"])
            b = load_specs([tmp_path / "b" / "specs"], root=tmp_path / "b")
            planned = await make_planned(client, b, instance_name="i", stack="stack-b")
            errors = {f.address: f for f in planned.plan.errors}
            for address, message in case["errors"].items():
                assert address in errors and message in errors[address].message, (address, planned.plan.errors)
                assert "stack 'stack-a'" in errors[address].hint
                assert address not in {c.address for c in planned.plan.resource_changes}, address
                # One error per resource: the claim's, not also the diff's that could not name the owner.
                assert len([f for f in planned.plan.errors if f.address == address]) == 1
            assert len(errors) == case["error_count"], sorted(errors)
            before = await _names(client)
            with pytest.raises(Exception, match=r"the plan has \d+ errors?; nothing was applied"):
                await apply_planned(client, planned)
            assert await _names(client) == before

    asyncio.run(main())
    # What a person sees: 'mtls-config plan' of stack B, as its own process, names stack A and exits 1.
    with ThreadedServer(app) as server:
        env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
        planned = zygote.run(["plan", "--instance", server.url], cwd=tmp_path / "b", env=env, logs=tmp_path / "logs")
    assert planned.status == 1 and "Traceback" not in planned.out + planned.err, planned
    for address, message in case["errors"].items():
        assert f"{address}: {message}" in planned.out, (address, planned.out)
    assert planned.out.count("remove it from the specs of stack 'stack-a' and apply there") == case["error_count"]
    assert f"Nothing can be applied: the plan has {case['error_count']} errors" in planned.out, planned.out
    assert "No changes" not in planned.out, planned.out
    count("claim_conflicts_planned")


def test_a_stack_that_prunes_a_name_gives_it_up(tmp_path: Path) -> None:
    """Stack A removes a keystore from its specs and applies with --prune: its record and its claim go, and stack B
    can then create a record of that name."""
    pems = mint_pems(counts(SIZE)[2])
    _stack(tmp_path / "a", "stack-a", pems)
    b = tmp_path / "b"
    b.mkdir()
    project(b, "stack-b", "specs")
    (b / "specs").mkdir()
    shutil.copy(tmp_path / "a" / "specs" / "client.jks", b / "specs")
    shutil.copy(tmp_path / "a" / "specs" / "password.txt", b / "specs")
    (b / "specs" / "ks.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: KeyStore\nmetadata: {name: ks-00001}\n"
        "spec: {file: client.jks, password: {fromFile: password.txt}}\n",
        encoding="utf-8",
    )
    app = create_app(EmulatorConfig())

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            a = load_specs([tmp_path / "a" / "specs"], root=tmp_path / "a")
            assert (await apply_planned(client, await make_planned(client, a, instance_name="i", stack="stack-a"))).ok
            specs_b = load_specs([b / "specs"], root=b)
            blocked = await make_planned(client, specs_b, instance_name="i", stack="stack-b")
            assert [f.address for f in blocked.plan.errors] == ["KeyStore/ks-00001"]
            _edit(tmp_path / "a", [["metadata: {name: ks-00001}", "metadata: {name: ks-gone}"]])
            _edit(tmp_path / "a", [["keyStore: ks-00001", "keyStore: ks-gone"]])
            a = load_specs([tmp_path / "a" / "specs"], root=tmp_path / "a")
            pruned = await make_planned(client, a, instance_name="i", stack="stack-a", prune=True)
            assert (await apply_planned(client, pruned)).ok
            claims = await read_claims(client, "stack-b")
            assert claims.holder(ClaimKey("sys_certificate", "ks-00001")) is None
            assert claims.holder(ClaimKey("sys_certificate", "ks-gone")) is not None
            planned = await make_planned(client, specs_b, instance_name="i", stack="stack-b")
            assert not planned.plan.errors and (await apply_planned(client, planned)).ok
            await assert_converged(client, specs_b, "stack-b")
            assert (await _names(client))[("sys_certificate", "ks-00001")] == 1

    asyncio.run(main())


def _stack_a(tmp_path: Path) -> tuple[Any, SpecSet]:
    """A fresh emulator and the specs of stack-a (SIZE resources) written under ``tmp_path / "a"``."""
    _stack(tmp_path / "a", "stack-a", mint_pems(counts(SIZE)[2]))
    return create_app(EmulatorConfig()), load_specs([tmp_path / "a" / "specs"], root=tmp_path / "a")


def test_claims_follow_the_inventory_after_any_apply(tmp_path: Path) -> None:
    """Housekeeping: a stack applied by a version without claims (its claims deleted here) gets them at its next
    apply, which has nothing else to do; a claim of a name the stack no longer owns is given up."""
    app, a = _stack_a(tmp_path)

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            assert (await apply_planned(client, await make_planned(client, a, instance_name="i", stack="stack-a"))).ok
            own = (await read_claims(client, "stack-a")).own
            inventory, _, _ = await read_inventory(client, "stack-a")
            assert len(own) == len([a for a in inventory.resources]) == SIZE
            for claim in own[:3]:
                await client.delete("sys_properties", claim.sys_id)
            stray = ClaimKey("sys_certificate", "not-owned-by-anyone")
            await client.create("sys_properties", {"name": stray.record_name("stack-a")}, sys_id=stray.sys_id)
            planned = await make_planned(client, a, instance_name="i", stack="stack-a")
            assert not planned.plan.has_changes
            assert planned.housekeeping.lines() == ["claim 3 names the stack owns without a claim",
                                                    "give up 1 claim of names the stack no longer owns"]  # fmt: skip
            done = await apply_planned(client, planned)  # nothing else to do: the housekeeping alone
            assert done.tidied == (
                "claimed 3 names the stack owns",
                "gave up 1 claim of names the stack no longer owns",
            )
            assert not done.outcomes
            again = await make_planned(client, a, instance_name="i", stack="stack-a")
            assert not again.housekeeping and len((await read_claims(client, "stack-a")).own) == SIZE

    asyncio.run(main())


def test_a_record_this_stack_claims_but_has_not_recorded_is_said_to_be_another_apply_of_it(tmp_path: Path) -> None:
    """A plan whose reads met another apply of the same stack between its writes and its inventory (the records
    there, the inventory not yet): not "stack 'stack-a' does not own it", which reads as someone else's record, but
    that an apply of this stack is probably writing it now. The state is made here as that plan reads it: stack-a
    applied, then its inventory records removed (the records and the names' claims stay)."""
    app, a = _stack_a(tmp_path)

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            assert (await apply_planned(client, await make_planned(client, a, instance_name="i", stack="stack-a"))).ok
            rows = await client.list("sys_properties", query=f"nameSTARTSWITH{PROPERTY_PREFIX}", fields=["sys_id"])
            assert rows
            for row in rows:
                await client.delete("sys_properties", str(row["sys_id"]))
            planned = await make_planned(client, a, instance_name="i", stack="stack-a")
            errors = [f for f in planned.plan.errors]
            assert len(errors) == SIZE and not planned.plan.has_changes, planned.plan.errors
            for finding in errors:
                assert "stack 'stack-a' claims its name" in finding.message, finding
                assert "another apply of this stack is probably writing it right now" in finding.message, finding
                assert "does not own it" not in finding.message, finding
            # another stack's plan of the same names still names the stack that holds them
            planned_b = await make_planned(client, a, instance_name="i", stack="stack-b")
            assert planned_b.plan.errors and all(
                "belongs to stack 'stack-a'" in f.message for f in planned_b.plan.errors
            ), planned_b.plan.errors

    asyncio.run(main())


def test_a_record_found_unowned_while_an_apply_of_the_stack_holds_its_lock_is_said_to_be_that_apply(
    tmp_path: Path,
) -> None:
    """A plan whose reads met another apply of the same stack so early that neither the inventory nor the names'
    claims were written yet: with the stack's lock held by a running process, the error says an apply of the stack
    is running and probably creating the record, not "stack 'stack-a' does not own it"; with the lock free, the
    record is simply not the stack's and the error says that."""
    app, a = _stack_a(tmp_path)

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            assert (await apply_planned(client, await make_planned(client, a, instance_name="i", stack="stack-a"))).ok
            for prefix in (PROPERTY_PREFIX, CLAIM_PREFIX):
                for row in await client.list("sys_properties", query=f"nameSTARTSWITH{prefix}", fields=["sys_id"]):
                    await client.delete("sys_properties", str(row["sys_id"]))
            held = await acquire(client, "stack-a", holder="ci@elsewhere:4242")  # this process: alive
            planned = await make_planned(client, a, instance_name="i", stack="stack-a")
            assert len(planned.plan.errors) == SIZE and not planned.plan.has_changes, planned.plan.errors
            for finding in planned.plan.errors:
                assert "while an apply of this stack is running (held by ci@elsewhere:4242" in finding.message
                assert "that apply is probably creating it right now" in finding.message, finding
                assert "does not own it" not in finding.message, finding
                assert "plan again once that apply has finished" in finding.hint, finding
            await release(client, held)
            freed = await make_planned(client, a, instance_name="i", stack="stack-a")
            assert len(freed.plan.errors) == SIZE, freed.plan.errors
            assert all("but stack 'stack-a' does not own it" in f.message for f in freed.plan.errors)

    asyncio.run(main())


@pytest.mark.parametrize("refusal", ["inventory created meanwhile", "lock held by another run"])
def test_an_apply_refused_before_its_first_write_leaves_no_claim(tmp_path: Path, refusal: str) -> None:
    """The first name is claimed in the round that checks the lock and the inventory (issue 18): when that round
    refuses the apply, the claim its insert made is given up again, and another stack's claim is never touched."""
    app, a = _stack_a(tmp_path)

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            planned = await make_planned(client, a, instance_name="i", stack="stack-a")
            assert planned.plan.has_changes and not planned.plan.errors
            other = ClaimKey("sys_certificate", "held-by-stack-b")
            await client.create("sys_properties", {"name": other.record_name("stack-b")}, sys_id=other.sys_id)
            if refusal == "inventory created meanwhile":
                await store_inventory(client, "stack-a", None, Inventory(stack="stack-a"))
                expected = "another run created the inventory of stack 'stack-a' meanwhile"
            else:  # a name-sake lock record of another sys_id (an earlier version's): the read-back gives way to it
                value = {"holder": "an earlier version", "token": "t", "expires": "2999-01-01T00:00:00Z"}
                await client.create("sys_properties", {"name": f"{LOCK_PREFIX}stack-a", "value": json.dumps(value)})
                expected = "stack 'stack-a' is locked: another apply is running"
            with pytest.raises(MtlsConfigError) as refused:
                await apply_planned(client, planned)
            assert expected in str(refused.value)
            claims = await read_claims(client, "stack-a")
            assert claims.own == ()
            assert [c.stack for c in claims.found.values()] == ["stack-b"]
            assert sum((await _names(client)).values()) == 0  # nothing of the stack was written

    asyncio.run(main())


# -- races ---------------------------------------------------------------------------------------------------


def _outcome(case: dict[str, Any], results: list[Finished]) -> str:
    """Which accepted outcome the two runs came to; fails the test on any other."""
    for r in results:
        assert "Traceback" not in r.out + r.err, r
    codes = sorted(r.status for r in results)
    for accepted in case["accept"]:
        if codes != sorted(accepted["exits"]):
            continue
        failing = [r for r in results if r.status != 0]
        if all(any(line in r.out + r.err for line in accepted.get("says_one_of", [""])) for r in failing):
            return accepted["outcome"]
    raise AssertionError(
        f"an outcome the case does not accept: {[(r.status, r.out[-800:], r.err[-800:]) for r in results]}"
    )


@pytest.mark.parametrize("path", RACE_CASES, ids=[p.stem for p in RACE_CASES])
def test_racing_applies_make_one_record_per_name(path: Path, zygote: Zygote, tmp_path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    trials = case["full_trials"] if FULL else case["trials"]
    pems = mint_pems(counts(SIZE)[2])
    served = case["instance"] == "served"
    # A closed gate holds each run's first claim insert until the other run's arrives (or 15 s pass), so the two
    # runs race for the names at the instance itself, both having planned them as new.
    app = create_app(EmulatorConfig(latency_ms=case.get("latency_ms", 0)))
    gate = Meeting(app, CLAIM_PREFIX, wait=15, closed=case.get("gate", False))
    outcomes: collections.Counter[str] = collections.Counter()
    env = base_env(SN_USERNAME="admin", SN_PASSWORD="admin")
    with ThreadedServer(gate) if served else _nothing() as server:  # type: ignore[attr-defined]
        for trial in range(trials):
            base = tmp_path / f"t{trial:02d}"
            stacks = ["stack-a", "stack-b"] if case["stacks"] == "two" else ["stack-a", "stack-a"]
            roots = [base / "a", base / "b"] if case["stacks"] == "two" else [base / "a", base / "a"]
            for root, stack in zip(roots, stacks, strict=True):
                if not root.exists():
                    _stack(root, stack, pems)
            argv = ["apply", "--auto-approve"]
            if served:
                gate.state.backend.reset(seed=True)
                gate.reset()
                argv += ["--instance", server.url]
            elif roots[0] != roots[1]:  # two projects sharing one embedded instance (its folder)
                (roots[0] / ".mtls-config").mkdir()
                os.symlink(roots[0] / ".mtls-config", roots[1] / ".mtls-config")
            pids = [zygote.start(argv, cwd=root, env=env, logs=base / f"logs{i}") for i, root in enumerate(roots)]
            results = [zygote.wait(pid) for pid in pids]
            outcome = _outcome(case, results)
            outcomes[outcome] += 1
            winner = next(i for i, r in enumerate(results) if r.status == 0)
            asyncio.run(_check_trial(gate.app if served else None, roots, stacks, winner))
            count("name_races")
    print(f"{path.stem}: {dict(outcomes)}")
    for outcome in case.get("must_see", []):
        assert outcomes[outcome], f"no trial came to '{outcome}' in {trials}: {dict(outcomes)}"


class _nothing:
    url = ""

    def __enter__(self) -> _nothing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


async def _check_trial(app: Any, roots: list[Path], stacks: list[str], winner: int) -> None:
    transport = httpx.ASGITransport(app=app) if app is not None else None
    client = InstanceClient(local_settings(), transport=transport) if transport else open_local(roots[0])
    async with client:
        names = await _names(client)
        doubled = sorted(k for k, n in names.items() if n > 1)
        assert not doubled, f"two records of one name: {doubled}"
        specs = load_specs([roots[winner] / "specs"], root=roots[winner])
        await assert_converged(client, specs, stacks[winner])
        claims = await read_claims(client, stacks[winner])
        for stack in set(stacks):
            inventory, _, _ = await read_inventory(client, stack)
            for address in inventory.resources:
                kind, _, name = address.partition("/")
                if kind == "MessageBinding":
                    continue
                table = "sys_protocol_profile" if kind == "ProtocolProfile" else "sys_certificate"
                holder = claims.holder(ClaimKey(table, name))
                assert holder is not None and holder.stack == stack, (stack, address, holder)
        if stacks[0] != stacks[1]:  # the loser owns none of the names, holds no claim and no lock
            loser = stacks[1 - winner]
            inventory, _, _ = await read_inventory(client, loser)
            assert not inventory.resources, inventory.resources
            assert not [c for c in claims.found.values() if c.stack == loser]
        locks = await client.list("sys_properties", query=f"nameSTARTSWITH{LOCK_PREFIX}", fields=["name"])
        assert not locks, locks


@pytest.mark.parametrize("duplicate_sys_id", ["reject", "overwrite"])
def test_racing_claims_and_locks_never_have_two_winners(duplicate_sys_id: str) -> None:
    """Of runs racing for the same names (and for one stack's lock), exactly one wins on an instance that refuses
    a second insert of a sys_id, as a real one is taken to (docs/emulator.md); on one that would take it for an
    update instead (``duplicate_sys_id="overwrite"``), at most one: the claims and the lock fail closed."""
    from mtls_config.claims import take_claims
    from mtls_config.errors import LockError
    from mtls_config.lock import acquire

    app = create_app(EmulatorConfig(duplicate_sys_id=duplicate_sys_id))  # type: ignore[arg-type]
    wanted = {ClaimKey("sys_certificate", f"race-{i}"): f"KeyStore/race-{i}" for i in range(8)}

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            for round_ in range(10):
                app.state.backend.reset(seed=False)
                refused = await asyncio.gather(*(take_claims(client, s, wanted) for s in ("stack-a", "stack-b", "c")))
                winners = [r for r in refused if not r]
                assert len(winners) == 1 if duplicate_sys_id == "reject" else len(winners) <= 1, (round_, refused)
                assert all(len(r) == len(wanted) for r in refused if r)  # a loser claims none of the names
                taken = await asyncio.gather(*(acquire(client, "race") for _ in range(4)), return_exceptions=True)
                held = [t for t in taken if not isinstance(t, BaseException)]
                assert len(held) == 1 if duplicate_sys_id == "reject" else len(held) <= 1, (round_, taken)
                assert all(isinstance(t, LockError) for t in taken if isinstance(t, BaseException)), taken
                count("claim_races")

    asyncio.run(main())


def test_adopting_a_record_claims_its_name(tmp_path: Path) -> None:
    """A record made by hand and adopted (adopt: true) becomes the stack's: its name is claimed in the same apply,
    so another stack's plan names the owner at once."""
    pems = mint_pems(counts(SIZE)[2])
    _stack(tmp_path / "a", "stack-a", pems)
    _stack(tmp_path / "b", "stack-b", pems)
    _edit(tmp_path / "a", [["metadata: {name: tc-00000}", "metadata: {name: tc-00000, adopt: true}"]])
    app = create_app(EmulatorConfig())

    async def main() -> None:
        async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app)) as client:
            a = load_specs([tmp_path / "a" / "specs"], root=tmp_path / "a")
            cert = next(r for r in a.resources if r.name == "tc-00000")  # made by hand with the spec's certificate
            pem = cert.spec.pem  # type: ignore[union-attr]
            values = {"name": "tc-00000", "type": "trust_store", "format": "pem", "pem_certificate": pem}
            await client.create("sys_certificate", values)
            planned = await make_planned(client, a, instance_name="i", stack="stack-a")
            adopted = [c.action for c in planned.plan.resource_changes if c.address == "TrustStoreCert/tc-00000"]
            assert adopted == ["update"]
            assert (await apply_planned(client, planned)).ok
            claims = await read_claims(client, "stack-a")
            holder = claims.holder(ClaimKey("sys_certificate", "tc-00000"))
            assert holder is not None and holder.stack == "stack-a"
            again = await make_planned(client, a, instance_name="i", stack="stack-a")
            assert not again.plan.has_changes and not again.housekeeping
            b = load_specs([tmp_path / "b" / "specs"], root=tmp_path / "b")
            blocked = await make_planned(client, b, instance_name="i", stack="stack-b")
            assert "belongs to stack 'stack-a'" in next(
                f.message for f in blocked.plan.errors if f.address == "TrustStoreCert/tc-00000"
            )

    asyncio.run(main())
