"""Parsing JSON that came from outside (the instance's answers, the inventory and lock records it stores, a saved
plan file) with its nesting bounded.

``json.loads`` recurses once per level: an answer nested 100 000 levels deep ends in a ``RecursionError``, which
no caller expects. ``loads`` raises ``ValueError`` instead, as for any other JSON that cannot be used, and also
for nesting deeper than ``max_depth`` that Python could still parse but later stages would recurse through.

The text is read by pydantic-core's JSON reader (jiter), which every command loads anyway with pydantic: it reads
bytes without decoding them to a ``str`` first and makes one string object for repeated short strings (the same
``"true"``, ``"0"`` and table names in every record), where ``json.loads`` made one per occurrence (issue 18: a
third less memory held by a plan's answers, and faster). Whatever it refuses goes to ``json.loads``, which decides
as it always did: the result is ``json.loads``'s for every text (held by a differential test).

Never imports anything of the project.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

from pydantic_core import from_json

_LEAF_TYPES = frozenset({str, int, float, bool, type(None)})  # what JSON makes besides dicts and lists
MAX_DEPTH = 64  # the deepest document the tool reads (a plan) is about 8 levels deep


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``; ``ValueError`` for text that is not JSON or is nested deeper than ``max_depth``."""
    try:
        data = from_json(text, cache_strings=True)
    except ValueError:  # not JSON to jiter (or deeper than its limit, or a BOM, a lone surrogate): json.loads says
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError(f"JSON nested more than {max_depth} levels deep") from None
    if nesting_exceeds(data, max_depth):
        raise ValueError(f"JSON nested more than {max_depth} levels deep")
    return data


def _flat_records(children: Any) -> bool:
    """Whether ``children`` are all dicts of leaves (text, numbers): one level deeper, and no further."""
    return _DICT_ONLY.issuperset(map(type, children)) and _LEAF_TYPES.issuperset(
        map(type, chain.from_iterable(map(dict.values, children)))
    )


_DICT_ONLY = frozenset({dict})


def nesting_exceeds(data: Any, max_depth: int) -> bool:
    """Whether ``data`` (lists and dicts) is nested deeper than ``max_depth``; without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        if _LEAF_TYPES.issuperset(map(type, children)):
            continue  # a record of text and numbers, looked at in one pass (issue 18: 11 000 of them in a plan)
        if depth < max_depth and _flat_records(children):
            continue  # a list of such records (a page of the Table API's answer), looked at in one pass as well
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
