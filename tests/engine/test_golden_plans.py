"""Golden plans: the plan JSON for the same inputs stays the same, byte for byte.

Two sources of inputs. Every diff case of tests/cases/diff/ (desired + live -> plan, no I/O). And the example stack
(specs/examples/two-partners) against the emulator, in the order a stack lives: the first plan, plans narrowed by
--target/--exclude, the plan after apply, a plan after edits by hand and in the specs, and a prune. ``now`` is fixed;
the sys_ids the instance and apply choose at random are replaced by ``<sys_id N>`` in order of appearance (the same
sys_id twice is the same placeholder), and the checksum of such a plan, which covers them, is checked and then
replaced.

The golden files live in tests/golden/plans/. A change to one is a change of behaviour: regenerate them with
``MTLS_CONFIG_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/engine/test_golden_plans.py`` only when that change
is intended, and read the diff.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
from pathlib import Path

import pytest

from mtls_config.client import InstanceClient
from mtls_config.engine import Planned, apply_planned, make_planned
from mtls_config.inventory_store import read_inventory
from mtls_config.plan import Plan, make_plan
from mtls_config.spec.loader import load_specs
from tests.engine.diffcases import CASES, load_case, run_diff

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plans"
UPDATE = os.environ.get("MTLS_CONFIG_UPDATE_GOLDEN") == "1"
# The Acme client certificate expires on 2028-11-26: within its warnDays (45), so the plans carry expiry findings.
EXAMPLE_NOW = dt.datetime(2028, 10, 20, 12, 0, tzinfo=dt.UTC)
SYS_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def _check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden plan {path.name}; run with MTLS_CONFIG_UPDATE_GOLDEN=1 to write it")
    want = path.read_text(encoding="utf-8")
    if text != want:
        shown = "\n".join(difflib.unified_diff(want.splitlines(), text.splitlines(), "golden", "actual", lineterm=""))
        pytest.fail(f"the plan differs from {path.name}:\n{shown}")


def _normalised(plan: Plan) -> str:
    """The plan's JSON with the random sys_ids named by order of appearance and the checksum checked."""
    assert plan.checksum == plan.body_checksum()
    data = json.loads(plan.to_json())
    data["checksum"] = "<checksum over the real sys_ids>"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    names: dict[str, str] = {}
    return SYS_ID.sub(lambda m: names.setdefault(m.group(0), f"<sys_id {len(names) + 1}>"), text)


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_diff_case_plan_is_unchanged(path: Path) -> None:
    case = load_case(path)
    desired, live, result = run_diff(case)
    plan = make_plan(
        result,
        instance="https://golden.service-now.com",
        stack=live.stack,
        spec_digest=desired.spec_digest,
        inventory_sys_id=None,
        inventory_mod_count=None,
        inventory_generation=live.inventory.generation,
        prune=bool(case.get("prune", False)),
        now=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
    )
    _check(f"diff-{path.stem}", plan.to_json())


async def _plan(client: InstanceClient, root: Path, **kw: object) -> Planned:
    specs = load_specs([root / "resources"], root=root)
    return await make_planned(client, specs, instance_name="local", stack="golden", now=EXAMPLE_NOW, **kw)  # type: ignore[arg-type]


async def _edit_by_hand(client: InstanceClient) -> None:
    """Edits an admin makes on the instance: a description, a keystore file, a password, a binding switched off."""
    certs = {r["name"]: r for r in await client.list("sys_certificate", fields=["sys_id", "name"])}
    await client.update(
        "sys_certificate", certs["Acme Payments server CA"]["sys_id"], {"short_description": "edited by hand"}
    )
    globex = certs["Globex client"]["sys_id"]
    for att in await client.list_attachments("sys_certificate", [globex]):
        await client.delete_attachment(att["sys_id"])
    await client.upload_attachment("sys_certificate", globex, "globex.jks", b"\xfe\xed\xfe\xed not the right store")
    await client.update(
        "sys_certificate", certs["Acme Payments client"]["sys_id"], {"key_store_password": "guessed"},
        input_display_value=True,
    )  # fmt: skip
    message = (await client.list("sys_soap_message", query="name=Globex Orders", fields=["sys_id"]))[0]
    await client.update("sys_soap_message", message["sys_id"], {"enable_mutual_auth": "false"})
    fn = (await client.list("sys_rest_message_fn", query="function_name=post_payment", fields=["sys_id"]))[0]
    await client.update("sys_rest_message_fn", fn["sys_id"], {"protocol_name": ""})


# The columns the engine writes or reads, per table it writes (the emulator's other columns are its own business).
COLUMNS = {
    "sys_certificate": (
        "sys_id", "sys_mod_count", "name", "type", "format", "active", "short_description", "warn_in_days_to_expire",
        "expiration_notification", "pem_certificate", "key_store_password",
    ),
    "sys_protocol_profile": ("sys_id", "sys_mod_count", "protocol", "default_port", "keystore"),
    "sys_rest_message": ("sys_id", "sys_mod_count", "name", "use_mutual_auth", "protocol_name"),
    "sys_rest_message_fn": ("sys_id", "sys_mod_count", "function_name", "rest_message", "use_mutual_auth", "protocol_name"),
    "sys_soap_message": ("sys_id", "sys_mod_count", "name", "enable_mutual_auth", "protocol_profile"),
    "sys_soap_message_function": (
        "sys_id", "sys_mod_count", "function_name", "soap_message", "enable_mutual_auth", "protocol_profile",
    ),
}  # fmt: skip


async def _applied(client: InstanceClient, planned: Planned, journal: Path) -> str:
    """Apply, then what it did: the journal's steps (sorted: independent steps run concurrently), every record of
    the tables it writes as the instance holds them afterwards, and the stack's inventory."""
    journal.unlink(missing_ok=True)
    result = await apply_planned(client, planned, journal_path=journal)
    assert result.ok
    steps = sorted(
        json.dumps({k: v for k, v in json.loads(line).items() if k != "at"}, sort_keys=True)
        for line in journal.read_text().splitlines()
    )
    tables: dict[str, object] = {}
    for table, columns in COLUMNS.items():
        rows = await client.list(table, fields=columns)
        tables[table] = sorted(
            # the password is encrypted with a random nonce: whether it is set is what holds
            ({k: ("<set>" if k == "key_store_password" and v else v) for k, v in row.items()} for row in rows),
            key=lambda r: (str(r.get("name") or r.get("protocol") or r.get("function_name")), str(r.get("sys_id"))),
        )
    ids = sorted(r["sys_id"] for r in await client.list("sys_certificate", fields=["sys_id"]))
    attachments = await client.list_attachments("sys_certificate", ids)
    tables["sys_attachment"] = sorted(
        ({k: a.get(k) for k in ("file_name", "size_bytes", "content_type", "table_sys_id")} for a in attachments),
        key=lambda a: (str(a["file_name"]), str(a["table_sys_id"])),
    )
    inventory = json.loads((await read_inventory(client, "golden"))[0].model_copy(update={"salt": "<salt>"}).to_json())
    salted: dict[str, str] = {}
    for entry in inventory["resources"].values():
        if entry["password_opaque"] is not None:  # the emulator encrypts with a random nonce
            entry["password_opaque"] = "<sha256 of the encrypted value>"
        if entry["password_digest"] is not None:  # salted with the inventory's random salt
            entry["password_digest"] = salted.setdefault(entry["password_digest"], f"<salted digest {len(salted) + 1}>")
    found = {"journal": [json.loads(s) for s in steps], "instance": tables, "inventory": inventory}
    text = json.dumps(found, indent=2, sort_keys=True)
    names: dict[str, str] = {}
    return SYS_ID.sub(lambda m: names.setdefault(m.group(0), f"<sys_id {len(names) + 1}>"), text + "\n")


@pytest.mark.anyio
async def test_example_stack_plans_are_unchanged(stack_dir: Path, client: InstanceClient) -> None:
    journal = stack_dir / "journal.jsonl"
    first = await _plan(client, stack_dir)
    _check("example-first", _normalised(first.plan))
    targeted = await _plan(client, stack_dir, targets=["MessageBinding/acme-payments-api"])
    _check("example-targeted", _normalised(targeted.plan))
    excluded = await _plan(
        client, stack_dir, excludes=["TrustStoreCert/Globex orders server", "KeyStore/Globex client"]
    )
    _check("example-excluded", _normalised(excluded.plan))

    _check("example-first-applied", await _applied(client, first, journal))
    _check("example-noop", _normalised((await _plan(client, stack_dir)).plan))

    await _edit_by_hand(client)
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: 8443").replace("warnDays: 45", "warnDays: 60"))
    drifted = await _plan(client, stack_dir)
    _check("example-drift", _normalised(drifted.plan))
    _check("example-drift-applied", await _applied(client, drifted, journal))

    (stack_dir / "resources" / "globex-orders.yaml").unlink()
    _check("example-orphans", _normalised((await _plan(client, stack_dir)).plan))
    pruned = await _plan(client, stack_dir, prune=True)
    _check("example-prune", _normalised(pruned.plan))
    _check("example-prune-applied", await _applied(client, pruned, journal))
    _check("example-after-prune", _normalised((await _plan(client, stack_dir)).plan))


@pytest.mark.anyio
async def test_import_result_is_unchanged(client: InstanceClient) -> None:
    """What 'import' writes and records for a hand-made set-up with every kind, and with records it must skip."""
    from mtls_config.importer import import_live

    example = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"
    jks = (example / "keystores" / "globex-client.jks").read_bytes()
    pem = (example / "certs" / "acme-server-ca.pem").read_text()
    der = (example / "certs" / "globex-server.der").read_bytes()

    async def certificate(values: dict[str, str], *files: tuple[str, bytes]) -> str:
        record = await client.create("sys_certificate", {"active": "true", **values}, input_display_value=True)
        for name, data in files:
            await client.upload_attachment("sys_certificate", record["sys_id"], name, data)
        return str(record["sys_id"])

    keystore = await certificate(
        {"name": "Hand made keystore", "type": "key_store", "key_store_password": "pw-canary"}, ("client.jks", jks)
    )
    broken = await certificate({"name": "Broken keystore", "type": "key_store"})
    await certificate({"name": "Partner CA", "type": "trust_store", "format": "pem", "pem_certificate": pem})
    await certificate({"name": "partner-ca", "type": "trust_store", "format": "pem", "pem_certificate": pem})
    await certificate({"name": "Partner DER", "type": "trust_store", "format": "der"}, ("partner.der", der))
    await certificate({"name": "Another DER", "type": "trust_store", "format": "der"})
    profile = await client.create(
        "sys_protocol_profile", {"protocol": "handmade", "default_port": "8443", "keystore": keystore}
    )
    await client.create("sys_protocol_profile", {"protocol": "brokenprof", "default_port": "443", "keystore": broken})
    rest = (await client.list("sys_rest_message", query="name=Acme Payments API", fields=["sys_id"]))[0]
    await client.update(
        "sys_rest_message", rest["sys_id"], {"use_mutual_auth": "true", "protocol_name": profile["sys_id"]}
    )
    for fn in await client.list("sys_rest_message_fn", query=f"rest_message={rest['sys_id']}", fields=["sys_id"]):
        await client.update(
            "sys_rest_message_fn", fn["sys_id"], {"use_mutual_auth": "true", "protocol_name": profile["sys_id"]}
        )
    soap = (await client.list("sys_soap_message", query="name=Globex Orders", fields=["sys_id"]))[0]
    await client.update(
        "sys_soap_message", soap["sys_id"], {"enable_mutual_auth": "true", "protocol_profile": "0" * 32}
    )

    result = await import_live(client, "imported")
    assert result.inventory is not None
    files = {
        path: data.decode() if path.endswith((".yaml", ".pem")) else f"{len(data)} bytes"
        for path, data in sorted(result.files.items())
    }
    inventory = json.loads(result.inventory.model_copy(update={"salt": "<random salt>"}).to_json())
    for entry in inventory["resources"].values():
        if entry["password_opaque"] is not None:  # the emulator encrypts with a random nonce
            entry["password_opaque"] = "<sha256 of the encrypted value>"
    found = {"imported": result.imported, "skipped": result.skipped, "files": files, "inventory": inventory}
    text = json.dumps(found, indent=2, sort_keys=True) + "\n"
    assert "pw-canary" not in text
    names: dict[str, str] = {}
    _check("import", SYS_ID.sub(lambda m: names.setdefault(m.group(0), f"<sys_id {len(names) + 1}>"), text))
