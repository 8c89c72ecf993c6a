"""``jsontext.nesting_exceeds`` skips, in one pass, containers that hold only scalars (issue 18: most of a plan's
answers are records of text). It must still say exactly what a plain recursive walk says, at every depth limit
and for every shape: held here against such a walk on random trees and on edge shapes."""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from typing import Any

import pytest

from mtls_config.jsontext import loads, nesting_exceeds


def _depth(value: Any) -> int:
    """Nesting depth as the recursive definition has it: a container is 1 deeper than its deepest child."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _tree(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 9 or roll < 0.3:
        return rng.choice(["text", "", 0, -3, 1.5, True, False, None])
    size = rng.randint(0, 4)
    if roll < 0.65:
        return {f"k{i}": _tree(rng, depth + 1) for i in range(size)}
    return [_tree(rng, depth + 1) for _ in range(size)]


def test_random_trees_agree_with_a_recursive_walk_at_every_limit() -> None:
    rng = random.Random(18)
    seen_depths = set()
    for _ in range(400):
        tree = _tree(rng, 0)
        depth = _depth(tree)
        seen_depths.add(depth)
        for limit in range(0, 12):
            assert nesting_exceeds(tree, limit) is (depth > limit), (tree, limit)
    assert {0, 1, 2, 5, 8} <= seen_depths


@pytest.mark.parametrize(
    ("data", "depth"),
    [
        ({}, 1),
        ([], 1),
        ({"a": "b", "n": 1, "x": None}, 1),  # a record: scalars only
        ([{"a": "b"}, {"a": {"value": "v"}}], 3),  # a reference field one record down
        ([{"a": "b"}] * 3 + [[[[]]]], 4),  # the deep part after many flat ones
        ({"a": OrderedDict(b=[1])}, 3),  # subclasses are containers too
        (OrderedDict(a="b"), 1),
        ([1, 2, ["x", ["y"]]], 3),
        ([{"a": "b"}, {"n": 1, "x": None}, {}], 2),  # a page of records: looked at in one pass
        ({"result": [{"a": "b"}, {"c": True}]}, 3),  # an answer of the Table API
        ([{"a": "b"}, {"a": []}], 3),  # one record not flat
        ([{"a": "b"}, OrderedDict(a="b")], 2),  # a subclass among the records
        ([{"a": "b"}, "text"], 2),  # a record beside a scalar
    ],
)
def test_edge_shapes(data: Any, depth: int) -> None:
    assert _depth(data) == depth
    assert nesting_exceeds(data, depth) is False
    assert nesting_exceeds(data, depth - 1) is True


def test_loads_refuses_deep_json_and_reads_records() -> None:
    records = {"result": [{"sys_id": f"{i:032x}", "name": f"n{i}", "ref": {"value": "v"}} for i in range(50)]}
    assert loads(json.dumps(records), max_depth=4) == records
    with pytest.raises(ValueError, match="nested more than 3 levels deep"):
        loads(json.dumps(records), max_depth=3)
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        loads("[" * 100_000 + "]" * 100_000)


def _outcome(read: Any, text: str | bytes) -> tuple[str, str]:
    try:
        data = read(text)
    except RecursionError:
        return ("error", "")
    except ValueError:
        return ("error", "")
    return ("ok", repr(data))  # repr: types, key order, -0.0 and nan as they are


def _text(rng: random.Random) -> str:
    """JSON as an instance could send it, and as it could come broken: escapes, surrogates (paired and lone),
    numbers of every form, repeated keys, then sometimes a byte cut out or put in."""
    atoms = [
        '"plain"', '""', '"\\u00e9\\ud83d\\ude00"', '"\\ud800"', '"tab\\there"', '"\\u0000"', '"é ü 漢"', "0", "-0",
        "-0.0", "1e400", "-1E-400", "0.1", "123456789012345678901234567890", "1.5e3", "NaN", "Infinity", "true",
        "false", "null", "01", ".5", "1.", '"\\x41"',
    ]  # fmt: skip

    def value(depth: int) -> str:
        roll = rng.random()
        if depth > 4 or roll < 0.4:
            return rng.choice(atoms)
        if roll < 0.75:
            keys = [rng.choice(["a", "b", "sys_id", "é"]) for _ in range(rng.randint(0, 4))]  # repeats on purpose
            return "{" + ",".join(f'"{k}": {value(depth + 1)}' for k in keys) + "}"
        return "[" + ", ".join(value(depth + 1) for _ in range(rng.randint(0, 4))) + "]"

    text = value(0)
    if rng.random() < 0.3 and text:
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(["", ",", "}", "\n", '"', "\ufeff"]) + text[cut + 1 :]
    return text


def test_loads_reads_every_text_as_json_loads_does() -> None:
    """jiter reads first, ``json.loads`` decides whatever jiter refuses: the outcome is json.loads's, text or bytes
    (in UTF-8, with a BOM, or not UTF-8 at all)."""
    rng = random.Random(1818)
    for _ in range(3000):
        text = _text(rng)
        for given in (text, text.encode("utf-8", "surrogatepass"), b"\xef\xbb\xbf" + text.encode("utf-8", "replace")):
            assert _outcome(lambda t: loads(t, max_depth=10_000), given) == _outcome(json.loads, given), given


def test_repeated_short_strings_are_one_object() -> None:
    rows = loads(json.dumps({"result": [{"active": "true", "table": "sys_certificate"} for _ in range(3)]}).encode())
    assert len({id(row["active"]) for row in rows["result"]}) == 1
    assert len({id(row["table"]) for row in rows["result"]}) == 1
