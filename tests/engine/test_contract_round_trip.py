"""The engine's whole round trip on the instance's contract: a keystore, a profile and a SOAP binding applied by the
engine, then read the way ServiceNow's own client (PySNC) reads records. Runs against the emulator always and
against a real developer instance when ``MTLS_CONFIG_TEST_INSTANCE`` is set (marked ``real_instance``; see
docs/contract-tests.md): there it creates an inactive keystore ``mtls-config contract <hex>``, a profile
``mtlscfge<letters>``, a SOAP message ``mtls-config contract <hex>`` with one function, and the stack's inventory
property, and deletes them all again."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.engine import apply_planned, make_planned
from mtls_config.settings import settings_from_env
from mtls_config.spec.loader import load_specs
from tests.conftest import BOTH_TARGETS, REAL_INSTANCE, real_instance_credentials
from tests.engine.conftest import EXAMPLE, local_settings

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BOTH_TARGETS)
async def instance(request: pytest.FixtureRequest) -> AsyncIterator[InstanceClient]:
    if request.param == "emulator":
        transport = httpx.ASGITransport(app=create_app(EmulatorConfig()))
        async with InstanceClient(local_settings(), transport=transport) as client:
            yield client
        return
    user, password = real_instance_credentials()
    env = {"SN_USERNAME": user, "SN_PASSWORD": password}
    async with InstanceClient(settings_from_env(REAL_INSTANCE, env=env)) as client:
        yield client


SPECS = """\
apiVersion: mtls-config/v1
kind: KeyStore
metadata: {{name: "{keystore}"}}
spec:
  format: jks
  file: globex-client.jks
  password: {{fromFile: keystore-password.txt}}
  active: false
---
apiVersion: mtls-config/v1
kind: ProtocolProfile
metadata: {{name: {protocol}}}
spec: {{keyStore: "{keystore}"}}
---
apiVersion: mtls-config/v1
kind: MessageBinding
metadata: {{name: contract}}
spec:
  message: {{type: soap, name: "{message}"}}
  functions: [contractOp]
  protocolProfile: {protocol}
"""


async def test_a_soap_binding_applied_by_the_engine_reads_back_as_pysnc_reads_it(
    instance: InstanceClient, tmp_path: Path
) -> None:
    token = secrets.token_hex(4)
    stack = f"mtls-config-contract-{token}"
    keystore, message_name = f"mtls-config contract {token}", f"mtls-config contract {token}"
    protocol = "mtlscfge" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
    (tmp_path / ".git").mkdir()
    shutil.copy(EXAMPLE / "keystores" / "globex-client.jks", tmp_path)
    shutil.copy(EXAMPLE / "demo-secrets" / "keystore-password.txt", tmp_path)
    (tmp_path / "specs.yaml").write_text(SPECS.format(keystore=keystore, protocol=protocol, message=message_name))
    message = await instance.create("sys_soap_message", {"name": message_name})
    await instance.create(
        "sys_soap_message_function", {"soap_message": message["sys_id"], "function_name": "contractOp"}
    )
    try:
        specs = load_specs([tmp_path / "specs.yaml"], root=tmp_path)
        result = await apply_planned(instance, await make_planned(instance, specs, instance_name="c", stack=stack))
        assert result.ok, result.outcomes
        profile = (await instance.list("sys_protocol_profile", query=f"protocol={protocol}", fields=["sys_id"]))[0]
        for table, query in (
            ("sys_soap_message", f"name={message_name}"),
            ("sys_soap_message_function", f"soap_message={message['sys_id']}"),
        ):
            # PySNC's defaults: every value as {display_value, value}, no reference links
            (read,) = await instance.list(table, query=query, display_value="all", exclude_reference_link=True)
            assert read["enable_mutual_auth"] == {"display_value": "true", "value": "true"}, read
            assert read["protocol_profile"] == {"display_value": protocol, "value": profile["sys_id"]}, read
        again = await make_planned(instance, specs, instance_name="c", stack=stack)
        assert not again.plan.has_changes and not again.plan.errors
    finally:
        await instance.delete("sys_soap_message", message["sys_id"])  # its function goes with it (or next)
        for fn in await instance.list("sys_soap_message_function", query=f"soap_message={message['sys_id']}"):
            await instance.delete("sys_soap_message_function", fn["sys_id"])
        for row in await instance.list("sys_protocol_profile", query=f"protocol={protocol}", fields=["sys_id"]):
            await instance.delete("sys_protocol_profile", row["sys_id"])
        for row in await instance.list("sys_certificate", query=f"name={keystore}", fields=["sys_id"]):
            await instance.delete("sys_certificate", row["sys_id"])
        owned = f"nameSTARTSWITHmtls_config.inventory.{stack}^ORnameSTARTSWITHmtls_config.lock.{stack}"
        for row in await instance.list("sys_properties", query=owned, fields=["sys_id"]):
            await instance.delete("sys_properties", row["sys_id"])
