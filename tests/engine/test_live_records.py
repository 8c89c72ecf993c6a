"""A row read from the instance becomes a record of text: a row all of text is held as it is (not copied: a plan
holds one per resource), any other is converted (a reference object to its sys_id, null to "")."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from dataclasses import fields as fields_of
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtls_config.errors import BadResponse
from mtls_config.reads import live_record
from mtls_config.resources.common import Attachment, LiveResource, to_bool, to_int

SYS_ID = "a" * 32


def test_a_row_of_text_is_held_as_it_is() -> None:
    row = {"sys_id": SYS_ID, "name": "n", "sys_mod_count": "4"}
    record = live_record("sys_certificate", row)
    assert record.values is row
    assert (record.table, record.sys_id, record.mod_count, record.get("name"), record.get("absent")) == (
        "sys_certificate",
        SYS_ID,
        4,
        "n",
        "",
    )


def test_other_values_are_made_text() -> None:
    row = {"sys_id": SYS_ID, "ref": {"value": "b" * 32, "link": "x"}, "gone": None, "count": 3, "flag": True}
    record = live_record("sys_certificate", row)
    assert dict(record.values) == {"sys_id": SYS_ID, "ref": "b" * 32, "gone": "", "count": "3", "flag": "True"}
    assert row["ref"] == {"value": "b" * 32, "link": "x"}  # the row itself is left as it was
    assert record.mod_count == 0


@pytest.mark.parametrize("sys_id", [None, "", 5])
def test_a_row_without_a_sys_id_is_refused(sys_id: object) -> None:
    with pytest.raises(BadResponse, match="a sys_certificate record came back without a sys_id"):
        live_record("sys_certificate", {"sys_id": sys_id, "name": "n"})


def _read_bool(value: str | bool | None) -> bool:
    """``to_bool`` as it read every value before it looked the usual ones up."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}


def _read_int(value: str | int | None) -> int | None:
    """``to_int`` as it read every value before it looked the usual ones up."""
    if isinstance(value, int):
        return value
    text = (value or "").strip()
    if not text or len(text) > 40:
        return None
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return None


usual = st.one_of(st.integers(-5, 1200).map(str), st.sampled_from(["true", "false", "True", " true", "1", "yes", ""]))
texts = st.one_of(usual, st.text(alphabet="0123456789 .-+eETtrufalsyYN", max_size=6), st.none(), st.booleans())


@given(texts)
def test_the_values_looked_up_read_as_they_are_read(value: str | bool | None) -> None:
    """The numbers and booleans the instance writes most are looked up: each gives what reading it gives."""
    assert to_bool(value) is _read_bool(value)
    read = _read_int(value)
    assert to_int(value) == read and type(to_int(value)) is type(read)


def test_the_values_looked_up_are_the_usual_ones() -> None:
    assert (to_bool("true"), to_bool("false"), to_bool("TRUE"), to_bool(" yes ")) == (True, False, True, True)
    assert (to_int("0"), to_int("30"), to_int("999"), to_int("1000"), to_int("030"), to_int("")) == (
        0,
        30,
        999,
        1000,
        30,
        None,
    )


def test_a_live_view_with_other_fields_is_what_replace_makes() -> None:
    """``LiveResource.with_fields`` (the content checks' copy of a live view) is ``dataclasses.replace``'s, every
    other field the same object, and the view it was made from unchanged."""
    record = live_record("sys_certificate", {"sys_id": SYS_ID, "name": "n"})
    attachment = Attachment(SYS_ID, "a.jks", 3, "application/octet-stream")
    current = LiveResource(
        "KeyStore/n", "KeyStore", "n", "sys_certificate", {"": record}, {"active": True, "keystore_file": None},
        {"expires": "2030-01-01 00:00:00"}, (attachment,), ("why",), "", (),
    )  # fmt: skip
    fields = {**current.fields, "keystore_file": "sha256:00"}
    made = current.with_fields(fields)
    assert made == replace(current, fields=fields) and type(made) is LiveResource
    assert made.fields is fields and current.fields["keystore_file"] is None
    assert all(getattr(made, f.name) is getattr(current, f.name) for f in fields_of(current) if f.name != "fields")
    assert not hasattr(made, "__dict__")  # slotted, as the view it was made from
    with pytest.raises(FrozenInstanceError):
        made.fields = {}  # type: ignore[misc]


def test_records_and_the_kinds_live_views_are_what_their_classes_make() -> None:
    """A record and each kind's live view are made by filling their slots (issue 18: one of each a resource read);
    each is what the class's own constructor makes, frozen, and holds no ``__dict__`` (one per record was memory)."""
    from mtls_config.resources import key_store, protocol_profile, trust_store_cert
    from mtls_config.resources.common import LiveRecord

    row = {"sys_id": SYS_ID, "name": "n", "sys_mod_count": "7", "type": "trust_store", "format": "pem"}
    record = live_record("sys_certificate", row)
    assert record == LiveRecord("sys_certificate", SYS_ID, 7, row) and type(record) is LiveRecord
    attachment = Attachment(SYS_ID, "a.jks", 3, "application/octet-stream")
    views = [
        key_store.live("KeyStore/n", "n", record, (attachment, attachment), "sha256:00"),
        key_store.live("KeyStore/n", "n", record, (), None),
        trust_store_cert.live("TrustStoreCert/n", "n", record, (attachment,), None),
        protocol_profile.live("ProtocolProfile/n", "n", record, {}),
    ]
    for view in views:
        values = [getattr(view, f.name) for f in fields_of(LiveResource)]
        assert view == LiveResource(*values) and type(view) is LiveResource
        assert view.records == {"": record} and view.primary is record
        for made in (view, record):
            assert not hasattr(made, "__dict__")
            with pytest.raises(FrozenInstanceError):
                made.table = "x"  # type: ignore[misc]
    assert views[0].problems == ("2 files are attached; the instance may load any of them",)
    assert views[1].problems == ("no keystore file is attached",) and views[3].info == {}


def _certificate_match_as_before(kind: Any, d: Any, index: Any, owned: Any) -> Any:
    """``CertificateKind.match`` as it was for every spec: the named users and groups each found once, the base's
    match, then the notice's managed fields added to the live view."""
    from mtls_config.resources.certificate import NAMED_LISTS, NOUNS, with_notification
    from mtls_config.resources.kind import Kind, Unresolved, ambiguous

    for field_name, (table, column) in NAMED_LISTS.items():
        for name in d.fields.get(field_name) or ():
            found = index.named(table, column, name)
            if not found:
                return Unresolved(
                    f"expirationNotification names {NOUNS[field_name]} '{name}', which does not exist on the "
                    f"instance ({table}.{column}, compared ignoring case)"
                )
            if len(found) > 1:
                return ambiguous(f"{NOUNS[field_name]}s ({table})", name, found, column)
    found_match = Kind.match(kind, d, index, owned)
    if not isinstance(found_match, LiveResource):
        return found_match
    return with_notification(found_match, d, index.names)


@pytest.mark.parametrize("kind_name", ["KeyStore", "TrustStoreCert"])
@pytest.mark.parametrize(
    "managed",
    [
        {},
        {"notify_on_expiration": ["Alice"]},
        {"notify_on_expiration": ["nobody"]},
        {"notify_groups": ["ops", "OPS"]},
        {"notify_groups": []},
        {"frequency": "daily"},
        {"notify_on_expiration": ["alice"], "notify_groups": ["ops"], "frequency": "weekly"},
    ],
)
@pytest.mark.parametrize("spelling", ["Client", "client", "absent", "twice"])
def test_a_certificate_is_matched_as_before_whatever_its_notice_manages(
    kind_name: str, managed: dict[str, Any], spelling: str
) -> None:
    """A certificate spec that manages none of the notice's lists or frequency is matched as any kind's (issue 18);
    one that does looks its users and groups up and shows them: each as the general path did."""
    from mtls_config.resources.common import desired_resource
    from mtls_config.resources.kind import Index
    from mtls_config.resources.registry import kind_named

    kind = kind_named(kind_name)
    user = live_record("sys_user", {"sys_id": "b" * 32, "user_name": "alice"})
    groups = [live_record("sys_user_group", {"sys_id": c * 32, "name": "ops"}) for c in "cd"]
    rows = {
        "Client": [{"sys_id": SYS_ID, "name": "Client", "frequency": "daily", "notify_on_expiration": "b" * 32}],
        "client": [{"sys_id": SYS_ID, "name": "client", "type": "trust_store", "sys_mod_count": "2"}],
        "absent": [],
        "twice": [{"sys_id": SYS_ID, "name": "Client"}, {"sys_id": "e" * 32, "name": "CLIENT"}],
    }[spelling]
    records = [live_record("sys_certificate", row) for row in rows]
    index = Index(
        {"sys_certificate": records, "sys_user": [user], "sys_user_group": groups},
        {"sys_user": {"b" * 32: "alice"}, "sys_user_group": {"c" * 32: "ops"}},
        {SYS_ID: [Attachment("f" * 32, "c.jks", 3, "application/octet-stream")]},
    )
    fields = {"active": True, **managed}
    d = desired_resource(
        f"{kind_name}/Client", kind_name, "Client", "sys_certificate", fields, False, None, None, (), {}, {}
    )
    assert kind.match(d, index, None) == _certificate_match_as_before(kind, d, index, None)
