"""Would the instance send with mutual auth at all? The rules ServiceNow documents (``reference/servicenow-facts-2.md``
§2, §3, §5), as pure checks over the records a binding touches.

Ticking "use mutual authentication" is not enough: the instance sends a bound call with its client certificate only
when the call goes from the instance itself (never through a MID Server), authenticates with basic authentication
(REST: never with OAuth 2.0), goes through a method whose own tick and profile agree with the binding, and when no
stale ``glide.httpclient.protocol.<protocol>.*`` property sends the scheme elsewhere. Each check gives an ``Issue``:
the record, what is wrong with ServiceNow's own sentence for why, and the fix.

What a binding "claims", and so what contradicts it (docs/why-mutual-auth-is-not-used.md):

- ``functions`` omitted: the message and every one of its functions (HTTP methods, SOAP functions). A call always goes
  through a function, and the function's own box decides for it (ServiceNow's RESTMessage: a method's box off means
  no mutual auth even when the message's is on; SOAPMessage reads only the function's fields). So a function whose
  box is off, or that names another profile, contradicts the binding (REST: a ticked method with no profile uses
  its message's, so it agrees; SOAP: it has none).
- ``functions: all``: the binding writes every function itself: nothing is left to contradict it.
- ``functions: [list]``: the message and the listed functions. The others are outside the binding, deliberately:
  they are not checked at all.

The checks of authentication and MID Servers apply to the functions the binding claims (and to the message itself
when it has no functions): a message's own authentication matters through the functions that inherit it.

The plan runs them through the kinds (``MessageBinding``, ``ProtocolProfile``); ``verify`` runs them on the records
it reads, and there also reports a claimed record whose tick or profile is not (yet) the binding's.

Pure: no I/O. Never imports the client, the emulator, the CLI or another module of the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

INHERIT = "inherit_from_parent"
OAUTH2 = "oauth2"
BASIC = frozenset({"basic", "basic_simple"})  # "Basic" and the legacy "Basic (Simple)" (facts-2 §2)
PROPERTY_PREFIX = "glide.httpclient.protocol."
SOCKET_FACTORY = "com.glide.certificates.DBKeyStoreSocketFactory"

# ServiceNow's own words (facts-2 §2, §5), quoted in findings with where they are from.
MID_SERVER_WORDS = (
    '"ServiceNow does not support mutual authentication for outbound requests sent through a MID Server." '
    "(ServiceNow docs, Outbound web service mutual authentication)"
)
OAUTH2_WORDS = (
    '"Outbound REST supports mutual authentication only when using basic authentication. Mutual authentication is '
    'not available with OAuth 2.0." (ServiceNow docs, Outbound REST authentication)'
)
BASIC_ONLY_WORDS = (
    '"Outbound REST supports mutual authentication with basic authentication only." (ServiceNow docs, Configure a '
    "REST message); whether the instance sends its client certificate without basic authentication is not confirmed"
)
METHOD_DECIDES_WORDS = {
    True: "for a call through an HTTP method the method's own box decides: ServiceNow's RESTMessage uses no mutual "
    "authentication when the method's box is off, even when the message's is on",
    False: "ServiceNow's SOAPMessage reads mutual authentication and the protocol profile from the SOAP function "
    "alone, not from its message",
}
PROPERTY_WORDS = (
    'KB0683345: the property pair registers the scheme "with the com.glide.certificates.DBKeyStoreSocketFactory '
    "socket factory on port 443. The database key store factory is used during the SSL exchange process to offer a "
    'client certificate for mutual authentication"; KB0824494 ("No required SSL certificate was sent") and '
    "KB0683345 (bad_certificate) trace those errors to these properties"
)


@dataclass(frozen=True)
class SendingRules:
    """How a binding target's records decide whether the instance sends with mutual auth."""

    authentication: str | None = None  # the column saying how a record authenticates (on both tables)
    mid_server: str | None = None  # the function table's reference to the MID Server the call goes through
    mid_flag: str | None = None  # the message table's boolean "go through a MID Server" (HTTP connections)
    basic_only: bool = False  # REST: mutual auth "only when using basic authentication"
    profile_from_parent: bool = False  # REST: a ticked method without a profile uses its message's
    function_noun: str = "function"  # "HTTP method", "SOAP function"

    @property
    def message_columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.authentication, self.mid_flag) if c)

    @property
    def function_columns(self) -> tuple[str, ...]:
        # the MID Server's name, dot-walked, to say which one; its sys_id is what decides
        mid = (self.mid_server, f"{self.mid_server}.name") if self.mid_server else ()
        return tuple(c for c in (self.authentication, *mid) if c)


@dataclass(frozen=True)
class Sender:
    """A record a bound call goes through, as the rules see it: the message (``part`` "message") or a function."""

    part: str  # "message" or "fn:<name>"
    table: str
    name: str  # the message's name, or the function's
    enabled: bool  # its own mutual-auth tick
    profile: str  # the protocol of its profile; "" for none
    authentication: str = ""  # authentication_type as stored; "" when the table has none
    mid_server: str = ""  # the MID Server the call goes through: "MID Server 'east'", "a MID Server"; "" for none

    @property
    def is_message(self) -> bool:
        return self.part == "message"


@dataclass(frozen=True)
class Issue:
    """Why the instance would not use mutual auth (or might not) for a record, and how to fix it."""

    code: str  # stable, for scripts: mid-server, oauth2, basic-only, method-off, method-profile, no-profile, ...
    severity: Literal["error", "warning"]
    record: str  # which record, as an admin finds it: "HTTP method 'get' of REST message 'Acme' (sys_rest_message_fn)"
    message: str  # what is wrong, and ServiceNow's words for why
    fix: str


@dataclass(frozen=True)
class Bound:
    """A binding as the rules need it: what its records are called, which functions it claims, its profile."""

    label: str  # "REST message"
    rules: SendingRules
    functions: str | Sequence[str] | None  # "all", a list of names, or None (the message alone)
    profile: str  # the protocol of the binding's profile


def describe(bound: Bound, sender: Sender, message: Sender) -> str:
    if sender.is_message:
        return f"{bound.label} '{sender.name}' ({sender.table})"
    return f"{bound.rules.function_noun} '{sender.name}' of {bound.label} '{message.name}' ({sender.table})"


def _folded(names: Sequence[str]) -> set[str]:
    return {n.casefold() for n in names}


def claimed(bound: Bound, senders: Sequence[Sender]) -> tuple[list[Sender], list[Sender]]:
    """The functions the binding claims, and of those the ones it does not write itself (message-only bindings)."""
    functions = [s for s in senders if not s.is_message]
    if bound.functions == "all":
        return functions, []
    if isinstance(bound.functions, Sequence) and not isinstance(bound.functions, str):
        listed = _folded(bound.functions)
        return [f for f in functions if f.name.casefold() in listed], []
    return functions, functions


def binding_issues(bound: Bound, senders: Sequence[Sender], *, check_written: bool = False) -> list[Issue]:
    """What stops the instance from using mutual auth for the binding's calls, given its records as they are (the
    message first). ``check_written``: also the records the binding writes whose tick or profile is not the
    binding's (``verify``: the plan shows those as changes instead)."""
    message = next(s for s in senders if s.is_message)
    functions, unwritten = claimed(bound, senders)
    issues: list[Issue] = []
    if check_written:
        written = [message] + [f for f in functions if f not in unwritten]
        issues += [_not_written(bound, s, message) for s in written if not _bound_to(s, bound.profile)]
    issues += _mid_servers(bound, message, functions)
    issues += _authentication(bound, message, functions)
    issues += [i for f in unwritten if (i := _contradiction(bound, f, message)) is not None]
    return issues


def _bound_to(sender: Sender, profile: str) -> bool:
    return sender.enabled and sender.profile.casefold() == profile.casefold()


def _not_written(bound: Bound, sender: Sender, message: Sender) -> Issue:
    # A warning: verifying a keystore against the partner before applying the binding is a fair order of work.
    state = "its mutual-auth tick is off" if not sender.enabled else f"it uses profile '{sender.profile or '(none)'}'"
    return Issue(
        "not-bound",
        "warning",
        describe(bound, sender, message),
        f"{state}, where the binding wants it on with profile '{bound.profile}': until the binding is applied, the "
        "instance sends these calls without the binding's client certificate",
        "run 'mtls-config plan' to see the change and 'mtls-config apply' to make it",
    )


def _mid_servers(bound: Bound, message: Sender, functions: Sequence[Sender]) -> list[Issue]:
    out = []
    for sender in ([message] if bound.rules.mid_flag else []) + ([*functions] if bound.rules.mid_server else []):
        if not sender.mid_server:
            continue
        column = bound.rules.mid_flag if sender.is_message else bound.rules.mid_server
        out.append(
            Issue(
                "mid-server",
                "error",
                describe(bound, sender, message),
                f"goes through {sender.mid_server} ({column}): mutual auth does not work through a MID "
                f"Server, the call goes out without the client certificate. {MID_SERVER_WORDS}",
                f"clear {column} on the record so that the instance sends the call itself, or do not bind it: a call "
                "that must go through a MID Server cannot use the instance's protocol profile",
            )
        )
    return out


def _authentication(bound: Bound, message: Sender, functions: Sequence[Sender]) -> list[Issue]:
    column = bound.rules.authentication
    if column is None:
        return []
    out: list[Issue] = []
    inheriting = [f for f in functions if f.authentication == INHERIT]
    # The message's own authentication matters through the functions that inherit it (or alone, without functions).
    if message.authentication and (inheriting or not functions):
        issue = _authentication_issue(bound, message, message, inheriting)
        if issue is not None:
            out.append(issue)
    for f in functions:
        if f.authentication and f.authentication != INHERIT:
            issue = _authentication_issue(bound, f, message, [])
            if issue is not None:
                out.append(issue)
    return out


def _authentication_issue(bound: Bound, sender: Sender, message: Sender, inheriting: Sequence[Sender]) -> Issue | None:
    column = bound.rules.authentication
    kind = sender.authentication
    heirs = ""
    if inheriting:
        names = ", ".join(f"'{f.name}'" for f in inheriting)
        heirs = f", and its {bound.rules.function_noun}s {names} inherit it ({column}={INHERIT})"
    where = f"the {bound.rules.function_noun}'s" if not sender.is_message else "the message's"
    if kind == OAUTH2:
        return Issue(
            "oauth2",
            "error",
            describe(bound, sender, message),
            f"uses OAuth 2.0 ({column}={OAUTH2}){heirs}: mutual auth is not available with OAuth 2.0. {OAUTH2_WORDS}",
            f"set {where} authentication type to Basic, or do not bind it; to send the OAuth token request itself "
            "with the client certificate, bind the OAuth provider (message: {type: oauth, name: ...})",
        )
    if bound.rules.basic_only and kind not in BASIC:
        return Issue(
            "basic-only",
            "warning",
            describe(bound, sender, message),
            f"uses {column}={kind}, not basic authentication{heirs}. {BASIC_ONLY_WORDS}",
            f"set {where} authentication type to Basic if the partner accepts it, and check a real call",
        )
    return None


def _contradiction(bound: Bound, sender: Sender, message: Sender) -> Issue | None:
    why = METHOD_DECIDES_WORDS[bound.rules.profile_from_parent]
    fix = (
        f"bind it too (functions: all, or list '{sender.name}'), or tick its own box with profile '{bound.profile}'; "
        f"list the functions the binding should cover to leave the others out of it"
    )
    record = describe(bound, sender, message)
    if not sender.enabled:
        return Issue(
            "method-off",
            "error",
            record,
            f"has its own mutual-auth tick off while the binding covers the message alone: {why}, so calls "
            "through it go out without the client certificate",
            fix,
        )
    if not sender.profile:
        if bound.rules.profile_from_parent:
            return None  # a ticked method without a profile uses its message's, the binding's
        return Issue(
            "no-profile",
            "error",
            record,
            f"has mutual auth ticked but no protocol profile: {why}, so it has no client certificate to present",
            fix,
        )
    if sender.profile.casefold() != bound.profile.casefold():
        return Issue(
            "method-profile",
            "error",
            record,
            f"uses its own protocol profile '{sender.profile}', not the binding's '{bound.profile}': {why}, so calls "
            "through it present that profile's keystore",
            fix,
        )
    return None


def property_issues(protocol: str, port: int | None, properties: Mapping[str, str]) -> list[Issue]:
    """The ``glide.httpclient.protocol.<protocol>.class`` / ``.port`` properties that exist and do not match the
    profile (warnings; never fixed by the tool). ``properties``: name -> value. An empty value is as good as none
    (KB0683345: "Setting the properties to empty ... resolves the problem")."""
    by_name = {name.casefold(): (name, value) for name, value in properties.items()}
    out: list[Issue] = []
    wanted = {"class": SOCKET_FACTORY, "port": None if port is None else str(port)}
    for suffix, expected in wanted.items():
        found = by_name.get(f"{PROPERTY_PREFIX}{protocol}.{suffix}".casefold())
        if found is None or expected is None:
            continue
        name, value = found
        if not value.strip() or _same_property(suffix, value, expected):
            continue
        should = f"the profile's default_port {expected}" if suffix == "port" else expected
        out.append(
            Issue(
                "protocol-property",
                "warning",
                f"system property {name} (sys_properties)",
                f"is '{value.strip()}', not {should}: the instance's HTTP client sends '{protocol}://' URLs as the "
                f"property says, not as the protocol profile does. {PROPERTY_WORDS}",
                f"set it to {expected}, or export both glide.httpclient.protocol.{protocol}.* properties to XML as a "
                "backup and delete them (KB0824494); mtls-config never changes them",
            )
        )
    return out


def _same_property(suffix: str, value: str, expected: str) -> bool:
    text = value.strip()
    if suffix == "port":
        return text.isdigit() and int(text) == int(expected)
    return text == expected
