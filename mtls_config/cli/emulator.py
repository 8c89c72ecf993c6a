"""``mtls-config emulator``: serve, seed or reset a local emulated ServiceNow instance."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from mtls_config.cli.console import fail, report_errors, stdout
from mtls_config.secrets import SecretRef

# The emulator (starlette, uvicorn, sqlite) is imported by the commands that run it, so that the rest of the
# CLI starts without it.

emulator_app = typer.Typer(
    name="emulator",
    help="A local emulated ServiceNow instance (Table, Attachment and Batch APIs) for trying mtls-config and for tests.",
    no_args_is_help=True,
)

DbOption = Annotated[Path, typer.Option("--db", metavar="FILE", help="SQLite file holding the instance's state.")]


@emulator_app.command("serve")
@report_errors
def serve(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on. Non-loopback needs --user and --password-env.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8080,
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS with a fresh self-signed certificate.")] = False,
    db: Annotated[
        Path | None, typer.Option("--db", metavar="FILE", help="SQLite file for the state (default: in memory).")
    ] = None,
    seed: Annotated[bool, typer.Option("--seed/--no-seed", help="Seed a new instance with users and messages.")] = True,
    latency_ms: Annotated[float, typer.Option("--latency-ms", metavar="MS", help="Added latency per request.")] = 0.0,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", metavar="N", help="Requests allowed per hour (429 beyond).")
    ] = None,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", metavar="FRACTION", help="Fraction of requests answered 503.")
    ] = 0.0,
    user: Annotated[
        str | None, typer.Option("--user", metavar="NAME", help="The user the instance accepts (role admin).")
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", metavar="VAR", help="Environment variable holding --user's password."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Another name clients reach the server by (its Host header; repeatable). Others are refused.",
        ),
    ] = None,
    ignore_field: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-field",
            metavar="TABLE.FIELD",
            help="A field whose writes answer 200/201 but do not stick (a fault; repeatable).",
        ),
    ] = None,
    absent_column: Annotated[
        list[str] | None,
        typer.Option(
            "--absent-column",
            metavar="TABLE.COLUMN",
            help="A column the instance lacks, as an older release would (repeatable).",
        ),
    ] = None,
    strict_fields: Annotated[
        bool, typer.Option("--strict-fields", help="Refuse unknown fields in writes (400) instead of dropping them.")
    ] = False,
    case_sensitive_text: Annotated[
        bool, typer.Option("--case-sensitive-text", help="Compare text in queries case-sensitively.")
    ] = False,
) -> None:
    """Serve an emulated instance until interrupted (Ctrl-C).

    Example: mtls-config emulator serve --port 8443 --tls --db .mtls-config/emulator.db
    """
    from mtls_config.emulator import EmulatorConfig, create_app
    from mtls_config.emulator.config import DEFAULT_USERS
    from mtls_config.emulator.server import is_loopback, write_self_signed
    from mtls_config.emulator.server import serve as serve_app

    if (user is None) != (password_env is None):
        raise fail("--user and --password-env go together")
    if not is_loopback(host) and user is None:
        raise fail(
            f"refusing to serve on {host} with the default admin/admin user",
            hint="give --user NAME --password-env VAR, or serve on 127.0.0.1",
        )
    users = dict(DEFAULT_USERS)
    shown = "admin / admin"
    if user is not None and password_env is not None:
        password = SecretRef(from_env=password_env).resolve()
        try:
            users = {user: (password.reveal_text(), ("admin",))}
        except UnicodeDecodeError:
            raise fail(f"the password in {password_env} is not UTF-8 text") from None
        shown = f"{user} / (password from ${password_env})"
    config = EmulatorConfig(
        db_path=db,
        seed_data=seed,
        users=users,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        fail_rate=fail_rate,
        allowed_hosts=tuple(allow_host or ()),
        ignore_fields=tuple(ignore_field or ()),
        absent_columns=tuple(absent_column or ()),
        drop_unknown_fields=not strict_fields,
        text_match_ignores_case=not case_sensitive_text,
    )
    try:
        app = create_app(config)
    except ValueError as exc:
        raise fail(str(exc)) from None
    out = stdout()
    with tempfile.TemporaryDirectory(prefix="mtls-emulator-") as folder:
        tls_files = write_self_signed(Path(folder), host) if tls else None
        url = f"{'https' if tls else 'http'}://{host}:{port}"
        out.print(f"emulated instance: {url}", markup=False)
        out.print(f"user: {shown}", markup=False)
        if tls_files is not None:
            out.print(f"CA bundle (trust it for TLS): {tls_files.certificate}", markup=False)
        out.print(f"state: {db if db else 'in memory'}; Ctrl-C to stop", markup=False)
        serve_app(app, host=host, port=port, tls=tls_files)


@emulator_app.command("seed")
@report_errors
def seed_command(db: DbOption) -> None:
    """Add the seed users and REST/SOAP messages (those missing) to an instance's state file.

    Example: mtls-config emulator seed --db .mtls-config/instance.db
    """
    from mtls_config.emulator import EmulatorConfig
    from mtls_config.emulator.models import Backend

    backend = Backend(EmulatorConfig(db_path=db, seed_data=False))
    try:
        backend.seed()
    finally:
        backend.close()
    stdout().print(f"seeded {db}", markup=False)


@emulator_app.command("reset")
@report_errors
def reset_command(
    db: DbOption,
    seed: Annotated[bool, typer.Option("--seed/--no-seed", help="Seed it again after emptying it.")] = True,
) -> None:
    """Empty an instance's state file (every record and attachment), then seed it again.

    Example: mtls-config emulator reset --db .mtls-config/instance.db
    """
    from mtls_config.emulator import EmulatorConfig
    from mtls_config.emulator.models import Backend

    backend = Backend(EmulatorConfig(db_path=db, seed_data=False))
    try:
        backend.reset(seed=seed)
    finally:
        backend.close()
    stdout().print(f"reset {db}{' and seeded it' if seed else ''}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(emulator_app)
