"""Spec files are composed by libyaml when PyYAML has it, and by the pure-Python parser when libyaml refuses a
file. The two must agree on every file libyaml accepts: same nodes, tags, values and positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mtls_config.spec import yamlsource
from mtls_config.spec.yamlsource import FAST_LOADER, _compose_all

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(
    [
        *(REPO / "tests" / "cases" / "spec_errors").rglob("*.yaml"),
        *(REPO / "specs").rglob("*.yaml"),
        *(REPO / "docs").rglob("*.yaml"),
    ]
)
EDGES = [
    "a: b\x07c\n",  # control characters
    "a: b\x85c\n",
    "a: b\u2028c\n",
    "a: \ufeffb\n",
    "a: !!python/object:os.system x\n",
    "a: &x [1]\nb: *x\n",
    "? [a]\n: b\n",
    "a: 'x\ty'\n",
    "a: \U0001f600\n",
    "%YAML 1.1\n---\na: b\n",
    "%YAML 1.3\n---\na: b\n",  # libyaml refuses, Python accepts: the fallback keeps Python's answer
    "a: b\r\nc: d\r\n",
    "a: b\rc: d\r",
    "a:\n  - 1\n  -\n    - 2\n",
    "---\n...\n---\na: 1\n",
    # the same plain text again, quoted, tagged, as a key, in flow and in later documents: a plain scalar's tag is
    # resolved once per file (FAST_LOADER), every other node as PyYAML does
    "1: 1\n'1': '1'\nx: [1, '1', !!str 1, yes, 'yes', ~, '', null]\ny: {1: 1, yes: no}\nz: 1\n---\n- 1\n- yes\n- !!int '1'\n",
]


def _shape(node: yaml.Node | None, seen: dict[int, int] | None = None) -> Any:
    """The node tree as plain values; a node met again (an alias) by the order it was first met, so that an
    alias bomb stays small."""
    if node is None:
        return None
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    where = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value, where)  # the style is not used (plain is "" or None depending on the parser)
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, [_shape(item, seen) for item in node.value], where)
    assert isinstance(node, yaml.MappingNode)
    return (node.tag, [(_shape(k, seen), _shape(v, seen)) for k, v in node.value], where)


def _compose(text: str, loader: Any) -> Any:
    try:
        return [_shape(node) for node in _compose_all(text, loader)]
    except yaml.YAMLError:
        return "refused"


@pytest.mark.parametrize("text", [*EDGES, *(p.read_text(encoding="utf-8", errors="replace") for p in FILES)])
def test_libyaml_agrees_with_the_pure_python_parser_whenever_it_accepts(text: str) -> None:
    if FAST_LOADER is None:
        pytest.skip("this PyYAML has no libyaml")
    fast = _compose(text, FAST_LOADER)
    if fast != "refused":
        assert fast == _compose(text, yaml.SafeLoader)


def test_the_fast_loader_may_skip_path_resolvers_because_the_safe_loaders_have_none() -> None:
    # FAST_LOADER resolves a plain scalar's tag from its text alone and keeps no resolver path: true while neither
    # PyYAML's safe loaders nor ours have path resolvers (yaml.add_path_resolver would add them)
    if FAST_LOADER is None:
        pytest.skip("this PyYAML has no libyaml")
    assert FAST_LOADER.yaml_path_resolvers == yaml.SafeLoader.yaml_path_resolvers == {}
    assert issubclass(FAST_LOADER, yaml.CSafeLoader)


def test_the_corpus_was_found() -> None:
    assert len(FILES) > 50


SCALARS = (
    "plain: text\nquoted: '1'\ndouble: \"yes\"\ntagged: !!str 5\nbare_tag: ! 7\nint: 12\nhex: 0x1f\nbool: yes\n"
    "switch: Off\nnothing: ~\nempty:\nfloat: 1.5e3\ninf: .inf\ndate: 2020-01-02\nstamp: 2020-01-02T03:04:05Z\n"
    "block: |\n  two\n  lines\nfolded: >\n  one\n  line\nanchor: &a shared\nalias: *a\nkey 1: v\n"
    "list: [a, 1, 'b', !!str 2, null]\nnested: {x: {y: [z, 3]}}\ncustom: !thing kept\n"
)


@pytest.mark.parametrize("loader", ["fast", "python"])
def test_converted_values_are_what_pyyaml_safe_load_makes(
    tmp_path: Path, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converter takes strings straight from their nodes (a speed-up for issue 18): every scalar, quoted,
    tagged, aliased or not, still comes out as PyYAML's own safe constructor makes it, with its key's mark."""
    if loader == "fast" and FAST_LOADER is None:
        pytest.skip("this PyYAML has no libyaml")
    if loader == "python":
        monkeypatch.setattr(yamlsource, "FAST_LOADER", None)
    path = tmp_path / "values.yaml"
    path.write_text(SCALARS, encoding="utf-8")
    docs, problems = yamlsource.read_documents(path, "values.yaml")
    assert problems == []
    (doc,) = docs
    expected = yaml.load(SCALARS.replace("custom: !thing kept\n", "custom: kept\n"), Loader=yaml.SafeLoader)
    assert doc.data == expected
    assert [type(v) for v in doc.data.values()] == [type(v) for v in expected.values()]
    assert doc.data["tagged"] == "5" and doc.data["quoted"] == "1" and doc.data["alias"] == "shared"
    assert doc.marks[("tagged",)] == yamlsource.Mark(4, 1)
    assert doc.marks[("list", 3)] == yamlsource.Mark(25, 19)
    assert doc.marks[("nested", "x", "y")] == yamlsource.Mark(26, 14)
