"""How text that comes from data (a certificate, a spec, the instance) is shown: literally, and visibly.

Data is never markup and never emoji codes (a SHA-256 fingerprint holds ``:CD:``, a subject may hold
``[bold]``): the CLI's consoles print it as it is. What a terminal would obey rather than show, a control
character (ESC starting an escape sequence, BEL, a bare CR that overwrites the line, C1 controls), a line or
paragraph separator, or a bidirectional override that reorders what is read, is shown as its escape instead:
``\\x1b``, ``\\x07``, ``\\u202e``. Nothing else is touched, so every other character, a backslash included, is
printed byte for byte. JSON escapes control characters itself; Markdown and JUnit XML renderings use this too
(XML 1.0 cannot hold most control characters at all).

Pure: strings in, strings out.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; line/paragraph separators; the bidirectional embeddings, overrides and isolates
# and the directional marks (Unicode 15, UAX #9), which reorder or hide what a reader sees.
_OTHERS = "\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_ANY = re.compile(f"[\x00-\x1f{_OTHERS}]")
_ANY_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` with every control character shown as its escape, the line break included: for one value
    (a name, a subject, an address, a message from the instance) that must stay on its line."""
    return _ANY.sub(_escape, str(text))


def visible_lines(text: object) -> str:
    """``text`` with every control character but the line break shown as its escape: for a whole rendering
    whose own lines are ours."""
    return _ANY_BUT_NEWLINE.sub(_escape, str(text))
