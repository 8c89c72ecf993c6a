"""The resource kinds: one module per kind, holding everything particular to it (``kind.py`` says what that is),
and ``registry`` listing them in apply order. ``certificate`` is what the two kinds kept in ``sys_certificate``
share; ``common`` the canonical values every kind makes.

Never imports the client, the emulator or the CLI.
"""
