"""Emulator settings: one frozen value handed to ``create_app``; every inferred ([I]) behaviour is a field here.

Must never import: the client, the engine, the keystore package, the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_USERS: Mapping[str, tuple[str, tuple[str, ...]]] = {"admin": ("admin", ("admin",))}


@dataclass(frozen=True)
class Faults:
    """Load and failure injection, changeable at run time through ``PATCH /_emulator/faults``.

    Faults apply to the instance's API only, never to ``/_emulator`` endpoints, and are drawn from a random
    generator seeded with ``EmulatorConfig.random_seed`` so that a run can be replayed.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fail_rate: float = 0.0  # fraction of requests answered with a 5xx before they reach the backend
    fail_statuses: tuple[int, ...] = (503,)
    drop_rate: float = 0.0  # fraction of connections dropped before the request reaches the backend
    lost_response_rate: float = 0.0  # fraction processed by the backend, then dropped: the write happened
    rate_limit: int | None = None  # requests allowed per window (all users together)
    rate_limit_window_s: float = 3600.0
    # "TABLE.FIELD": a write answers 200/201 but that field keeps its value (a field ACL, a business rule, ...)
    ignore_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulated instance. All fields have defaults: ``EmulatorConfig()`` is a fresh,
    seeded, in-memory instance with the user admin/admin."""

    db_path: Path | None = None  # None: in memory; else SQLite (stdlib), seeded when new and seed_data is set
    seed_data: bool = True
    users: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=lambda: dict(DEFAULT_USERS))
    oauth_clients: Mapping[str, str] = field(default_factory=dict)  # client_id -> client_secret
    oauth_client_credentials_user: str = "admin"  # the user a client_credentials token acts as
    oauth_token_lifetime_s: int = 1800
    oauth_refresh_token_lifetime_s: int = 8_640_000

    # faults and load
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fail_rate: float = 0.0
    fail_statuses: tuple[int, ...] = (503,)
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    rate_limit: int | None = None
    rate_limit_window_s: float = 3600.0
    ignore_fields: tuple[str, ...] = ()
    random_seed: int = 0

    # Batch API limits: requests past either limit are returned in unserviced_requests
    batch_max_requests: int | None = None
    batch_max_seconds: float | None = None

    # Guards of a served emulator (docs/emulator.md, "Limits"): what one request may cost it.
    allowed_hosts: tuple[str, ...] = ()  # names a served instance also answers for, besides its address
    max_request_bytes: int = 16 * 1024 * 1024  # a request body (Table and Batch API, control); beyond: 413
    max_attachment_bytes: int = 32 * 1024 * 1024  # an attachment upload's body; beyond: 413
    request_log_size: int = 10_000  # the request log keeps the latest entries only
    max_query_terms: int = 1000  # conditions (and ORDERBYs) in one encoded query; beyond: 400
    max_query_groups: int = 100  # ^NQ groups in one encoded query
    max_in_members: int = 10_000  # values of one IN / NOT IN list

    # How the instance treats what it does not know or compare (facts-2 §7): each a switch, the default the
    # instance's behaviour.
    drop_unknown_fields: bool = True  # unknown fields in a POST/PATCH body are dropped silently; False: 400
    text_match_ignores_case: bool = True  # =, !=, IN, STARTSWITH, LIKE... compare text case-insensitively
    absent_columns: tuple[str, ...] = ()  # "TABLE.COLUMN" the instance lacks (an older release, say)

    # Behaviours the reference marks [I] inferred: each a switch, the default being our best guess.
    auto_create_get_method: bool = True  # inserting a sys_rest_message creates its "Default GET" function
    list_without_read_role: Literal["filter", "403"] = "filter"  # list of a table the user cannot read
    password2_read: Literal["empty", "masked", "ciphertext"] = "ciphertext"  # what GET shows for password2
    password2_write_needs_input_display_value: bool = False  # True: writes without the flag are not saved
    v1_empty_list_404: bool = True  # /api/now/v1/table/... answers 404 when a list query matches nothing
    create_protocol_properties: bool = False  # True: saving a profile writes glide.httpclient.protocol.<p>.*
    invalid_query_returns_no_rows: bool = False  # glide.invalid_query.returns_no_rows
    enforce_keystore_reference_type: bool = True  # profile.keystore must be a key_store/pkcs12_key_store
    refuse_inactive_keystore_reference: bool = False  # True: a profile may not name an inactive keystore
    over_max_length: Literal["truncate", "reject"] = "truncate"  # a string longer than its column: cut silently
    # an insert carrying the sys_id of an existing record: refused (400), or taken as an update of that record
    duplicate_sys_id: Literal["reject", "overwrite"] = "reject"
    # sys_user_has_role rows a user without admin reads: its own, everyone's, or none (facts-2 §10: unconfirmed)
    user_roles_read: Literal["own", "all", "none"] = "own"
    user_password_needs_input_display_value: bool = True  # else a plain user_password write is hashed too
    # http_connection's "Mutual authentication" and "Protocol profile" columns: names unconfirmed (facts-2 §3)
    connection_mutual_auth_columns: tuple[str, str] = ("mutual_auth", "protocol_profile")
    # The instance's build, as stock sys_properties records (the names are those clients read, the values ours) [I]
    build_properties: tuple[tuple[str, str], ...] = (
        ("glide.buildtag", "glide-mtls-config-emulator"),
        ("glide.war", "glide-mtls-config-emulator.zip"),
        ("glide.buildname", "mtls-config emulator"),
    )

    def faults(self) -> Faults:
        return Faults(
            latency_ms=self.latency_ms,
            latency_jitter_ms=self.latency_jitter_ms,
            fail_rate=self.fail_rate,
            fail_statuses=self.fail_statuses,
            drop_rate=self.drop_rate,
            lost_response_rate=self.lost_response_rate,
            rate_limit=self.rate_limit,
            rate_limit_window_s=self.rate_limit_window_s,
            ignore_fields=self.ignore_fields,
        )
