"""ServiceNow encoded queries: parse ``sysparm_query`` and test records against it.

``a=1^ORb=2^c=3`` means ``(a=1 OR b=2) AND c=3``; ``^NQ`` starts a new query OR'ed with the previous ones;
``ORDERBYf`` / ``ORDERBYDESCf`` sort. A part whose field or operator is unknown is *invalid*: the instance
ignores it (the rest still runs) unless ``glide.invalid_query.returns_no_rows`` is set, and so do we.

Pure functions over strings. Must never import: starlette, the backend, the client, the engine.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

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

    def matches(self, get: Callable[[str], str]) -> bool:
        """Whether the record whose field values ``get`` returns satisfies the query (no conditions: all do)."""
        if not self.queries:
            return True
        return any(all(any(_test(c, get) for c in clause) for clause in query) for query in self.queries)


FieldCheck = Callable[[str], bool]


def parse(text: str, is_valid_field: FieldCheck) -> EncodedQuery:
    """Parse an encoded query; ``is_valid_field`` says whether a (possibly dot-walked) field exists."""
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
            condition = _condition(part[2:] if is_or else part, is_valid_field)
            if condition is None:
                invalid.append(part)
                continue
            if is_or:
                clauses[-1].append(condition)
            else:
                clauses.append([condition])
        if clauses:
            queries.append(tuple(tuple(c) for c in clauses))
    return EncodedQuery(tuple(queries), tuple(o for o in order if is_valid_field(o.field)), tuple(invalid))


def _condition(text: str, is_valid_field: FieldCheck) -> Condition | None:
    match = _CONDITION.fullmatch(text)
    if match is None:
        return None
    name, operator, value = match.groups()
    if not is_valid_field(name):
        return None
    if operator in _VALUELESS:
        value = ""
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


def _test(c: Condition, get: Callable[[str], str]) -> bool:
    op, want = c.operator, c.value
    if op == "ANYTHING":
        return True
    have = get(c.field)
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    if op in ("ISEMPTY", "EMPTYSTRING"):
        return have == ""
    if op == "ISNOTEMPTY":
        return have != ""
    if op == "IN":
        return have in c.members
    if op == "NOT IN":
        return have not in c.members
    # LIKE and friends are case-insensitive, as on the instance's database collation
    if op == "LIKE":
        return want.lower() in have.lower()
    if op == "NOT LIKE":
        return want.lower() not in have.lower()
    if op == "STARTSWITH":
        return have.lower().startswith(want.lower())
    if op == "ENDSWITH":
        return have.lower().endswith(want.lower())
    if op == "SAMEAS":
        return have == get(want)
    if op == "NSAMEAS":
        return have != get(want)
    if have == "":  # an empty value is NULL in the database: never less or greater than anything
        return False
    if op == "BETWEEN":
        low, _, high = want.partition("@")
        return _compare(have, low) >= 0 and _compare(have, high) <= 0
    cmp = _compare(have, want)
    return {"<": cmp < 0, "<=": cmp <= 0, ">": cmp > 0, ">=": cmp >= 0}[op]
