"""The diff's shortcuts decide as the slow paths they stand in for: expiry times read as strptime reads them,
and 'identical' means equal with the same types all the way down (where DeepDiff has nothing to report)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from deepdiff import DeepDiff
from hypothesis import given
from hypothesis import strategies as st

from mtls_config.diff import FieldChange, _deep_field_changes, _field_changes, expiry_time, identical


def _strptime(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _two_digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


expiry_like = st.builds(
    lambda y, mo, d, h, mi, s, sep: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}",
    st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    _two_digits(0, 13),
    _two_digits(0, 32),
    _two_digits(0, 25),
    _two_digits(0, 61),
    _two_digits(0, 62),
    st.sampled_from([" ", "  ", "T", "\t"]),
)
odd_text = st.one_of(
    st.text(alphabet="0123456789-: T٣", max_size=22),
    expiry_like.map(lambda t: t.replace("0", "٠")),  # Arabic-Indic zero: a digit to strptime, not to [0-9]
    expiry_like.map(lambda t: " " + t),
    expiry_like.map(lambda t: t + "\n"),
)


@given(st.one_of(expiry_like, odd_text))
def test_expiry_times_read_as_strptime_reads_them(text: str) -> None:
    assert expiry_time(text) == _strptime(text)


def test_the_usual_expiry_text() -> None:
    assert expiry_time("2027-01-31 23:59:59") == dt.datetime(2027, 1, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert expiry_time("2027-02-30 00:00:00") is None


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0, 2.5]), st.text(max_size=2))
fields = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple), st.dictionaries(st.text(max_size=2), inner)
    ),
    max_leaves=12,
)


@given(fields, fields)
def test_identical_is_equal_with_equal_types_all_the_way_down(a: Any, b: Any) -> None:
    assert identical(a, b) == _same(a, b)
    assert identical(a, a)
    if identical(a, b):
        assert not DeepDiff(a, b, ignore_order=False)


def test_a_type_change_inside_is_not_identical() -> None:
    before = {"message": {"use_mutual_auth": True, "protocol_name": "p"}, "port": 443}
    assert identical(before, {"message": {"use_mutual_auth": True, "protocol_name": "p"}, "port": 443})
    assert not identical(before, {"message": {"use_mutual_auth": 1, "protocol_name": "p"}, "port": 443})
    assert not identical(before, {"message": {"use_mutual_auth": True, "protocol_name": "p"}, "port": 443.0})


plain = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=True, width=16), st.sampled_from(["", "a", "b"])
)
flat_fields = st.dictionaries(st.sampled_from(["type", "active", "port", "keystore", "a.b"]), plain, min_size=1)


@given(flat_fields, st.data())
def test_flat_field_changes_are_what_deepdiff_reports(after: dict[str, Any], data: st.DataObject) -> None:
    before = {k: data.draw(st.one_of(st.just(v), plain)) for k, v in after.items() if data.draw(st.booleans())}
    expected = _deep_field_changes({k: before.get(k) for k in after}, after)
    assert repr(_field_changes(before, after)) == repr(expected)


def test_a_field_holding_the_same_nan_is_unchanged_as_deepdiff_says() -> None:
    nan = float("nan")
    before, after = {"weight": nan, "port": 1}, {"weight": nan, "port": 2}
    assert _field_changes(before, after) == _deep_field_changes(before, after) == (FieldChange("port", 1, 2),)
    two = {"weight": float("nan")}, {"weight": float("nan")}  # two NaN objects: changed, to DeepDiff too
    assert repr(_field_changes(*two)) == repr(_deep_field_changes(*two)) == repr((FieldChange("weight", nan, nan),))
