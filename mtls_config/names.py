"""Names as the instance compares them.

The instance's text matching ignores case (``docs/sources/servicenow-facts-2.md`` §7): a query for ``Acme client``
finds ``acme client``, and to the instance they are one name. Every place that asks whether two names are the same
name on the instance (which stack a name belongs to, which record a spec names) compares ``folded`` names.

Never imports anything of the project.
"""

from __future__ import annotations


def folded(name: str) -> str:
    """A name as the instance compares it: its text matching ignores case (``docs/sources/servicenow-facts-2.md``
    §7), so ``acme client`` is found by a query for ``Acme client`` and is, to the instance, the same name."""
    return name.casefold()
