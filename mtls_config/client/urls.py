"""A request's URL made once, already in the form httpx sends it.

httpx builds a request's URL from the client's base URL, the path and the query parameters in several steps, each
parsing and checking the text again in Python, character by character (a plan's reads send 5 kB queries, ``IN``
lists of names, 48 of them at N = 20000: about 40 ms of CPU, issue 18). The query that comes out is what
``urllib.parse.urlencode`` makes of the parameters (text only: letters, digits, ``_.-~``, ``+`` for a space and
``%XX`` for every other byte of their UTF-8), which httpx's own quoting leaves as it is. So, for a path of plain
segments and parameters of text, the URL is made here directly: the query encoded by one table in C, the URL from
the base URL's parsed parts with that path and query.

httpx has no public way to make a URL from parts it need not check, so this sets the URL's parsed parts
(``URL._uri_reference``, a named tuple of its components since httpx 0.23). Each client checks its first such URL
against the one httpx builds itself, and builds every URL the general way from then on if they differ (another
httpx); ``tests/client/test_urls.py`` holds them equal on random parameters and the requests the emulator
receives byte for byte.

Never imports the engine, the emulator or the CLI.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

import httpx

# What ``urllib.parse.quote_plus`` makes of each byte: letters, digits and "_.-~" as they are, a space "+", any
# other "%XX" (upper-case hex). Applied to the UTF-8 bytes of a text, read as Latin-1 (one character a byte).
_KEPT = string.ascii_letters + string.digits + "_.-~"
_QUOTE_PLUS = {
    byte: chr(byte) if chr(byte) in _KEPT else "+" if byte == 0x20 else f"%{byte:02X}" for byte in range(256)
}
# A path of plain segments (what the Table and Attachment APIs' paths are): no dot segments, nothing to quote.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_]+)+")


def quote_plus(text: str) -> str:
    """``urllib.parse.quote_plus(text)`` (UTF-8, nothing safe but the unreserved characters); ``UnicodeEncodeError``
    for a lone surrogate, as there."""
    return text.encode("utf-8").decode("latin-1").translate(_QUOTE_PLUS)


def query_text(params: Mapping[str, str]) -> str:
    """``urllib.parse.urlencode(params)`` for parameters of text."""
    return "&".join([quote_plus(key) + "=" + quote_plus(value) for key, value in params.items()])


class UrlMaker:
    """Makes the URLs of one httpx client's requests (``base``: its ``base_url``)."""

    def __init__(self, base: httpx.URL) -> None:
        parts = getattr(base, "_uri_reference", None)
        # A base of scheme, host and path only (what an instance's URL is), whose parts are the named tuple this
        # knows: anything else is left to httpx.
        usable = (
            parts is not None
            and hasattr(parts, "_replace")
            and base.query == b""
            and base.fragment == ""
            and base.raw_path.endswith(b"/")
        )
        self._parts = parts if usable else None
        self._path = base.raw_path.decode("ascii")  # the path a request's is appended to (httpx's "/" for none)
        self._checked = False

    def url(self, client: httpx.AsyncClient, path: str, params: Mapping[str, str] | None) -> httpx.URL | None:
        """The URL ``client.build_request`` makes of ``path`` and ``params``, or None where httpx must make it."""
        if self._parts is None or not params or _PLAIN_PATH.fullmatch(path) is None:
            return None
        try:
            if not all(type(key) is str and type(value) is str for key, value in params.items()):
                return None
            query = query_text(params)
        except UnicodeEncodeError:
            return None
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = self._parts._replace(path=self._path + path[1:], query=query)
        if not self._checked:
            self._checked = True
            made = client.build_request("GET", path, params=params).url
            if str(url) != str(made) or url.raw_path != made.raw_path:
                self._parts = None  # another httpx: every URL made by it
                return None
        return url
