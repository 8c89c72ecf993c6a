"""Values in a plan read as they would back from JSON: the copy that skips the text round trip must give
exactly what the round trip gives, whatever the diff hands it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mtls_config.changes import Change, FieldChange, Fingerprint
from mtls_config.diff import identical
from mtls_config.plan import LiveFingerprint, PlannedField, ResourceChange, _jsonable, _resource_change
from mtls_config.resources.registry import kind_named


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


def _entry_as_model_construct_made_it(c: Change) -> ResourceChange:
    """The plan's entry for ``c`` as ``_resource_change`` made it before it built models itself (issue 18)."""
    sensitive = {f.field: True for f in c.fields if f.sensitive}
    for name in kind_named(c.kind).sensitive:
        sensitive[name] = True
    before = _jsonable(dict(c.before)) if c.before is not None else None
    after = _jsonable(dict(c.after)) if c.after is not None else None
    if before is not None and after is not None and list(before) == list(after) and identical(before, after):
        after = before
    return ResourceChange.model_construct(
        set(ResourceChange.model_fields),
        address=c.address,
        kind=c.kind,
        name=c.name,
        table=c.table,
        action=c.action,
        reason=c.reason,
        importing=c.importing,
        changed_fields=[
            PlannedField(field=f.field, before="(sensitive)", after="(sensitive)", sensitive=True)
            if f.sensitive
            else PlannedField(field=f.field, before=_jsonable(f.before), after=_jsonable(f.after))
            for f in c.fields
        ],
        before=before,
        after=after,
        before_sensitive=sensitive if c.before is not None else {},
        after_sensitive=sensitive if c.after is not None else {},
        info={k: v for k, v in sorted(c.info.items()) if k != "pem_text"},
        live=[
            LiveFingerprint.model_construct(
                set(LiveFingerprint.model_fields),
                part=f.part,
                table=f.table,
                sys_id=f.sys_id,
                sys_mod_count=f.mod_count,
            )
            for f in c.live
        ],
        depends_on=list(c.depends_on),
    )


sides = st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3))


@given(
    st.sampled_from(["create", "update", "no-op", "delete", "replace"]),
    sides,
    sides,
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(["a", "password"]), values, values, st.booleans()), max_size=2),
    st.dictionaries(st.sampled_from(["expires", "pem_text", "subject"]), st.text(), max_size=2),
)
def test_a_plan_entry_is_the_model_construct_made(
    action: Any, before: Any, after: Any, same: bool, fields: list[Any], info: dict[str, Any]
) -> None:
    if same and before is not None:
        # an unchanged resource: the same values on both sides, in one mapping as the diff gives them, or in two
        after = before if action == "no-op" else dict(before)
    change = Change(
        "KeyStore/k", "KeyStore", "k", "sys_certificate", action, "why",
        tuple(FieldChange(*f) for f in fields), before, after, info,
        (Fingerprint("", "sys_certificate", "0" * 32, 3),), False, ("TrustStoreCert/t",),
    )  # fmt: skip
    made, expected = _resource_change(change), _entry_as_model_construct_made_it(change)
    assert made == expected
    assert list(vars(made)) == list(vars(expected))
    assert made.model_fields_set == expected.model_fields_set
    assert made.__pydantic_extra__ is expected.__pydantic_extra__ is None
    assert made.__pydantic_private__ is expected.__pydantic_private__ is None
    assert (made.before is made.after) == (expected.before is expected.after)
    assert made.before is None or made.before is not change.before  # new containers: the plan shares none
    assert made.after is None or made.after is not change.after
    assert made.live[0] == expected.live[0] and made.live[0].model_fields_set == expected.live[0].model_fields_set
    for ours, theirs in zip(made.changed_fields, expected.changed_fields, strict=True):
        assert list(vars(ours)) == list(vars(theirs)) and ours.model_fields_set == theirs.model_fields_set
        assert (ours.instance, ours.spec) == (theirs.instance, theirs.spec)
    text = json.dumps(made.model_dump(mode="json"), sort_keys=True, default=str)
    assert text == json.dumps(expected.model_dump(mode="json"), sort_keys=True, default=str)
