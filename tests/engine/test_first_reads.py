"""A plan's first reads go out from the specs' names before the desired state is built: the names they use
must be the desired state's, and a plan that stops on a spec error leaves nothing in flight. Its very first
request (the account's roles, which proves the credentials) goes out while the specs are read."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.access import GRANTS_TABLE, load_while_reading
from mtls_config.client import InstanceClient
from mtls_config.concurrency import settle
from mtls_config.desired import build_desired
from mtls_config.doctor import Scope, diagnose
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.engine import make_planned
from mtls_config.errors import PlanError, SpecError
from mtls_config.observe import NaturalKeys, read_first
from mtls_config.resources.kind import Lookup
from mtls_config.resources.registry import kind_named
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth
from mtls_config.spec.loader import SpecSet, load_specs
from tests.engine.conftest import local_settings
from tests.engine.stacks import write_stack

pytestmark = pytest.mark.anyio


def test_the_specs_and_the_desired_state_name_the_same_records(stack_dir: Path, tmp_path: Path) -> None:
    for root in (stack_dir / "resources", tmp_path / "bench"):
        if not root.exists():
            write_stack(root, 40)
        specs = load_specs([root], root=root.parent if root.name == "resources" else root)
        keys = NaturalKeys.of_specs(specs)
        assert keys == NaturalKeys.of_desired(build_desired(specs))
        assert {"sys_certificate", "sys_protocol_profile"} <= {lookup.table for lookup in keys.lookups}
    example = NaturalKeys.of_specs(load_specs([stack_dir / "resources"], root=stack_dir))
    # the example binds REST messages: they are looked up in round 1
    assert ("sys_rest_message", "name") in example.by_column()


def test_a_certificate_is_looked_up_by_its_name_and_the_users_and_groups_its_notices_name(stack_dir: Path) -> None:
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    desired = {d.address: d for d in build_desired(specs).resources}
    seen = {"named": 0, "alone": 0}
    for resource in specs.resources:
        kind = kind_named(resource.kind)
        if resource.kind not in ("KeyStore", "TrustStoreCert"):
            continue
        notice = resource.spec.expiration_notification
        expected = {Lookup("sys_certificate", "name", resource.name)}
        expected |= {Lookup("sys_user", "user_name", u) for u in notice.users or ()}
        expected |= {Lookup("sys_user_group", "name", g) for g in notice.groups or ()}
        assert set(kind.lookups(resource)) == expected == set(kind.desired_lookups(desired[resource.address]))
        assert all(type(lookup) is Lookup for lookup in kind.lookups(resource))
        seen["named" if len(expected) > 1 else "alone"] += 1
    assert seen["named"] and seen["alone"]  # the example has both


async def test_a_spec_error_stops_the_plan_with_no_read_left_in_flight(stack_dir: Path, client: InstanceClient) -> None:
    (stack_dir / "demo-secrets" / "keystore-password.txt").unlink()  # found only when the desired state is built
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    before = set(asyncio.all_tasks())
    with pytest.raises(SpecError, match=r"keystore-password\.txt"):
        await make_planned(client, specs, instance_name="local", stack="s")
    assert set(asyncio.all_tasks()) - before == set()


class _Watching(httpx.AsyncBaseTransport):
    """The emulator, noting each request's table as it arrives (``seen``); ``roles_arrived`` is set when the
    account's roles are asked for."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.seen: list[str] = []
        self.roles_arrived = threading.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        table = request.url.path.rsplit("/api/now/table/", 1)[-1]
        self.seen.append(table)
        if table == GRANTS_TABLE:
            self.roles_arrived.set()
        return await self.inner.handle_async_request(request)


async def test_the_first_request_goes_out_while_the_specs_are_read(stack_dir: Path) -> None:
    """The plan's first request (the account's roles, sent alone: it proves the credentials) is out while the specs
    load: the load here waits until the instance has it, and would time out if it went only after. The plan then
    uses that answer: the roles are read once, and the plan is the one made the usual way."""
    transport = _Watching(create_app(EmulatorConfig()))

    def load() -> SpecSet:
        assert transport.roles_arrived.wait(10), "the roles were not asked for while the specs loaded"
        return load_specs([stack_dir / "resources"], root=stack_dir)

    async with InstanceClient(local_settings(), transport=transport) as client:
        specs, grants = await load_while_reading(client, load)
        assert transport.seen == [GRANTS_TABLE]  # alone, first
        planned = await make_planned(client, specs, instance_name="local", stack="s", grants=grants)
        assert transport.seen.count(GRANTS_TABLE) == 1
        usual = await make_planned(client, specs, instance_name="local", stack="s")
        assert transport.seen.count(GRANTS_TABLE) == 2
    assert planned.plan.sealed().checksum == usual.plan.sealed().checksum
    assert planned.plan.summary == usual.plan.summary and planned.plan.summary.create > 0


@pytest.mark.parametrize("password", ["admin", "wrong"])
async def test_a_spec_error_while_the_first_request_is_out_is_the_error_and_nothing_is_left_in_flight(
    stack_dir: Path, password: str
) -> None:
    """Specs that fail to load stop the run with their own error, whatever the early request met (a wrong password
    here), and leave nothing in flight; so does a plan stopped before its reads (an unknown --target)."""
    (stack_dir / "resources" / "broken.yaml").write_text("apiVersion: mtls-config/v1\nkind: KeyStore\nspec: [\n")
    settings = replace(local_settings(), auth=BasicAuth("admin", SecretValue(password.encode(), "test")))
    before = set(asyncio.all_tasks())
    async with InstanceClient(settings, transport=httpx.ASGITransport(app=create_app(EmulatorConfig()))) as client:
        with pytest.raises(SpecError, match=r"broken\.yaml"):
            await load_while_reading(client, lambda: load_specs([stack_dir / "resources"], root=stack_dir))
        assert set(asyncio.all_tasks()) - before == set()
        (stack_dir / "resources" / "broken.yaml").unlink()
        specs, grants = await load_while_reading(client, lambda: load_specs([stack_dir / "resources"], root=stack_dir))
        with pytest.raises(PlanError, match="unknown address"):
            await make_planned(
                client, specs, instance_name="local", stack="s", targets=["KeyStore/nope"], grants=grants
            )
        assert grants.done()
    assert set(asyncio.all_tasks()) - before == set()


def test_the_reads_go_by_column_in_sorted_order(tmp_path: Path) -> None:
    """``by_column`` gives what grouping the sorted lookups gave (the order of the first round's reads and rows),
    though the keys are held unsorted."""
    write_stack(tmp_path, 40)
    keys = NaturalKeys.of_specs(load_specs([tmp_path], root=tmp_path))
    expected: dict[tuple[str, str], list[str]] = {}
    for lookup in sorted(keys.lookups):
        expected.setdefault((lookup.table, lookup.column), []).append(lookup.value)
    grouped = keys.by_column()
    assert list(grouped) == list(expected) and grouped == expected
    assert len(grouped) > 1 and all(len(values) > 1 for values in grouped.values())


@pytest.mark.parametrize("fan_out", ["first reads", "doctor"])
async def test_a_fan_out_stopped_at_any_step_leaves_no_read_unawaited(
    fan_out: str, stack_dir: Path, client: InstanceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan stopped while its first reads are being sent out (a spec error found by the local work, Ctrl-C), or a
    doctor stopped among its checks, cancels them at whatever step they reached. None may be left created and never
    awaited: Python reports such a read when it is collected, in whatever code runs then (a later test, the CLI's
    exit), as a warning the user sees."""
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.exc_value!r} in {u.object!r}"))
    keys = NaturalKeys.of_specs(load_specs([stack_dir / "resources"], root=stack_dir))
    loop = asyncio.get_running_loop()
    for steps in range(10_000):
        for later in (False, True):  # cancelled by this task at its turn, or just after what is queued then
            if fan_out == "doctor":
                task = asyncio.ensure_future(diagnose(client, Scope.everything(), url="http://127.0.0.1"))
            else:
                task = asyncio.ensure_future(read_first(client, keys, "s"))
            for _ in range(steps):
                await asyncio.sleep(0)
            finished = task.done()
            if later:
                loop.call_soon(task.cancel)
                await asyncio.sleep(0)
            await settle(task)
            gc.collect()
            assert unraisable == [], f"stopped after {steps} steps: {unraisable}"
        if finished:  # every step tried
            break
    assert finished and steps > 5, steps
