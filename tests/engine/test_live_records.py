"""A row read from the instance becomes a record of text: a row all of text is held as it is (not copied: a plan
holds one per resource), any other is converted (a reference object to its sys_id, null to "")."""

from __future__ import annotations

import pytest

from mtls_config.errors import BadResponse
from mtls_config.reads import live_record

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
