"""Values in a plan read as they would back from JSON: the copy that skips the text round trip must give
exactly what the round trip gives, whatever the diff hands it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mtls_config.plan import _jsonable


def _round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


class Odd:
    def __str__(self) -> str:
        return "odd value"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.just(Odd()),
    st.just(dt.date(2026, 11, 27)),
)
keys = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(st.text(), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(values)
def test_the_copy_reads_as_the_json_round_trip(value: Any) -> None:
    assert _same(_jsonable(value), _round_trip(value))


def test_nested_containers_are_new() -> None:
    inner = {"use_mutual_auth": True, "protocol_name": "p"}
    value = {"message": inner, "functions": {"get": inner}, "list": [inner]}
    copied = _jsonable(value)
    assert copied == value
    copied["message"]["protocol_name"] = "changed"
    assert inner["protocol_name"] == "p"
    assert copied["functions"]["get"]["protocol_name"] == "p"
