"""ServiceNow encoded queries: parse ``sysparm_query`` and test records against it.

``a=1^ORb=2^c=3`` means ``(a=1 OR b=2) AND c=3``; ``^NQ`` starts a new query OR'ed with the previous ones;
``ORDERBYf`` / ``ORDERBYDESCf`` sort. A part whose field or operator is unknown is *invalid*: the instance
ignores it (the rest still runs) unless ``glide.invalid_query.returns_no_rows`` is set, and so do we. Text is
compared case-insensitively, as the instance's database collation does (``servicenow-facts-2.md`` §7), unless the
caller asks otherwise. ``=NULL`` / ``!=NULL`` test for an empty / a non-empty value (tsnow's dictionary query,
facts-2 §8).

Pure functions over strings. Must never import: starlette, the backend, the client, the engine.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

# Longest first where one operator is a prefix of another.
OPERATORS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "ANYTHING",
    "EMPTYSTRING",
    "NOT LIKE",
    "NOT IN",
    "NSAMEAS",
    "SAMEAS",
    "STARTSWITH",
    "ENDSWITH",
    "BETWEEN",
    "LIKE",
    "IN",
    "!=",
    "<=",
    ">=",
    "=",
    "<",
    ">",
)
_CONDITION = re.compile(
    r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)(" + "|".join(re.escape(o) for o in OPERATORS) + r")(.*)", re.S
)
_VALUELESS = frozenset({"ISNOTEMPTY", "ISEMPTY", "ANYTHING", "EMPTYSTRING"})
R = TypeVar("R", bound=Mapping[str, str])
_IN_LIST = re.compile(r"(?:OR)?[a-z_][a-z0-9_.]*(?:NOT )?IN(.*)", re.S)


@dataclass(frozen=True)
class Condition:
    field: str  # may be dot-walked: keystore.name
    operator: str
    value: str
    # IN / NOT IN: the list as a set, split once rather than per record
    members: frozenset[str] = dataclasses.field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool


@dataclass(frozen=True)
class EncodedQuery:
    # OR of queries (^NQ); each an AND of clauses (^); each clause an OR of conditions (^OR)
    queries: tuple[tuple[tuple[Condition, ...], ...], ...] = ()
    order: tuple[Order, ...] = ()
    invalid_parts: tuple[str, ...] = ()
    ignore_case: bool = True  # the conditions' values are already case-folded when set

    def matches(self, get: Callable[[str], str]) -> bool:
        """Whether the record whose field values ``get`` returns satisfies the query (no conditions: all do)."""
        if not self.queries:
            return True
        fold = str.casefold if self.ignore_case else _same
        return any(all(any(_test(c, get, fold) for c in clause) for clause in query) for query in self.queries)

    def narrowed(self, rows: Sequence[R]) -> Sequence[R]:
        """``rows`` less those a condition every match needs rules out at once: with one query (no ``^NQ``), a
        clause of one ``=``, ``IN`` or ``STARTSWITH`` on a field not dot-walked, whose stored value is
        ``row.get(field, "")``. Only a quicker way to the same result: what ``matches`` then says of the rows
        left is the answer. The engine's reads (``nameIN...``, ``nameSTARTSWITH...``) cost the emulator the rows
        they name, not one test of every condition on each row of the table."""
        if len(self.queries) != 1:
            return rows
        for clause in self.queries[0]:
            if len(clause) != 1:
                continue
            (c,) = clause
            field, want = c.field, c.value
            if "." in field or c.operator not in ("=", "IN", "STARTSWITH"):
                continue
            fold = str.casefold if self.ignore_case else _same
            if c.operator == "STARTSWITH":
                return [r for r in rows if fold(r.get(field, "")).startswith(want)]
            wanted = c.members if c.operator == "IN" else frozenset((want,))
            return [r for r in rows if fold(r.get(field, "")) in wanted]
        return rows


def _same(text: str) -> str:
    return text


FieldCheck = Callable[[str], bool]


@dataclass(frozen=True)
class QueryLimits:
    """How much one query may ask of the emulator: its cost grows with terms x rows."""

    terms: int = 1000  # conditions and ORDERBYs
    groups: int = 100  # ^NQ groups
    in_members: int = 10_000  # values of one IN / NOT IN list


class QueryTooComplex(ValueError):
    """A query over the limits; the message says which and by how much."""


def parse(
    text: str, is_valid_field: FieldCheck, *, ignore_case: bool = True, limits: QueryLimits | None = None
) -> EncodedQuery:
    """Parse an encoded query; ``is_valid_field`` says whether a (possibly dot-walked) field exists.
    Raises QueryTooComplex when ``limits`` are given and the query exceeds them."""
    if limits is not None:
        _check(text, limits)
    queries: list[tuple[tuple[Condition, ...], ...]] = []
    order: list[Order] = []
    invalid: list[str] = []
    for query_text in text.split("^NQ"):
        clauses: list[list[Condition]] = []
        for part in query_text.split("^"):
            if not part or part == "EQ":
                continue
            if part.startswith("ORDERBYDESC"):
                order.append(Order(part[len("ORDERBYDESC") :], True))
                continue
            if part.startswith("ORDERBY"):
                order.append(Order(part[len("ORDERBY") :], False))
                continue
            if part.startswith("GROUPBY"):
                continue
            is_or = part.startswith("OR") and bool(clauses)
            condition = _condition(part[2:] if is_or else part, is_valid_field, ignore_case)
            if condition is None:
                invalid.append(part)
                continue
            if is_or:
                clauses[-1].append(condition)
            else:
                clauses.append([condition])
        if clauses:
            queries.append(tuple(tuple(c) for c in clauses))
    valid_order = tuple(o for o in order if is_valid_field(o.field))
    return EncodedQuery(tuple(queries), valid_order, tuple(invalid), ignore_case)


def _check(text: str, limits: QueryLimits) -> None:
    """Counted on the text before any parsing, so that an oversized query costs no more than its reading."""
    groups = text.count("^NQ") + 1
    if groups > limits.groups:
        raise QueryTooComplex(f"the query has {groups} ^NQ groups; at most {limits.groups} are allowed")
    terms = text.count("^") - text.count("^NQ") + groups
    if terms > limits.terms:
        raise QueryTooComplex(f"the query has {terms} terms; at most {limits.terms} are allowed")
    for part in text.split("^"):
        match = _IN_LIST.match(part)
        if match is not None and match.group(1).count(",") + 1 > limits.in_members:
            members = match.group(1).count(",") + 1
            raise QueryTooComplex(f"an IN list has {members} values; at most {limits.in_members} are allowed")


def _condition(text: str, is_valid_field: FieldCheck, ignore_case: bool) -> Condition | None:
    match = _CONDITION.fullmatch(text)
    if match is None:
        return None
    name, operator, value = match.groups()
    if not is_valid_field(name):
        return None
    if operator in ("=", "!=") and value == "NULL":
        operator, value = ("ISEMPTY" if operator == "=" else "ISNOTEMPTY"), ""
    if operator in _VALUELESS:
        value = ""
    if ignore_case and operator not in ("SAMEAS", "NSAMEAS"):  # those name a field, not a value
        value = value.casefold()
    members = frozenset(value.split(",")) if operator in ("IN", "NOT IN") else frozenset()
    return Condition(name, operator, value, members)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(left: str, right: str) -> int:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def _test(c: Condition, get: Callable[[str], str], fold: Callable[[str], str]) -> bool:
    op, want = c.operator, c.value
    if op == "ANYTHING":
        return True
    have = get(c.field)
    if op in ("ISEMPTY", "EMPTYSTRING"):
        return have == ""
    if op == "ISNOTEMPTY":
        return have != ""
    if op == "SAMEAS":
        return fold(have) == fold(get(want))
    if op == "NSAMEAS":
        return fold(have) != fold(get(want))
    text = fold(have)  # ``want`` was folded when the query was parsed
    if op == "=":
        return text == want
    if op == "!=":
        return text != want
    if op == "IN":
        return text in c.members
    if op == "NOT IN":
        return text not in c.members
    if op == "LIKE":
        return want in text
    if op == "NOT LIKE":
        return want not in text
    if op == "STARTSWITH":
        return text.startswith(want)
    if op == "ENDSWITH":
        return text.endswith(want)
    if have == "":  # an empty value is NULL in the database: never less or greater than anything
        return False
    if op == "BETWEEN":
        low, _, high = want.partition("@")
        return _compare(text, low) >= 0 and _compare(text, high) <= 0
    cmp = _compare(text, want)
    return {"<": cmp < 0, "<=": cmp <= 0, ">": cmp > 0, ">=": cmp >= 0}[op]
