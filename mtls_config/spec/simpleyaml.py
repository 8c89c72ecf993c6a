"""A reader for the plain subset of YAML that spec files are mostly written in, without composing nodes.

libyaml composes a spec file into one Python node object (two marks, a resolver call) per value, and the
converter then walks the nodes again: about 35 us a resource, half of reading the specs. Spec files are a few
shapes over and over: block mappings of ``key: value`` lines, flow mappings and sequences on one line, literal
block scalars (``|``) for PEM text. This module reads exactly those shapes line by line, with the same plain-
scalar tag resolution and the same constructors as the YAML path, and gives up (``None``) on anything else: the
caller then reads the file through YAML as before, so every message and mark of a file with a problem is the
YAML path's. ``tests/test_spec_simple_yaml.py`` holds it to the YAML path's answer (data, marks, documents).

What gives up (the whole file): non-ASCII or control characters, tabs, carriage returns, trailing spaces,
anchors, aliases, tags, directives, ``...``, empty documents, duplicate keys, block sequences, multi-line flow
collections or plain scalars, folded or chomping block scalars, comments after a value, quotes with escapes.

Never imports pydantic models, the client or the CLI.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

Loc = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
# A file of printable ASCII and line feeds only: no tab (YAML's own message), no CR or other line break, no BOM
# or character whose column libyaml would count differently.
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\n"
_KEY = r"[A-Za-z][A-Za-z0-9_-]*"
# A plain scalar: no indicator anywhere (so no ': ', ' #', flow punctuation, quotes, anchors, tags), not starting
# with '-' (a sequence entry or document marker) and not ending with a space.
_PLAIN_CHARS = "A-Za-z0-9_./$~+()="
_PLAIN = rf"[{_PLAIN_CHARS}](?:[{_PLAIN_CHARS} -]*[{_PLAIN_CHARS}-])?"
# In a block mapping's value (not inside flow brackets) a plain scalar may also hold braces: '${name}/a.pem'.
_BLOCK_PLAIN = re.compile(rf"[{_PLAIN_CHARS}](?:[{_PLAIN_CHARS}{{}} -]*[{_PLAIN_CHARS}{{}}-])?")
_QUOTED = r"'[^'\n]*'|\"[^\"\\\n]*\""
_BLOCK_LINE = re.compile(rf"( *)({_KEY}):(?: +(.*))?")
_FLOW_KEY = re.compile(rf" *({_KEY}): +")
_FLOW_SCALAR = re.compile(rf" *(?:({_PLAIN})|({_QUOTED}))")
_SPACES = re.compile(r" *")
_TRAILING_SPACE = re.compile(" \n")  # a regex finds it faster than 'in' (a space before a line break)
# libyaml refuses a simple key more than 1024 characters from its start: a shorter line cannot hold one.
_MAX_LINE = 1000
_MAX_DEPTH = 40  # well under yamlsource.MAX_DEPTH, so a deep document is left to the YAML path's message


class Document(NamedTuple):
    """One document as read: its position among the file's documents, the (line, column) where it starts, its data,
    and its marks as rows: a line number, then that line's ((path, column), ...); ``LazyMarks`` makes them marks."""

    position: int  # among the file's documents, 0-based
    start: tuple[int, int]
    data: Any
    rows: tuple[Any, ...]


class _GiveUp(Exception):
    """The file is outside the subset: read it through YAML."""


_SKIP = None  # a blank or comment line's entry
_EMPTY, _LITERAL, _VALUE, _COPY = range(4)  # what follows a key: nothing, '|', a value as it is, one to copy


class _Line(NamedTuple):
    """One key line of a block mapping, read once per file however often it recurs (``kind: KeyStore``)."""

    indent: int
    key: str
    kind: int  # _EMPTY, _LITERAL, _VALUE or _COPY
    value: Any  # the value (_VALUE), or the pristine value whose copy each document gets (_COPY)
    marks: tuple[tuple[Loc, int], ...]  # (path, column) of the key and of every key and item in its value
    nodes: int


class _Reader:
    def __init__(self, locs: dict[Loc, Loc], max_nodes: int) -> None:
        self.locs = locs
        self.max_nodes = max_nodes
        self.resolver = yaml.resolver.Resolver()
        self.resolve: Callable[[type[ScalarNode], str, tuple[bool, bool]], str] = self.resolver.resolve
        self.constructor = SafeConstructor()
        self.values: dict[str, Any] = {}  # plain text -> its value (str, or an immutable int, bool, None...)
        # By first character, made as met: whether text starting with it may have an implicit type (False: none
        # starts with it, as with 'k' of 'ks-00001'; True: ask the resolver; a regex: where one of its types would
        # match).
        self.typed_by_start: dict[str, re.Pattern[str] | bool] = {}
        # By mapping path: its lines (line -> what it holds) and its one-entry lines' shapes (head -> _OneEntry).
        self.tables: dict[Loc, tuple[dict[str, _Line | None], dict[str, _OneEntry]]] = {}
        self.nodes = 0
        self.rows: list[Any] = []  # the document's marks: line number, then its line's (path, column) pairs

    def loc(self, parent: Loc, part: str | int) -> Loc:
        child = (*parent, part)
        return self.locs.setdefault(child, child)

    def plain(self, text: str) -> Any:
        if text in self.values:
            return self.values[text]
        # The resolver (Python, a pattern per type) only for text that one of its types may match: not for most.
        typed = self.typed_by_start.get(text[0])
        if typed is None:
            typed = self.typed_by_start[text[0]] = self.typed_start(text[0])
        maybe_typed = typed if isinstance(typed, bool) else typed.match(text) is not None
        tag = self.resolve(ScalarNode, text, (True, False)) if maybe_typed else _STR_TAG
        if tag == _STR_TAG:
            value: Any = text
        else:
            # As yamlsource's converter: a value YAML cannot make stays text (the model then says what it wanted).
            try:
                value = self.constructor.construct_object(ScalarNode(tag, text))
            except (yaml.YAMLError, ValueError, OverflowError):
                value = text
            self.constructor.constructed_objects.clear()
        self.values[text] = value
        return value

    def typed_start(self, start: str) -> re.Pattern[str] | bool:
        tables = self.resolver.yaml_implicit_resolvers
        if None in tables:
            return True  # a type for any text
        types = tables.get(start)
        if not types:
            return False
        made = _ANY_OF.get(id(types))
        if made is None or made[0] is not types:
            made = _ANY_OF[id(types)] = (types, _any_of(types))
        return made[1]

    # -- one line's flow value -------------------------------------------------------------------------------

    def flow(self, line: str, pos: int, loc: Loc, depth: int, marks: list[tuple[Loc, int]]) -> tuple[Any, int]:
        """The flow value at ``pos`` (spaces skipped first); returns it and the position after it. Appends to
        ``marks`` the (path, column) of every key and sequence item in it."""
        pos = _skip(line, pos)
        if depth > _MAX_DEPTH:
            raise _GiveUp
        head = line[pos : pos + 1]
        if head != "{" and head != "[":
            m = _FLOW_SCALAR.match(line, pos)
            if m is None:
                raise _GiveUp
            if m.group(1) is not None:
                return self.plain(m.group(1)), m.end()
            return m.group(2)[1:-1], m.end()
        mapping = head == "{"
        close = "}" if mapping else "]"
        out: Any = {} if mapping else []
        pos = _skip(line, pos + 1)
        if line.startswith(close, pos):
            return out, pos + 1
        while True:
            if mapping:
                m = _FLOW_KEY.match(line, pos)
                if m is None or m.group(1) in out:  # a duplicate key: the YAML path names it
                    raise _GiveUp
                child = self.loc(loc, m.group(1))
                marks.append((child, m.start(1) + 1))
                out[m.group(1)], pos = self.flow(line, m.end(), child, depth + 1, marks)
            else:
                child = self.loc(loc, len(out))
                at = _skip(line, pos)
                marks.append((child, at + 1))
                item, pos = self.flow(line, at, child, depth + 1, marks)
                out.append(item)
            pos = _skip(line, pos)
            if line.startswith(close, pos):
                return out, pos + 1
            if not line.startswith(",", pos):
                raise _GiveUp
            pos += 1

    def one_entry(self, one: re.Match[str], loc: Loc) -> _OneEntry:
        """The shape of a one-entry line (``_ONE_ENTRY``) of the block mapping at ``loc``."""
        indent, key, inner = len(one.group(2)), one.group(3), one.group(4)
        child = self.loc(loc, key)
        return _OneEntry(indent, key, inner, ((child, indent + 1), (self.loc(child, inner), one.start(4) + 1)))

    def read_line(self, line: str, loc: Loc, depth: int) -> _Line | None:
        """A line of the block mapping at ``loc``: None when blank or a comment."""
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            return _SKIP
        if len(line) > _MAX_LINE:
            raise _GiveUp
        m = _BLOCK_LINE.fullmatch(line)
        if m is None:
            raise _GiveUp
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        child = self.loc(loc, key)
        marks = [(child, indent + 1)]
        if rest is None:
            return _Line(indent, key, _EMPTY, None, tuple(marks), 1)
        if rest == "|":
            return _Line(indent, key, _LITERAL, None, tuple(marks), 2)
        if _BLOCK_PLAIN.fullmatch(rest):
            return _Line(indent, key, _VALUE, self.plain(rest), tuple(marks), 2)
        value, end = self.flow(line, m.start(3), child, depth + 1, marks)
        if end != len(line):
            raise _GiveUp
        kind = _COPY if isinstance(value, dict | list) else _VALUE
        return _Line(indent, key, kind, value, tuple(marks), len(marks) + 1)

    # -- block mappings ------------------------------------------------------------------------------------------

    def mapping(
        self, lines: list[str], i: int, n: int, indent: int, loc: Loc, depth: int
    ) -> tuple[dict[str, Any], int]:
        """The block mapping whose keys are at ``indent``, from line ``i`` up to line ``n`` (the document's end);
        returns it and the next line's index. ``lines`` are the file's, from its first."""
        if depth > _MAX_DEPTH:
            raise _GiveUp
        out: dict[str, Any] = {}
        tables = self.tables.get(loc)
        if tables is None:
            tables = self.tables[loc] = ({}, {})
        cache, shapes = tables
        rows = self.rows
        while i < n:
            line = lines[i]
            entry = cache.get(line, _NOT_READ)
            if entry is _NOT_READ:
                one = _ONE_ENTRY.fullmatch(line)
                if one is not None and len(line) <= _MAX_LINE:
                    # 'metadata: {name: ...}': a line of its own in every document; its value read here, not kept,
                    # and the rest (key, paths, marks) once per file
                    head, text = one.group(1, 5)
                    shape = shapes.get(head)
                    if shape is None:
                        shape = shapes[head] = self.one_entry(one, loc)
                    if shape.indent == indent:
                        self.nodes += 3
                        if shape.key in out or self.nodes > self.max_nodes:
                            raise _GiveUp
                        rows += (i + 1, shape.marks)
                        out[shape.key] = {shape.inner: self.plain(text)}
                        i += 1
                        continue
                entry = cache[line] = self.read_line(line, loc, depth)
            if entry is None:
                i += 1
                continue
            at, key, kind, value, marks, nodes = entry
            if at != indent:
                if at < indent:
                    break
                raise _GiveUp
            if key in out:
                raise _GiveUp  # the YAML path names the duplicate
            self.nodes += nodes
            if self.nodes > self.max_nodes:
                raise _GiveUp
            rows += (i + 1, marks)
            i += 1
            if kind == _VALUE:
                out[key] = value
            elif kind == _COPY:
                out[key] = _copy(value)
            elif kind == _LITERAL:
                out[key], i = _literal(lines, i, n, indent)
            else:
                j = _next_content(lines, i, n)
                inner_indent = _indent(lines[j]) if j < n else -1
                if inner_indent > indent:
                    out[key], i = self.mapping(lines, j, n, inner_indent, marks[0][0], depth + 1)
                else:
                    out[key] = None  # 'key:' alone: null
        return out, i


_NOT_READ: Any = object()
_new_tuple = tuple.__new__  # a NamedTuple made from its values without its Python-level __new__
# 'key: {inner: value}': its head (indentation, key, inner key), then the value
_ONE_ENTRY = re.compile(rf"(( *)({_KEY}): \{{({_KEY}): )({_PLAIN})\}}")


class _OneEntry(NamedTuple):
    """What a one-entry line holds but its value, read once per head (``metadata: {name: ``) and mapping path."""

    indent: int
    key: str
    inner: str
    marks: tuple[tuple[Loc, int], tuple[Loc, int]]


# The regex of each list of the resolver's types, by the list (kept, so that its id is not reused): made once a
# process (a compiled regex each; about 0.1 ms).
_ANY_OF: dict[int, tuple[list[tuple[str, re.Pattern[str]]], re.Pattern[str] | bool]] = {}


def _any_of(types: list[tuple[str, re.Pattern[str]]]) -> re.Pattern[str] | bool:
    """One regex that matches a text where one of the implicit types' patterns would; True when their flags differ
    (then the resolver is asked)."""
    flags = {pattern.flags for _, pattern in types}
    if len(flags) != 1:
        return True
    (flag,) = flags
    end = "\n" if flag & re.VERBOSE else ""  # a '#' comment of a verbose pattern ends at the line break
    return re.compile("|".join(f"(?:{pattern.pattern}{end})" for _, pattern in types), flag)


def _copy(value: Any) -> Any:
    """A copy of a flow value's containers (its scalars are immutable), so that no two documents share one."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _skip(line: str, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not a space."""
    return _SPACES.match(line, pos).end()  # type: ignore[union-attr]  # ' *' always matches


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _next_content(lines: list[str], i: int, n: int) -> int:
    """The index of the next line before line ``n`` that is neither blank nor a comment (``n`` when none)."""
    while i < n:
        stripped = lines[i].lstrip(" ")
        if stripped and stripped[0] != "#":
            return i
        i += 1
    return i


def _literal(lines: list[str], i: int, n: int, indent: int) -> tuple[str, int]:
    """A literal block scalar ('|': clip, indentation from its first line) of a key at ``indent``, from line ``i``
    (before line ``n``, the document's end); returns its text and the index of the line after it."""
    if i >= n or not lines[i]:
        raise _GiveUp  # empty, or leading empty lines: left to YAML
    width = _indent(lines[i])
    if width <= indent:
        raise _GiveUp
    pad = " " * width
    # The common case, a PEM block that ends the document: every line left starts with the indentation. Counted
    # and cut in C rather than line by line (a certificate is about ten lines).
    block = "\n".join(lines[i:n])
    cut = "\n" + pad
    if block.count(cut) == n - i - 1:
        return block[width:].replace(cut, "\n") + "\n", n
    content: list[str] = []
    end = i  # after the last content line
    while i < n:
        line = lines[i]
        if line.startswith(pad):
            if end < i:
                content.extend([""] * (i - end))  # empty lines between content lines are part of the text
            content.append(line[width:])
            end = i + 1
        elif line:  # less indented: the text has ended
            if line.lstrip(" ").startswith("#"):
                raise _GiveUp  # a comment right after the text: left to YAML
            break
        i += 1
    return "\n".join(content) + "\n", end


def _printable(text: str) -> bool:
    """Whether ASCII ``text`` holds only ``_PRINTABLE`` characters: its bytes without those are none (a table
    lookup a byte in C, where a regex's character class took several times as long)."""
    return not text.encode("ascii").translate(None, _PRINTABLE)


def read_simple(text: str, locs: dict[Loc, Loc], max_nodes: int) -> list[Document] | None:
    """The documents of ``text`` as the YAML path would read them, or None when the text is not in the subset (or
    holds no document). ``locs`` shares path tuples; a document of more than ``max_nodes`` values is left to the
    YAML path."""
    # A last line without its line break changes a block scalar's text (clip keeps a break only when there is one).
    if not text.endswith("\n") or not text.isascii() or _TRAILING_SPACE.search(text) or not _printable(text):
        return None
    lines = text.split("\n")
    # Documents: the lines before the first '---' (a document only if they hold content), then one per '---'.
    bounds = [0]
    try:
        while True:  # list.index compares in C: one call per document, not a Python step per line
            bounds.append(lines.index("---", bounds[-1]) + 1)
    except ValueError:
        bounds.append(len(lines))  # the last document ends before the empty string after the text's last break
    out: list[Document] = []
    reader = _Reader(locs, max_nodes)
    skipped = 0  # 1 when the lines before the first '---' are no document
    try:
        for part_index, (start, after) in enumerate(pairwise(bounds)):
            stop = after - 1  # the document's end: its '---' line, or after the last line
            first = lines[start] if start < stop else ""
            if first and first[0] != " " and first[0] != "#":
                j, indent = start, 0  # the usual document: its first line is a key
            else:
                j = _next_content(lines, start, stop)
                if j == stop:
                    if part_index == 0:
                        skipped = 1  # comments or nothing before the first '---': no document
                        continue
                    return None  # an empty document: left to YAML
                indent = _indent(lines[j])
            reader.rows = []
            reader.nodes = 1
            data, end = reader.mapping(lines, j, stop, indent, (), 1)
            if end != stop:
                raise _GiveUp  # a line less indented than the document's keys
            out.append(_new_tuple(Document, (part_index - skipped, (j + 1, indent + 1), data, tuple(reader.rows))))
    except _GiveUp:
        return None
    return out or None
