"""Spec files in the plain subset of YAML are read line by line (``simpleyaml``), without composing nodes (a
speed-up for issue 18). Whatever that reader accepts it must read exactly as the YAML path does: the same
documents, indexes, values of the same types, and marks for the same paths; everything else it must leave to the
YAML path (which then says what is wrong, as before)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.stacks import write_stack
from mtls_config.spec import yamlsource
from mtls_config.spec.simpleyaml import _Reader, read_simple
from mtls_config.spec.yamlsource import FAST_LOADER, MAX_NODES, LazyMarks, Mark

REPO = Path(__file__).resolve().parents[1]
CORPUS = sorted(
    [
        *(REPO / "tests" / "cases").rglob("*.yaml"),
        *(REPO / "specs").rglob("*.yaml"),
        *(REPO / "docs").rglob("*.yaml"),
    ]
)
LOADERS = [yaml.SafeLoader, *([FAST_LOADER] if FAST_LOADER is not None else [])]


def _typed(value: Any) -> Any:
    """The value with every scalar's type beside it (1 == True == 1.0 in Python; not in a spec)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


def _through_yaml(text: str, loader: Any) -> Any:
    docs, problems = yamlsource._parse(text, Path("/x.yaml"), "x.yaml", None, loader, fail_fast=False)
    if problems:
        return problems
    return [(d.index, d.start, _typed(d.data), d.marks) for d in docs]


def _simply(text: str) -> Any:
    read = read_simple(text, {}, MAX_NODES)
    if read is None:
        return None
    out = []
    for doc in read:
        start = Mark(*doc.start)
        made = dict(LazyMarks(start, doc.rows))
        assert all(isinstance(m, Mark) for m in made.values())
        # one mark at a time (found in the rows) or all at once: the same marks
        unmade = LazyMarks(start, doc.rows)
        assert all(unmade.get(loc) == unmade[loc] == mark and loc in unmade for loc, mark in made.items())
        assert unmade.get(("no", "such", 0)) is None and ("no",) not in unmade and len(unmade) == len(made)
        assert made == unmade
        out.append((doc.position, start, _typed(doc.data), made))
    return out


def _agrees(text: str) -> bool:
    """True when the simple reader took the text (and then read it as YAML does); False when it left it."""
    simple = _simply(text)
    if simple is None:
        return False
    for loader in LOADERS:
        assert simple == _through_yaml(text, loader), (loader, text)
    return True


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_spec_file_of_the_repository_reads_as_through_yaml(path: Path) -> None:
    _agrees(path.read_bytes().decode("utf-8", errors="replace"))


def test_the_corpus_is_mostly_in_the_subset() -> None:
    taken = sum(_agrees(p.read_bytes().decode("utf-8", errors="replace")) for p in CORPUS)
    assert len(CORPUS) > 80 and taken > len(CORPUS) // 2


def test_the_bench_stack_is_in_the_subset(tmp_path: Path) -> None:
    write_stack(tmp_path, 40, change_every=3)
    files = sorted(tmp_path.glob("*.yaml"))
    assert files
    for path in files:
        assert _agrees(path.read_text(encoding="utf-8")), path.name


LEFT_TO_YAML = [
    "",
    "# only a comment\n",
    "a: b",  # no line break at the end
    "a: b \n",  # trailing space
    "a:\tb\n",
    "a: b\r\n",
    "a: b\x7f\n",
    "a: \x0bb\n",
    "a: caf\u00e9\n",
    "\ufeffa: b\n",
    "a: b\nb: c\na: d\n",  # duplicate key: the YAML path names it
    "a: {b: 1, b: 2}\n",
    "metadata: {name: a}\nmetadata: {name: b}\n",
    "a:\n  b: {c: d}\n c: {d: e}\n",
    "a: &x b\nc: *x\n",
    "a: !!str 1\n",
    "%YAML 1.1\n---\na: b\n",
    "a: b\n...\n",
    "--- a: b\n",
    "a: b\n---\n",  # an empty document
    "---\n---\na: b\n",
    "a:\n  - b\n",
    "- a\n",
    "a: [b,\n  c]\n",
    "a: b\n  c\n",  # a plain scalar's second line
    "a: 'it''s'\n",
    'a: "x\\ny"\n',
    "a: b # comment\n",
    "a: >\n  folded\n",
    "a: |-\n  strip\n",
    "a: |2\n   x\n",
    "a: |\n\n  leading empty line\n",
    "a: |\nb: empty literal\n",
    "a: |\n  text\n # comment\nb: c\n",
    "a:b\n",
    "a : b\n",
    "? a\n: b\n",
    "<<: {a: b}\n",
    "a b: c\n",
    "a: -1\n",
    "a: {b: c,}\n",
    "a: {b}\n",
    "a: {b:c}\n",
    "a: [b, {c: d}, ]\n",
    "  a: b\nc: d\n",  # a line less indented than the document's keys
    "a:\n  b: c\n d: e\n",
    "a: |\n   x\n  y\n",  # a literal's line less indented than its first, yet more than its key
    "spec:\n  pem: |\n    x\n   y\n---\nk: v\n",
    "a: " + "x" * 1100 + "\n",
    "a: {" + ", ".join(f"k{i}: {{" for i in range(45)) + "}" * 46 + "\n",  # deeper than the subset goes
]


@pytest.mark.parametrize("text", LEFT_TO_YAML)
def test_what_is_not_in_the_subset_is_left_to_yaml(text: str) -> None:
    assert read_simple(text, {}, MAX_NODES) is None


TAKEN = [
    "a: b\n",
    "# leading comment\n\na: b\n",
    "---\na: b\n---\n# c\nc: d\n",
    "a: b\n---\nc: d\n",
    "  a: b\n  c: d\n",  # a document's keys may all be indented
    "a:\nb: c\n",
    "a:\n  # c\n  b:\n    c: [1, '2', \"3\", yes, ~, 0x1f, 1.5, .inf, 2020-01-02, =, '', x y]\n",
    "a: {b: {c: [d, {e: f}]}, g: []}\nh: { }\ni: [ a , b ]\n",
    "pem: |\n  one\n\n    two\n\n\nnext: x\n",
    "spec:\n  pem: |\n    -----BEGIN\n    x\n    -----END\n\n---\nkind: K\n",
    "true: 1\nnull: 2\non: 3\n",
    "a: 99999999999999999999999999999\nb: 1_000\nc: 0o17\nd: 017\ne: 12\n",
    "a: $x\nb: ${y}z\nc: a{b}\nd: x}\n",
    "metadata: {name: a}\nspec:\n  x: {y: 1}\n  z: {on: ~}\n---\nmetadata: {name: yes}\n",
    # a literal that ends its document, every line indented (read whole, not line by line), then one that does not
    "a: |\n  one\n    two\n  # three\n---\nb: |\n  x\n",
    "spec:\n  pem: |\n    x\n     y\n---\nk: v\n",
]


@pytest.mark.parametrize("text", TAKEN)
def test_what_is_in_the_subset_reads_as_through_yaml(text: str) -> None:
    assert _agrees(text)


# -- generated files: the subset's shapes, with the near misses mixed in -------------------------------------------

KEYS = ["apiVersion", "kind", "metadata", "spec", "a", "b-c", "x_1", "true", "null", "on", "Key9", "pem"]
PLAIN = [
    "mtls-config/v1", "KeyStore", "a b", "a  b", "1", "0x1f", "0o17", "017", "1_000", "+1", ".5", "1.5e3", "1e3",
    ".inf", "-.inf", ".nan", "yes", "No", "on", "OFF", "true", "tRue", "Y", "n", "~", "null", "Null", "2020-01-02",
    "2020-01-02T03:04:05Z", "2020-01-02 03:04:05", "2020-13-45", "=", "ks-00000", "client.jks", "$x", '"q"', "'s'",
    "a(b)", "~x", "'a # b'", '"a, b"', '""', "''", "0.", ".", "..", "+", "+.5", "0b101", "0x", "1_", "_1", "a - b",
    "a -", "x=y", "(", ")", "/", "a/b/", "9" * 30, "${a}/b", "a{b}", "a}", "...",
]  # fmt: skip
NEAR_MISSES = [
    "12:30", "190:20:30", "a:b", "a #b", "a#b", "-1", "-x", "- x", "?x", "&a x", "*a", "!t x", "%x", "@x", "`x",
    "|", ">", "a,b", "[a]", "{a: b}", "x]", "'it''s'", '"a\\"b"', '"a\\nb"', "1,000", "---", "}", "{", "[", "a[b]",
    "a]",
]  # fmt: skip
SPACES = ["", " ", "  "]


def _flow(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth < 3 and roll < 0.2:
        keys = rng.sample(KEYS, rng.randint(0, 3)) + (["a"] if rng.random() < 0.03 else [])
        entries = [f"{key}:{' ' if rng.random() < 0.97 else ''}{_flow(rng, depth + 1)}" for key in keys]
        sep = rng.choice([", ", ",", " , ", ",  "])
        pad = rng.choice(SPACES)
        return "{" + pad + sep.join(entries) + ("," if rng.random() < 0.03 else "") + pad + "}"
    if depth < 3 and roll < 0.3:
        items = [_flow(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        pad = rng.choice(SPACES)
        return "[" + pad + rng.choice([", ", ","]).join(items) + pad + "]"
    return rng.choice(NEAR_MISSES if rng.random() < 0.03 else PLAIN)


def _literal(rng: random.Random, indent: int) -> list[str]:
    width = indent + rng.choice([1, 2, 2, 4])
    lines = []
    for _ in range(rng.randint(0, 5)):
        roll = rng.random()
        if roll < 0.15:
            lines.append("")
        elif roll < 0.25:
            lines.append(" " * (width + rng.randint(1, 3)) + "more")
        elif roll < 0.3:
            lines.append(" " * width + "# not a comment")
        elif roll < 0.31:
            lines.append(" " * rng.randint(0, width) + "x")
        else:
            lines.append(" " * width + rng.choice(["-----BEGIN CERTIFICATE-----", "MIIB+/=", "a: b", "x  y"]))
    return lines


def _mapping(rng: random.Random, indent: int, depth: int) -> list[str]:
    lines = []
    keys = rng.sample(KEYS, rng.randint(1, 4)) + (["a"] if rng.random() < 0.03 else [])
    for key in keys:
        roll = rng.random()
        pad = " " * indent
        if roll < 0.05:
            lines.append(pad + "# comment" if rng.random() < 0.5 else "")
        if roll < 0.15 and depth < 3:
            lines.append(f"{pad}{key}:")
            if rng.random() < 0.8:
                lines.extend(_mapping(rng, indent + rng.choice([1, 2, 2, 4]), depth + 1))
        elif roll < 0.3:
            lines.append(f"{pad}{key}: |")
            lines.extend(_literal(rng, indent))
        else:
            lines.append(f"{pad}{key}:{rng.choice([' ', ' ', '  '])}{_flow(rng, 0)}")
    return lines


def _file(rng: random.Random) -> str:
    docs = []
    for _ in range(rng.randint(1, 3)):
        lines = _mapping(rng, rng.choice([0, 0, 0, 2]), 0)
        if rng.random() < 0.1:
            lines.insert(rng.randint(0, len(lines)), rng.choice(["", "# c", "  # c", "...", "-- -", "\t"]))
        docs.append("\n".join(lines))
    text = rng.choice(["", "---\n", "# head\n---\n"]) + "\n---\n".join(docs) + rng.choice(["\n", "\n", "\n\n", ""])
    if rng.random() < 0.05:
        text = text.replace("\n", " \n", 1)
    return text


def test_generated_files_read_as_through_yaml() -> None:
    rng = random.Random(18)
    taken = 0
    count = 3000
    for _ in range(count):
        taken += _agrees(_file(rng))
    # both sides are exercised: many files are in the subset, many are not
    assert count // 10 < taken < count * 9 // 10, taken


def test_the_simple_reader_resolves_plain_text_with_the_safe_loaders_tables() -> None:
    # It asks yaml.resolver.Resolver, and skips the resolver for a first character no implicit type starts with:
    # right while the safe loaders use the Resolver's own tables (yaml.add_implicit_resolver on one would copy them)
    for loader in LOADERS:
        assert loader.yaml_implicit_resolvers is yaml.resolver.Resolver.yaml_implicit_resolvers
        assert loader.yaml_path_resolvers == {}
    assert None not in yaml.resolver.Resolver.yaml_implicit_resolvers


def test_a_document_of_too_many_values_is_left_to_yaml() -> None:
    # the YAML path refuses a document of more than MAX_NODES values (an alias bomb's message); the simple reader
    # counts at least as many, so it never takes one the YAML path would refuse
    for line in ("k{}: {{name: x}}\n", "k{}: x\n", "k{}: {{a: [b, c]}}\n"):
        small = "".join(line.format(i) for i in range(50))
        assert read_simple(small, {}, 300) is not None
        assert read_simple(small, {}, 100) is None


def test_the_one_regex_per_first_character_matches_where_the_resolvers_types_would() -> None:
    # The reader asks the resolver only for text one of its implicit types may match (one regex per first
    # character): on text where that regex says no, the resolver must answer text (str).
    resolver = yaml.resolver.Resolver()
    reader = _Reader({}, MAX_NODES)
    texts = [*PLAIN, *KEYS, *NEAR_MISSES, "tc-00001", "true1", "0x", "0o8", "1e", ".Inf", "~~", "<<", "=x", "y", "NO"]
    texts += [f"{sign}{digits}" for sign in ("", "+", "-") for digits in ("1", "1_0", "0.5", ".5e-3", "1:20", "0b1")]
    for text in (t for t in texts if t):
        types = resolver.yaml_implicit_resolvers.get(text[0], [])
        typed = reader.typed_start(text[0])
        assert not isinstance(typed, bool) or typed is (text[0] in resolver.yaml_implicit_resolvers)
        maybe = typed if isinstance(typed, bool) else typed.match(text) is not None
        assert maybe == any(p.match(text) for _, p in types)
        if not maybe:
            assert reader.plain(text) == text
