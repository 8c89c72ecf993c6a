"""The registry of secrets this process has seen, and the one function that masks them in text.

Every ``SecretValue`` registers its value here when it is made (keystore and key passwords, private keys, instance
passwords, OAuth client secrets and tokens): whatever the value travels through afterwards (a request body, a
Basic header, a batch item base64-encoded, an OAuth form), an instance or a proxy that echoes it back puts it into
text that passes through ``redact`` before it becomes an error message, a log line, a journal line, a report or
output. ``redact`` masks each secret in every form it may come back in: each way a request carries it (as it is,
JSON-escaped, URL-encoded, inside a batch item's base64 body), quoted each way an echo may quote a request (as it
is, as a JSON string, URL-encoded with ``%20`` or ``+``, base64 standard or URL-safe at any of the three
alignments inside a longer encoded text, hex); a secret of several lines (a PEM key) also line by line, so that a
truncated echo is masked too.

The registry lives as long as the process (one command run); nothing in it is ever written anywhere.
Very short values are not registered: masking three letters everywhere would garble every message, and such
values are not secrets worth the name (a base64 form is masked only when it is at least ``MIN_ENCODED`` long).

Never imports anything of the project: every layer may use it.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse

MASK = "********"
MIN_SECRET = 4  # characters of the value itself
MIN_ENCODED = 8  # characters of an encoded form
MIN_LINE = 16  # characters of one line of a multi-line secret


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend only on ``raw``, whatever bytes come before and after it in a longer
    body: for each of the three alignments, the groups made of ``raw``'s bytes alone."""
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = 4 if shift else 0  # the first group mixes the unknown bytes before
        end = 4 * ((shift + len(raw)) // 3)  # the last partial group mixes the unknown bytes after
        core = encoded[start:end].decode("ascii")
        if len(core) >= MIN_ENCODED:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def _carried(raw: bytes) -> set[str]:
    """How a request carries the secret: as it is, inside a JSON body (escaped, ASCII or not), in a form or a
    query (URL-encoded), and inside a batch item, whose body is the JSON base64-encoded."""
    text = raw.decode("utf-8", "replace")
    forms = {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        urllib.parse.quote(raw, safe=""),
        urllib.parse.quote_plus(raw, safe=""),
    }
    for form in list(forms):
        forms |= _base64_cores(form.encode("utf-8"))
    return forms


def _echoed(form: str) -> set[str]:
    """How an echo may quote what it was sent: as it is, as a JSON string, URL-encoded, base64 or hex."""
    raw = form.encode("utf-8")
    hexed = raw.hex()
    return {
        form,
        json.dumps(form)[1:-1],
        urllib.parse.quote(raw, safe=""),
        urllib.parse.quote_plus(raw, safe=""),
        urllib.parse.quote(raw),
        hexed,
        hexed.upper(),
        *_base64_cores(raw),
    }


def encoded_forms(value: bytes | str) -> set[str]:
    """Every form of ``value`` that ``redact`` masks: each way a request carries it, quoted each way an echo may."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    text = raw.decode("utf-8", "replace")
    forms: set[str] = set()
    if len(text) >= MIN_SECRET:
        forms.add(text)
        for carried in _carried(raw):
            forms |= {f for f in _echoed(carried) if len(f) >= MIN_ENCODED}
    lines = [line.strip() for line in text.splitlines()]
    if len(lines) > 1:
        for line in lines:
            if len(line) >= MIN_LINE:
                forms |= encoded_forms(line)
    return forms


class SecretRegistry:
    """The secrets seen so far, in all their forms; thread-safe (desired state is built in a worker thread).

    Forms are indexed by their first ``MIN_SECRET`` characters, so masking a text costs one dictionary look-up per
    character whatever the number of secrets (a stack of a thousand keystores each with its own password)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[bytes] = set()
        self._forms: set[str] = set()
        self._index: dict[str, tuple[str, ...]] | None = {}  # None: to be rebuilt from _forms

    def add(self, value: bytes | str | None) -> None:
        if not value:
            return
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        with self._lock:
            if raw in self._seen:
                return
            self._seen.add(raw)
            self._forms |= encoded_forms(raw)
            self._index = None

    def clear(self) -> None:
        """Forget every secret (a test harness running several runs in one process)."""
        with self._lock:
            self._seen.clear()
            self._forms = set()
            self._index = {}

    def __len__(self) -> int:
        return len(self._seen)

    def _current_index(self) -> dict[str, tuple[str, ...]]:
        index = self._index
        if index is None:
            with self._lock:
                grouped: dict[str, list[str]] = {}
                for form in self._forms:
                    grouped.setdefault(form[:MIN_SECRET], []).append(form)
                # Longest first: a form that holds a shorter one is masked whole.
                index = {key: tuple(sorted(forms, key=len, reverse=True)) for key, forms in grouped.items()}
                self._index = index
        return index

    def redact(self, text: str) -> str:
        index = self._current_index()
        if not index:
            return text
        pieces: list[str] = []
        start = position = 0
        last = len(text) - MIN_SECRET
        while position <= last:
            for form in index.get(text[position : position + MIN_SECRET], ()):
                if text.startswith(form, position):
                    pieces += (text[start:position], MASK)
                    position += len(form)
                    start = position
                    break
            else:
                position += 1
        pieces.append(text[start:])
        return "".join(pieces)


REVEALED = SecretRegistry()


def register(value: bytes | str | None) -> None:
    """Remember ``value`` as a secret of this run: ``redact`` masks it from now on."""
    REVEALED.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret masked, in every form ``encoded_forms`` lists."""
    return REVEALED.redact(text)
