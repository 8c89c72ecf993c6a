"""Columns discovered, not assumed: the data dictionary read for the tables a stack touches (``read_dictionary``),
walked up the tables they extend, and what the engine makes of it (``Dictionary``, ``columns_of``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mtls_config import dictionary as dictionary_module
from mtls_config.client import InstanceClient
from mtls_config.dictionary import Dictionary, dictionary_of, tables_to_read
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.observe import read_dictionary
from mtls_config.resources.message_binding import ColumnMap, columns_of
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth
from tests.engine.conftest import local_settings

pytestmark = pytest.mark.anyio


class Log(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path.rsplit("/", 1)[-1])
        return await self.inner.handle_async_request(request)


async def _read(tables: list[str], **config: object) -> tuple[Dictionary, list[str]]:
    log = Log(httpx.ASGITransport(app=create_app(EmulatorConfig(**config))))  # type: ignore[arg-type]
    async with InstanceClient(local_settings(), transport=log) as client:
        return await read_dictionary(client, tables), log.paths


async def test_the_stack_tables_and_their_known_parent_in_one_pair_of_reads() -> None:
    found, paths = await _read(["sys_certificate", "sys_rest_message", "sys_soap_message_function"])
    assert sorted(paths) == ["sys_db_object", "sys_dictionary"]
    assert found.readable and found.parents["sys_rest_message"] == "sys_metadata"
    assert found.parents["sys_certificate"] == "" and found.parents["sys_metadata"] == ""
    scope = found.column("sys_rest_message", "sys_scope")
    assert scope is not None and scope.table == "sys_metadata" and scope.type == "reference"
    tick = found.column("sys_soap_message_function", "enable_mutual_auth")
    assert tick is not None and (tick.type, tick.label) == ("boolean", "Enable mutual authentication")
    profile = found.column("sys_soap_message_function", "protocol_profile")
    assert profile is not None and profile.reference == "sys_protocol_profile"
    assert found.lacks("sys_soap_message_function", "use_mutual_auth")  # REST's name: not a SOAP column
    assert not found.lacks("sys_certificate", "key_store_password")


async def test_a_connection_and_the_table_it_extends_in_one_pair_of_reads() -> None:
    found, paths = await _read(["http_connection"])  # extends sys_connection, asked for with it
    assert sorted(paths) == ["sys_db_object", "sys_dictionary"]
    assert found.lineage("http_connection") == ("http_connection", "sys_connection")


async def test_a_parent_no_one_expected_is_read_in_a_follow_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dictionary_module, "PARENT_OF", {})  # as if sys_connection were not known to be its parent
    found, paths = await _read(["http_connection"])
    assert paths.count("sys_dictionary") == 2 and paths.count("sys_db_object") == 2
    assert found.lineage("http_connection") == ("http_connection", "sys_connection")
    alias = found.column("http_connection", "connection_alias")
    assert alias is not None and alias.table == "sys_connection"


async def test_a_column_the_instance_lacks() -> None:
    found, _ = await _read(["sys_soap_message"], absent_columns=("sys_soap_message.enable_mutual_auth",))
    assert found.lacks("sys_soap_message", "enable_mutual_auth")
    assert not found.lacks("sys_soap_message", "protocol_profile")


async def test_a_user_without_admin_reads_no_dictionary_and_nothing_is_said_to_be_lacking() -> None:
    users = {"wsa": ("wsa-pass", ("web_service_admin",))}
    app = create_app(EmulatorConfig(users=users))
    settings = replace(local_settings(), auth=BasicAuth("wsa", SecretValue(b"wsa-pass", "test")))
    async with InstanceClient(settings, transport=httpx.ASGITransport(app=app)) as client:
        found = await read_dictionary(client, ["sys_rest_message"])
    assert not found.readable
    assert not found.lacks("sys_rest_message", "anything")


def test_nothing_to_read_for_no_tables() -> None:
    assert tables_to_read([]) == ()
    assert tables_to_read(["sys_certificate"]) == ("sys_certificate", "sys_metadata")


def test_references_keyed_by_name_as_links_or_values() -> None:
    rows = [
        {
            "name": "t",
            "element": "p",
            "column_label": "Protocol profile",
            "internal_type": {"link": "https://x/api/now/table/sys_glide_object?name=reference", "value": "reference"},
            "reference": {"link": "https://x/api/now/table/sys_db_object?name=sys_protocol_profile"},
            "read_only": "false",
        },
        {"name": "t", "element": "", "internal_type": "collection"},  # a collection row: not a column
    ]
    found = dictionary_of(rows, [{"name": "t", "super_class.name": ""}])
    column = found.column("t", "p")
    assert column is not None and (column.type, column.reference) == ("reference", "sys_protocol_profile")
    assert list(found.columns["t"]) == ["p"]


async def test_a_column_map_can_name_columns_by_label() -> None:
    """Issue 16's path: a column no source names is found in the dictionary by its form label."""
    found, _ = await _read(["http_connection"], connection_mutual_auth_columns=("u_mtls", "u_mtls_profile"))
    by_label = ColumnMap("mutual_auth", "protocol_profile", enabled_label="Mutual authentication",
                         profile_label="Protocol profile")  # fmt: skip
    resolved = by_label.resolved("http_connection", found)
    assert resolved.owned == ("u_mtls", "u_mtls_profile")
    assert by_label.resolved("http_connection", None) == by_label  # no dictionary: the names given
    assert by_label.resolved("http_connection", Dictionary()).owned == ("mutual_auth", "protocol_profile")


def test_the_message_tables_need_no_dictionary_to_name_their_columns() -> None:
    assert columns_of("sys_soap_message").owned == ("enable_mutual_auth", "protocol_profile")
    assert columns_of("sys_rest_message_fn", Dictionary()).owned == ("use_mutual_auth", "protocol_name")


async def test_a_dictionary_refused_with_403_is_an_unread_one() -> None:
    """An instance guarding its dictionary with an elevated role answers 403: the plan goes on, columns unchecked."""
    found, _ = await _read(["sys_rest_message"], users={"admin": ("admin", ("admin",))}, list_without_read_role="403")
    assert found.readable  # admin reads it

    users = {"wsa": ("wsa-pass", ("web_service_admin",))}
    app = create_app(EmulatorConfig(users=users, list_without_read_role="403"))
    settings = replace(local_settings(), auth=BasicAuth("wsa", SecretValue(b"wsa-pass", "test")))
    async with InstanceClient(settings, transport=httpx.ASGITransport(app=app)) as client:
        refused = await read_dictionary(client, ["sys_rest_message"])
    assert not refused.readable and not refused.lacks("sys_rest_message", "use_mutual_auth")


async def test_what_a_resource_writes_is_checked_per_dictionary_and_once_per_set_of_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plan asks what every resource writes that the instance lacks: the answer depends on the dictionary and on
    the columns only (a certificate that names users writes one more), and each set is asked of a dictionary once,
    however many resources write it."""
    from mtls_config.resources.common import DesiredResource
    from mtls_config.resources.trust_store_cert import KIND

    plain = DesiredResource("TrustStoreCert/a", "TrustStoreCert", "a", "sys_certificate", {"active": True})
    naming = replace(plain, fields={"active": True, "notify_groups": ["ops"]})
    older, _ = await _read(["sys_certificate"], absent_columns=("sys_certificate.notify_groups",))
    newer, _ = await _read(["sys_certificate"])
    asked: list[tuple[str, str]] = []
    lacks = Dictionary.lacks

    def counted(self: Dictionary, table: str, name: str) -> bool:
        asked.append((table, name))
        return lacks(self, table, name)

    monkeypatch.setattr(Dictionary, "lacks", counted)
    for _ in range(50):
        assert KIND.lacking_columns(older, plain) == []
        assert KIND.lacking_columns(older, naming) == [("sys_certificate", "sys_certificate.notify_groups")]
        assert KIND.lacking_columns(newer, naming) == []
    written = len(KIND.written_columns(naming, None)["sys_certificate"])
    assert len(asked) == (written - 1) + written + written  # each set once per dictionary
    # a dictionary gone, and another made (an id used again): answered for the new one
    del older
    again, _ = await _read(["sys_certificate"], absent_columns=("sys_certificate.notify_groups",))
    assert KIND.lacking_columns(again, naming) == [("sys_certificate", "sys_certificate.notify_groups")]
    assert KIND.lacking_columns(newer, naming) == []


async def test_a_kind_that_may_lack_nothing_lacks_nothing_for_any_of_its_resources(stack_dir: Path) -> None:
    """A plan asks a resource what it writes that the instance lacks only when its kind may lack something
    (``Kind.may_lack``, asked once a plan): for every column a resource of the example stack writes (a certificate
    naming users, groups and a frequency too), a dictionary without that column has the kind say so."""
    from mtls_config.desired import build_desired
    from mtls_config.resources.registry import kind_named
    from mtls_config.spec.loader import load_specs

    desired = build_desired(load_specs([stack_dir / "resources"], root=stack_dir)).resources
    certificate = next(d for d in desired if d.kind == "TrustStoreCert")
    notified = {**certificate.fields, "notify_on_expiration": ["ops"], "notify_groups": ["pki"], "frequency": "daily"}
    resources = [*desired, replace(certificate, fields=notified)]
    assert {d.kind for d in resources} == {"KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding"}
    full, _ = await _read(["sys_certificate"])
    written = {
        (table, column)
        for d in resources
        for table, columns in kind_named(d.kind).written_columns(d, full).items()
        for column in columns
    }
    tables = sorted({table for table, _ in written})
    full, _ = await _read(tables)
    assert not any(kind_named(d.kind).lacking_columns(full, d) for d in resources)
    # (a binding's kind may lack the by-label columns of a table the specs bind none of, which was not read)
    assert not any(kind_named(kind).may_lack(full) for kind in ("KeyStore", "TrustStoreCert", "ProtocolProfile"))
    seen = 0
    for table, column in sorted(written):
        dictionary, _ = await _read(tables, absent_columns=(f"{table}.{column}",))
        for d in resources:
            kind = kind_named(d.kind)
            if kind.lacking_columns(dictionary, d):
                seen += 1
                assert kind.may_lack(dictionary), (d.address, table, column)
    assert seen >= len(written) // 2  # most columns' absence is seen (a column found by label may be found still)
