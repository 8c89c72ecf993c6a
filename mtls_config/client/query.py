"""Helpers for building encoded queries that stay well under URL length limits.

Never imports httpx, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# Instances and the proxies in front of them commonly cap request lines at 8 KB; a query of this many
# characters leaves room for the path, the other sysparm_* parameters and the percent-encoding of commas
# and spaces. Larger chunks mean fewer round trips: 150 sys_ids fit in one.
DEFAULT_IN_LIST_CHARS = 5000


def in_list_chunks(values: Iterable[str], max_chars: int = DEFAULT_IN_LIST_CHARS) -> Iterator[list[str]]:
    """Split ``values`` (duplicates dropped, order kept) into lists whose comma-joined length fits ``max_chars``.

    A single value longer than ``max_chars`` gets a chunk of its own. A value holding ``,`` or ``^``
    cannot be expressed in an ``IN`` list (no documented escape exists), so it is refused.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    chunk: list[str] = []
    length = 0
    seen: set[str] = set()
    for value in values:
        if value in seen:
            continue
        seen.add(value)
        if "," in value or "^" in value:
            raise ValueError(f"{value!r} contains ',' or '^' and cannot be part of an IN query")
        added = len(value) + (1 if chunk else 0)
        if chunk and length + added > max_chars:
            yield chunk
            chunk, length = [], 0
            added = len(value)
        chunk.append(value)
        length += added
    if chunk:
        yield chunk
