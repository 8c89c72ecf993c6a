"""A page of records is checked column by column (``check_records``'s fast path): it must pass exactly the pages
the record-by-record check passes, and refuse the others with the same words."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtls_config.client.answers import _plain_page, check_record, check_records
from mtls_config.errors import BadResponse

HEX32 = "0123456789abcdefABCDEF0123456789"

values = st.one_of(
    st.sampled_from(
        [
            HEX32,
            "f" * 32,
            "",
            "0",
            "12",
            "9" * 18,
            "9" * 19,
            "1e999",
            "-1",
            HEX32 + "\n",  # passes the record check (its regex's $ takes a final newline): not vouched for in bulk
            HEX32[:31],
            "g" * 32,
            "٣",
            "../../sys_user",
            "x",
        ]
    ),
    st.none(),
    st.integers(-2, 2),
    st.booleans(),
    st.just(1.5),
    st.just([]),
    st.just({"value": HEX32, "link": "x"}),
    st.just({"value": {"nested": "x"}}),
)
names = st.sampled_from(["sys_id", "table_sys_id", "sys_mod_count", "size_bytes", "name", "sys_idx"])
rows = st.one_of(st.dictionaries(names, values, max_size=6), st.just("not a record"), st.just(None))


def _outcome(check: Any, page: list[Any]) -> Any:
    try:
        return check(page)
    except BadResponse as exc:
        return ("refused", str(exc), exc.hint)


@settings(max_examples=600)
@given(st.lists(rows, max_size=6))
def test_a_page_is_checked_in_bulk_as_record_by_record(page: list[Any]) -> None:
    by_record = _outcome(lambda p: [check_record(row, "table.list") for row in p], page)
    assert _outcome(lambda p: check_records(p, "table.list"), page) == by_record


def test_a_page_of_plain_records_is_vouched_for_in_bulk() -> None:
    page = [
        {"sys_id": HEX32, "sys_mod_count": "3", "name": "a", "parent_sys_id": ""},
        {"sys_id": "f" * 32, "sys_mod_count": "", "name": "b", "parent_sys_id": HEX32},
        {"sys_id": "e" * 32, "name": "c"},
    ]
    assert _plain_page(page)
    assert check_records(page, "table.list") is page  # the page itself, not a copy


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("sys_id", "../../sys_user" + "0" * 18, "not 32 hex characters"),
        ("table_sys_id", "g" * 32, "not 32 hex characters"),
        ("sys_mod_count", "1e999", "not a whole number"),
        ("size_bytes", "9" * 19, "not a whole number"),
    ],
)
def test_one_bad_value_in_a_large_page_is_named(field: str, value: str, words: str) -> None:
    page = [{"sys_id": f"{n:032x}", "sys_mod_count": "1", "table_sys_id": "", "size_bytes": "0"} for n in range(500)]
    page[377] = {**page[377], field: value}
    assert not _plain_page(page)
    with pytest.raises(BadResponse, match=f"table.list: the instance answered {field} .*{words}"):
        check_records(page, "table.list")
