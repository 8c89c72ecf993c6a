"""How counts and suggestions are said in output: "1 resource", "2 resources", never "1 resources" or
"resource(s)"; "did you mean 'KeyStore/Acme client'?" for a name that is nearly one we know.

Pure: numbers and words in, a string out.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and ``noun``, the noun in its plural (``nouns``, else ``noun`` + "s") unless the count is one."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def closest(value: str, options: Iterable[str]) -> str | None:
    """The option ``value`` most likely meant, as the option is spelled: one that differs only in case, else the
    only one it begins (ignoring case: 'keystore/acme' for 'KeyStore/Acme Payments client'), else the closest by
    difflib's ratio (at least 0.6); None when none is close."""
    listed = list(options)
    folded = value.casefold()
    same = [option for option in listed if option.casefold() == folded]
    if same:
        return same[0]
    begun = [option for option in listed if folded and option.casefold().startswith(folded)]
    if len(begun) == 1:
        return begun[0]
    close = difflib.get_close_matches(value, listed, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest option (``closest``), or "" when there is none."""
    found = closest(value, options)
    return f" (did you mean '{found}'?)" if found is not None else ""
