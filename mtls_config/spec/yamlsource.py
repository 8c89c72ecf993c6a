"""Read YAML spec files into plain data, remembering where every value came from.

Each document becomes a ``SourceDocument``: plain Python data (dicts, lists, scalars) plus a map from each
value's path (``("spec", "chain", 1)``) to its ``Mark`` (1-based line and column). Problems in the file itself
(not UTF-8, binary, too large, bad YAML, tabs, duplicate keys, alias bombs, deep nesting) are returned as
``Problem`` values, never raised, so that a run reports every problem in every file at once.

Never imports pydantic models, the client or the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mtls_config.errors import Problem, UnreadableFile
from mtls_config.files import SPEC, FileKind, read_file
from mtls_config.spec.simpleyaml import _new_tuple, read_simple

MAX_FILE_BYTES = SPEC.cap
MAX_NODES = 20_000  # per document, counted after aliases are expanded
MAX_DEPTH = 50
# libyaml (in PyYAML's wheels) composes a spec file about 5x faster than the pure-Python parser (0.45 -> 0.09 s
# of CPU for 1000 resources). A file it refuses is read again by the pure-Python parser, whose messages and
# positions are the ones users are shown (and tests/cases/spec_errors pins).
_C_SAFE_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)

Loc = tuple[str | int, ...]
_STR_TAG = "tag:yaml.org,2002:str"


if _C_SAFE_LOADER is not None:

    class _FastSafeLoader(_C_SAFE_LOADER):  # type: ignore[misc,valid-type]  # PyYAML's classes are untyped bases
        """libyaml's safe loader with PyYAML's tag resolution done once per plain text of a file (same answers).

        libyaml calls back into Python for every node: ``resolve`` tries the implicit types' patterns on each plain
        scalar, and ``descend_resolver``/``ascend_resolver`` keep the path resolvers' stack. The safe loaders have
        no path resolvers, so a plain scalar's tag depends on its text alone, and the stack is never read. About
        10% of a spec file's composition."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._plain_tags: dict[str, str] = {}

        def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
            if kind is ScalarNode and implicit[0]:
                tag = self._plain_tags.get(value)
                if tag is None:
                    tag = self._plain_tags[value] = super().resolve(kind, value, implicit)
                return tag
            return str(super().resolve(kind, value, implicit))

        def descend_resolver(self, current_node: Node | None, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    FAST_LOADER: type[yaml.CSafeLoader] | None = _FastSafeLoader
else:  # pragma: no cover  # PyYAML without libyaml: the pure-Python parser alone
    FAST_LOADER = None


class Mark(NamedTuple):
    """1-based line and column. A tuple, so that a document's marks are the ``Origin``'s as they are (no copy per
    resource), and cheap to make: one per value of every spec document."""

    line: int
    column: int


@dataclass(slots=True)
class SourceDocument:
    path: Path  # the file, absolute
    display: str  # the file as the user named it, for messages
    index: int  # 0-based position among the file's documents
    start: Mark
    data: Any
    marks: Mapping[Loc, Mark] = field(default_factory=dict)
    # False when no string of the document can hold '${': its file has neither '${' nor a backslash (a double-quoted
    # escape such as "\x24{" can make one), so substituting variables has nothing to do
    may_hold_variables: bool = True

    def mark_for(self, loc: Loc) -> Mark:
        """The mark of ``loc`` or of its nearest ancestor that has one."""
        for end in range(len(loc), 0, -1):
            mark = self.marks.get(loc[:end])
            if mark is not None:
                return mark
        return self.start

    def problem(self, loc: Loc, message: str, *, address: str = "") -> Problem:
        mark = self.mark_for(loc)
        return Problem(self.display, mark.line, mark.column, address, dotted(loc), message)


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


class _TooBig(Exception):
    def __init__(self, message: str, mark: Mark | None = None) -> None:
        super().__init__(message)
        self.mark = mark


class LazyMarks(Mapping[Loc, Mark]):
    """A document's marks, made the first time all are asked for: a resource's marks are read only for a message
    or a finding about it, and most runs have none (at 20000 resources, about 12 MB of marks and 2 us a resource).
    Until then: the document's start and rows as ``simpleyaml`` reads them (a line number, then that line's
    (path, column) pairs, shared by every line of the file with the same text)."""

    __slots__ = ("_marks", "_rows", "_start")

    def __init__(self, start: Mark, rows: tuple[Any, ...]) -> None:
        self._start = start
        self._rows: tuple[Any, ...] | None = rows
        self._marks: dict[Loc, Mark] | None = None

    def _made(self) -> dict[Loc, Mark]:
        if self._marks is None:
            marks: dict[Loc, Mark] = {(): self._start}
            rows = self._rows or ()
            for at in range(0, len(rows), 2):
                line = rows[at]
                for loc, column in rows[at + 1]:
                    marks[loc] = Mark(line, column)
            self._marks, self._rows = marks, None
        return self._marks

    def __getitem__(self, loc: Loc) -> Mark:
        mark = self.get(loc)
        if mark is None:
            raise KeyError(loc)
        return mark

    def get(self, loc: Loc, default: Mark | None = None) -> Mark | None:  # type: ignore[override]
        """One mark, found in the rows while the marks are not made (a lint asks for one field of every spec)."""
        if self._marks is not None:
            return self._marks.get(loc, default)
        if not loc:
            return self._start
        rows = self._rows or ()
        for at in range(1, len(rows), 2):
            for where, column in rows[at]:
                if where == loc:
                    return Mark(rows[at - 1], column)
        return default

    def __contains__(self, loc: object) -> bool:
        return self.get(loc) is not None  # type: ignore[arg-type]  # any key: None when it is no path

    def __iter__(self) -> Iterator[Loc]:
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())


class _Converter:
    """Turns a composed node tree into plain data with marks, refusing duplicate keys and bombs."""

    def __init__(self, doc: SourceDocument, problems: list[Problem], locs: dict[Loc, Loc] | None = None) -> None:
        self.doc = doc
        self.marks: dict[Loc, Mark] = {}
        doc.marks = self.marks
        self.problems = problems
        self.budget = _Budget()
        self.scalars = SafeConstructor()
        # One tuple per path for the whole file: documents of one kind share their paths (("spec", "pem")), and
        # the marks keep them for the run (about 1.6 MB of tuples at 5000 resources when each had its own).
        self.locs: dict[Loc, Loc] = {} if locs is None else locs

    def convert(self, node: Node, loc: Loc, depth: int) -> Any:
        self.budget.nodes += 1
        if self.budget.nodes > MAX_NODES:
            raise _TooBig(
                f"document has more than {MAX_NODES} values once YAML aliases (*name) are expanded; "
                "a spec document is small, so this looks like an alias bomb"
            )
        if depth > MAX_DEPTH:
            raise _TooBig(f"document is nested more than {MAX_DEPTH} levels deep", _mark(node))
        if loc not in self.marks:  # a mapping's value has its key's mark already: no Mark made to be dropped
            self.marks[loc] = _mark(node)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            seen: dict[str, Mark] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(
                        Problem(
                            self.doc.display,
                            *_pos(key_node),
                            "",
                            dotted(loc),
                            "merge keys ('<<') are not supported; write the fields out in full",
                        )
                    )
                    continue
                if not isinstance(key_node, ScalarNode):
                    self.problems.append(
                        Problem(
                            self.doc.display,
                            *_pos(key_node),
                            "",
                            dotted(loc),
                            "a mapping key must be a plain string",
                        )
                    )
                    continue
                key = str(key_node.value)
                if key in seen:
                    first = seen[key]
                    self.problems.append(
                        Problem(
                            self.doc.display,
                            *_pos(key_node),
                            "",
                            dotted((*loc, key)),
                            f"duplicate key '{key}' (first at line {first.line})",
                        )
                    )
                    continue
                key_mark = _mark(key_node)
                child = (*loc, key)
                child = self.locs.setdefault(child, child)
                seen[key] = key_mark
                self.marks[child] = key_mark
                out[key] = self.convert(value_node, child, depth + 1)
            return out
        if isinstance(node, SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                child = (*loc, i)
                items.append(self.convert(item, self.locs.setdefault(child, child), depth + 1))
            return items
        assert isinstance(node, ScalarNode)
        if node.tag == _STR_TAG:
            return node.value  # what SafeConstructor makes of a string, without its per-node dispatch
        try:
            return self.scalars.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError):
            # A value YAML cannot make (a date out of range, an integer of thousands of digits, which Python
            # refuses to convert) stays text: the model then says which field wanted what.
            return node.value


def _pos(node: Node) -> tuple[int, int]:
    m = _mark(node)
    return m.line, m.column


def _yaml_problem(display: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if "'\\t'" in problem or "\t" in problem:
        message = "tab character in indentation: YAML allows only spaces"
    elif problem.startswith("found undefined alias"):
        name = problem.rsplit(" ", 1)[-1].strip("'")
        message = (
            f"undefined alias '*{name}': the anchor '&{name}' must come earlier in the same document "
            "(anchors do not reach across '---')"
        )
    else:
        message = f"invalid YAML: {problem}"
        if context:
            where = (
                f" that starts at line {context_mark.line + 1}"
                if context_mark is not None and mark is not context_mark
                else ""
            )
            message += f" ({context}{where})"
    return Problem(display, line, col, "", "", message)


def read_documents(
    path: Path, display: str, address_of: Callable[[Any], str] | None = None, *, kind: FileKind = SPEC
) -> tuple[list[SourceDocument], list[Problem]]:
    """Parse one file (a spec file, or the project file as ``kind``). Returns its non-empty documents and the
    problems found (possibly both). ``address_of(data)`` names the resource a document describes ("KeyStore/acme"),
    for problems found in it."""
    try:
        raw = read_file(path, kind, shown=display)
    except UnreadableFile as exc:
        said = f"file {exc.reason}" if exc.opened else f"cannot read file: {exc.reason}"
        return [], [Problem(display, 1, 1, "", "", said)]
    if b"\x00" in raw:
        return [], [Problem(display, 1, 1, "", "", "binary file (NUL bytes): a spec file must be YAML text")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        byte = raw[exc.start]
        message = f"not UTF-8 text (byte 0x{byte:02x}): save the file as UTF-8"
        return [], [Problem(display, line, column, "", "", message)]

    simple = read_simple(text, {}, MAX_NODES)
    if simple is not None:
        may_hold_variables = "${" in text or "\\" in text
        return [
            SourceDocument(
                path,
                display,
                d.position,
                (start := _new_tuple(Mark, d.start)),  # Mark(*d.start) without its Python __new__
                d.data,
                LazyMarks(start, d.rows),
                may_hold_variables,
            )
            for d in simple
        ], []
    if FAST_LOADER is not None:
        try:
            return _parse(text, path, display, address_of, FAST_LOADER, fail_fast=True)
        except yaml.YAMLError:
            pass  # read again by the pure-Python parser: its messages and marks are the ones users are shown
    return _parse(text, path, display, address_of, yaml.SafeLoader, fail_fast=False)


def _parse(
    text: str,
    path: Path,
    display: str,
    address_of: Callable[[Any], str] | None,
    loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader],
    *,
    fail_fast: bool,
) -> tuple[list[SourceDocument], list[Problem]]:
    """The file's documents through ``loader``; with ``fail_fast`` a YAML syntax error is raised to the caller
    (and nothing is kept) instead of becoming a problem."""
    problems: list[Problem] = []
    docs: list[SourceDocument] = []
    locs: dict[Loc, Loc] = {}
    may_hold_variables = "${" in text or "\\" in text
    try:
        for index, node in enumerate(_compose_all(text, loader)):
            if node is None:
                continue
            doc = SourceDocument(
                path=path,
                display=display,
                index=index,
                start=_mark(node),
                data=None,
                may_hold_variables=may_hold_variables,
            )
            found_before = len(problems)
            try:
                doc.data = _Converter(doc, problems, locs).convert(node, (), 0)
            except _TooBig as exc:
                where = exc.mark or doc.start
                problems.append(Problem(display, where.line, where.column, "", "", str(exc)))
                continue
            if len(problems) > found_before and address_of is not None:
                address = address_of(doc.data)
                if address:
                    problems[found_before:] = [replace(p, address=address) for p in problems[found_before:]]
            if doc.data is None:
                continue
            docs.append(doc)
    except yaml.YAMLError as exc:
        if fail_fast:
            raise
        problems.append(_yaml_problem(display, exc))
    except RecursionError:
        problems.append(Problem(display, 1, 1, "", "", f"document is nested more than {MAX_DEPTH} levels deep"))
    if not docs and not problems:
        problems.append(
            Problem(display, 1, 1, "", "", "no resource documents in this file (it is empty or holds only comments)")
        )
    return docs, problems


def _compose_all(text: str, loader_class: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> Iterator[Node | None]:
    loader = loader_class(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()
