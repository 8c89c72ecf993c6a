"""How a count is said in output: "1 resource", "2 resources", never "1 resources" or "resource(s)".

Pure: numbers and words in, a string out.
"""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and ``noun``, the noun in its plural (``nouns``, else ``noun`` + "s") unless the count is one."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
