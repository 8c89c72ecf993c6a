"""The no-change fast paths of a plan (issue 18, session 6) decide as the full paths they stand in for.

- ``same_fields`` (one C-level comparison of both sides) says what ``identical`` says;
- a diff whose resources are proved unchanged by it, and whose expiry warnings are ruled out by comparing texts,
  gives the same changes, findings and plan as the field-by-field diff and the expiry read as a time, on every diff
  case (changed and unchanged resources alike);
- ``diff_found`` finds the "exists but not owned" conflicts the engine used to find on a pass of its own.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtls_config import diff as diff_module
from mtls_config.changes import DiffResult
from mtls_config.desired import Desired
from mtls_config.diff import _Expiries, _expiry, diff_found, identical, same_fields
from mtls_config.inventory import Inventory
from mtls_config.live import Live
from mtls_config.plan import make_plan
from mtls_config.resources.common import DesiredResource, LiveResource
from mtls_config.resources.registry import kind_named
from tests.engine.diffcases import CASES, NOW, load_case, states

# -- same_fields ----------------------------------------------------------------------------------------------

plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, 1.0, float("nan")]),
    st.sampled_from(["", "a", "1", "true"]),
    st.lists(st.one_of(st.booleans(), st.integers(0, 1), st.sampled_from(["a", "b"])), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.one_of(st.booleans(), st.integers(0, 1)), max_size=2),
)
columns = st.sampled_from(["active", "port", "type", "notify", "message"])
sides = st.dictionaries(columns, plain, max_size=5)


@given(sides, st.data())
def test_same_fields_is_identical(a: dict[str, Any], data: st.DataObject) -> None:
    # The other side: the same mapping, a copy (in another order, perhaps), or one with some values redrawn.
    choice = data.draw(st.sampled_from(["same", "copy", "reordered", "redrawn"]))
    if choice == "same":
        b = a
    elif choice == "copy":
        b = dict(a)
    elif choice == "reordered":
        b = dict(reversed(list(a.items())))
    else:
        b = {k: data.draw(st.one_of(st.just(v), plain)) for k, v in a.items() if data.draw(st.booleans())}
    assert same_fields(a, b) == identical(dict(a), dict(b))


def test_same_fields_tells_types_apart() -> None:
    assert same_fields({"active": True, "port": 443}, {"active": True, "port": 443})
    assert not same_fields({"active": True}, {"active": 1})  # equal, but not the same type
    assert not same_fields({"port": 443}, {"port": 443.0})
    assert not same_fields({"names": [1]}, {"names": [True]})  # inside a list too
    assert not same_fields({"a": 1}, {"a": 1, "b": None})
    nan = float("nan")
    assert not same_fields({"weight": nan}, {"weight": nan})  # as identical: a NaN is not equal to itself


# -- the expiry warnings -------------------------------------------------------------------------------------

_CERT = "TrustStoreCert"


def _resource(expires: str, warn_days: int) -> DesiredResource:
    kind = kind_named(_CERT)
    return DesiredResource(f"{_CERT}/c", _CERT, "c", kind.table, {}, info={"expires": expires, "warn_days": warn_days})


times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))


@given(times, st.integers(-3, 400), st.integers(-5, 5), st.sampled_from(["exact", "moved", "odd", "invalid"]))
def test_expiry_warnings_as_read_as_times(now: dt.datetime, warn_days: int, seconds: int, form: str) -> None:
    # Around the moment a warning starts (and everywhere else): the text comparison must not say less.
    when = now + dt.timedelta(days=warn_days, seconds=seconds)
    if form == "moved":
        when = now + dt.timedelta(days=warn_days * 3 - 40, seconds=seconds)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if form == "odd":
        text = text.replace(" ", "T")  # read by strptime or not at all: the slow path
    elif form == "invalid":
        text = text[:5] + "13" + text[7:]  # month 13: no time, no warning
    d = _resource(text, warn_days)
    assert _Expiries(now).of(d, None) == _expiry(d, None, now)


def test_an_expiry_a_second_after_the_warning_starts_says_nothing() -> None:
    now = dt.datetime(2026, 11, 27, 12, 0, 0, 500_000, tzinfo=dt.UTC)
    later = _resource("2026-12-27 12:00:01", 30)
    at = _resource("2026-12-27 12:00:00", 30)  # within 30 days by half a second
    assert _Expiries(now).of(later, None) == _expiry(later, None, now) == []
    found = _Expiries(now).of(at, None)
    assert found == _expiry(at, None, now) and found and "within warnDays 30" in found[0].message


# -- the whole diff, fast paths against full paths -----------------------------------------------------------


def _found_not_owned(desired: Desired, live: Live) -> set[str]:
    """The engine's pass before ``diff_found`` (main before issue 18, session 6)."""
    found: set[str] = set()
    for d in desired.resources:
        current = live.resources.get(d.address)
        if current is None or d.adopt or kind_named(d.kind).takes_over:
            continue
        owned = live.owned(d.address)
        primary = current.primary
        here = primary is not None and owned is not None and any(r.sys_id == primary.sys_id for r in owned.records)
        if not here:
            found.add(d.address)
    return found


def _full_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """No resource proved unchanged in one comparison, no expiry ruled out by its text."""
    monkeypatch.setattr(diff_module, "same_fields", lambda a, b: False)
    monkeypatch.setattr(_Expiries, "_quiet_after", lambda self, warn_days: None)


def _shown(result: DiffResult) -> str:
    return repr(result)


def _plan_json(result: DiffResult) -> str:
    plan = make_plan(
        result, instance="i", stack="t", spec_digest="sha256:test", inventory_sys_id=None,
        inventory_mod_count=None, inventory_generation=0, prune=False, now=NOW,
    )  # fmt: skip
    return plan.to_json()


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_the_fast_paths_diff_and_plan_as_the_full_ones(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = load_case(path)
    desired, live = states(case)
    prune = bool(case.get("prune", False))
    fast, found = diff_found(desired, live, prune=prune, now=NOW)
    assert found == _found_not_owned(desired, live)
    with monkeypatch.context() as patched:
        _full_paths(patched)
        full, found_full = diff_found(desired, live, prune=prune, now=NOW)
    assert found_full == found
    assert _shown(fast) == _shown(full)
    assert _plan_json(fast) == _plan_json(full)
    for a, b in zip(fast.changes, full.changes, strict=True):
        # Both sides of an unchanged resource are one mapping in the fast path; the full path's are equal copies.
        assert a.before == b.before and a.after == b.after
        assert b.before is None or b.before is not b.after


def test_the_cases_hold_unchanged_and_changed_resources() -> None:
    """The differential test above means something: unchanged resources take the fast path, changed ones not."""
    shared = changed = 0
    for path in sorted(CASES.glob("*.json")):
        desired, live = states(load_case(path))
        for c in diff_found(desired, live, now=NOW)[0].changes:
            shared += c.before is not None and c.before is c.after
            changed += c.action != "no-op"
    assert shared >= 5 and changed >= 10


def test_an_unchanged_resource_shares_one_mapping_only_in_the_same_order() -> None:
    kind = kind_named("ProtocolProfile")
    fields = {"name": "p", "active": True}
    d = DesiredResource("ProtocolProfile/p", "ProtocolProfile", "p", kind.table, fields)
    for live_fields, shared in ((dict(fields), True), (dict(reversed(list(fields.items()))), False)):
        current = LiveResource(d.address, d.kind, d.name, d.table, {}, live_fields)
        change, _ = diff_module._compare(d, kind, current, Live("t", Inventory(stack="t"), None, None, {}), True, None)
        assert change.action == "no-op" and change.fields == ()
        assert (change.before is change.after) == shared
        assert json.dumps(change.before) == json.dumps(live_fields)


def _contents(desired: Desired, live: Live) -> Any:
    return (
        [(dict(d.fields), dict(d.info)) for d in desired.resources],
        {a: (dict(r.fields), dict(r.info)) for a, r in live.resources.items()},
    )


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_a_plan_shares_no_mapping_with_the_states_it_compares(path: Path) -> None:
    """The diff compares the live view's fields and the desired state's as they are, without copying them first: a
    change holds a copy of a live view's fields (and the live view's own information, which nothing changes), and a
    plan copies whatever its entries hold, so emptying every entry's sides and information leaves both states as
    they were."""
    case = load_case(path)
    desired, live = states(case)
    shown = {"subject": "CN=x", "expires": "2099-01-01 00:00:00"}  # what a certificate record's view shows
    live = replace(live, resources={a: replace(r, info=dict(shown)) for a, r in live.resources.items()})
    kept = copy.deepcopy(_contents(desired, live))
    result, _ = diff_found(desired, live, prune=bool(case.get("prune", False)), now=NOW)
    live_fields = {id(r.fields) for r in live.resources.values()}
    assert not any(id(c.before) in live_fields or id(c.after) in live_fields for c in result.changes)
    plan = make_plan(
        result, instance="i", stack="t", spec_digest="sha256:test", inventory_sys_id=None,
        inventory_mod_count=None, inventory_generation=0, prune=False, now=NOW,
    )  # fmt: skip
    for entry in plan.resource_changes:
        for side in (entry.before, entry.after, entry.info):
            if side is not None:
                side.clear()
    assert _contents(desired, live) == kept
