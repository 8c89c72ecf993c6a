"""Out-of-band edits between plan and apply: records changed, deleted or created by hand, and the inventory
moved by another run. A saved plan applied afterwards, and a fresh plan whose records move before apply's
pre-flight, must be refused with the records named, and the instance must be left exactly as it was: not
one field overwritten, not one record written (and the stack lock given back)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.engine import apply_planned, make_planned
from mtls_config.errors import ConflictError, StalePlan
from mtls_config.inventory import property_name
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import open_local
from tests.reliability.harness import count

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"
STACK = "two-partners-demo"
TABLES = (
    "sys_certificate",
    "sys_protocol_profile",
    "sys_properties",
    "sys_rest_message",
    "sys_rest_message_fn",
    "sys_soap_message",
    "sys_soap_message_function",
    "sys_attachment",
)


@pytest.fixture
def stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "two-partners"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".mtls-config"))
    (target / ".git").mkdir(exist_ok=True)
    monkeypatch.chdir(target)
    monkeypatch.setenv("NO_COLOR", "1")
    return target


async def snapshot(client: InstanceClient) -> dict[str, dict[str, dict[str, Any]]]:
    return {t: {r["sys_id"]: r for r in await client.list(t)} for t in TABLES}


async def _edit(client: InstanceClient, edit: str) -> None:
    certs = {r["name"]: r["sys_id"] for r in await client.list("sys_certificate", fields=["sys_id", "name"])}
    if edit == "same-record":
        await client.update("sys_certificate", certs["Globex client"], {"short_description": "hand edit"})
    elif edit == "other-record":
        profile = (await client.list("sys_protocol_profile", query="protocol=globexm", fields=["sys_id"]))[0]
        await client.update("sys_protocol_profile", profile["sys_id"], {"default_port": "8443"})
    elif edit == "deleted":
        await client.delete("sys_certificate", certs["Acme Payments server CA"])
    elif edit == "deleted-planned":
        profile = (await client.list("sys_protocol_profile", query="protocol=globexm", fields=["sys_id"]))[0]
        await client.delete("sys_protocol_profile", profile["sys_id"])
    elif edit == "inventory":
        prop = (await client.list("sys_properties", query=f"name={property_name(STACK)}", fields=["sys_id"]))[0]
        await client.update("sys_properties", prop["sys_id"], {"description": "another run was here"})
    elif edit == "unbound":
        msg = (await client.list("sys_soap_message", query="name=Globex Orders", fields=["sys_id"]))[0]
        await client.update("sys_soap_message", msg["sys_id"], {"enable_mutual_auth": "false"})
    else:
        raise AssertionError(edit)


def _change_specs(stack_dir: Path) -> None:
    spec = stack_dir / "resources" / "globex-orders.yaml"
    text = spec.read_text()
    text = text.replace("description: Client keystore presented to Globex", "description: Globex client, rotated")
    spec.write_text(text.replace("  keyStore: Globex client\n", "  keyStore: Globex client\n  port: 444\n"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


EDITS = ("same-record", "other-record", "deleted", "deleted-planned", "inventory", "unbound")


@pytest.mark.parametrize("edit", EDITS)
def test_a_saved_plan_is_refused_after_out_of_band_edits(
    stack_dir: Path, edit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["apply", "--auto-approve"], capsys)
    assert code == 0, out + err
    _change_specs(stack_dir)
    code, out, err = _run(["plan", "--out", "plan.json"], capsys)
    assert code == 2, out + err

    async def edit_and_snapshot() -> dict[str, Any]:
        async with open_local(stack_dir) as c:
            await _edit(c, edit)
            return await snapshot(c)

    before = asyncio.run(edit_and_snapshot())
    code, out, err = _run(["apply", "plan.json"], capsys)
    assert code == 1, out + err
    assert "stale" in err or "changed" in err, err

    async def after() -> dict[str, Any]:
        async with open_local(stack_dir) as c:
            return await snapshot(c)

    assert asyncio.run(after()) == before, "the refused apply wrote to the instance"
    count("stale_edits_refused")


@pytest.mark.anyio
# Only edits of records the plan changes (or of the inventory) concern a fresh plan: apply touches nothing else.
@pytest.mark.parametrize("edit", ["same-record", "other-record", "deleted-planned", "inventory"])
async def test_records_moving_between_plan_and_apply_are_refused_before_any_write(stack_dir: Path, edit: str) -> None:
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    (stack_dir / ".mtls-config").mkdir()
    async with open_local(stack_dir) as client:
        assert (await apply_planned(client, await make_planned(client, specs, instance_name="t", stack=STACK))).ok
        _change_specs(stack_dir)
        specs = load_specs([stack_dir / "resources"], root=stack_dir)
        planned = await make_planned(client, specs, instance_name="t", stack=STACK)
        assert planned.plan.has_changes
        await _edit(client, edit)
        before = await snapshot(client)
        with pytest.raises((StalePlan, ConflictError)) as caught:
            await apply_planned(client, planned)
        assert "sys_" in str(caught.value) or "inventory" in str(caught.value)
        assert await snapshot(client) == before
    count("stale_edits_refused")
