"""``mtls-config verify``: a real mutual-TLS handshake and one HTTP request, with a diagnosis when it fails.

Thin: parse the options, resolve the targets (``mtls_config.verify.resolve``), run, render text or JSON, exit
0 when every target passed and 1 otherwise.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from mtls_config.cli.console import EXIT_ERROR, EXIT_OK, print_json, report_errors, stdout
from mtls_config.cli.interrupt import run_command
from mtls_config.cli.keystore import PasswordEnv, PasswordFile, resolve_secret
from mtls_config.cli.options import JsonAlias, TextOrJson, chosen_format
from mtls_config.cli.reconcile import CaBundleOpt, EnvOpt, InsecureOpt, InstanceOpt
from mtls_config.cli.target import connect
from mtls_config.errors import MtlsConfigError, VerifyError
from mtls_config.literal import visible
from mtls_config.spec.loader import SpecSet
from mtls_config.spec.models import MessageBinding
from mtls_config.spec.stack import find_project
from mtls_config.verify import DEFAULT_TIMEOUT, Severity, Status, VerifyReport
from mtls_config.verify.resolve import (
    LazySpecs,
    OnInstance,
    Unresolved,
    binding_targets,
    endpoint_target,
    endpoints_of,
    trust_set,
)
from mtls_config.verify.targets import VerifyTarget, run_targets
from mtls_config.wording import plural


class TlsVersion(StrEnum):
    v12 = "1.2"
    v13 = "1.3"


class JavaParity(StrEnum):
    fail = "fail"
    warn = "warn"


TLS_VERSIONS = {TlsVersion.v12: ssl.TLSVersion.TLSv1_2, TlsVersion.v13: ssl.TLSVersion.TLSv1_3}
MARKS = {
    Status.OK: ("ok", "green"),
    Status.WARN: ("warn", "yellow"),
    Status.FAIL: ("FAIL", "bold red"),
    Status.SKIPPED: ("-", "dim"),
    Status.UNKNOWN: ("?", "yellow"),
}


@report_errors
def verify(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[BINDING_NAME] [PATHS]...",
            help="A MessageBinding's name, then spec files or folders (default: the project's specs). "
            "With --all, every argument is a path.",
            show_default=False,
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", metavar="URL", help="https://host[:port]/path to verify (default: the binding's)."),
    ] = None,
    keystore: Annotated[
        str | None,
        typer.Option(
            "--keystore",
            metavar="NAME|FILE",
            help="A KeyStore spec's name or a JKS/PKCS12 file (default: the binding's profile's keystore).",
        ),
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            metavar="NAME|FILE",
            help="A TrustStoreCert spec's name or a PEM/DER file. Repeatable. Default: every active TrustStoreCert.",
        ),
    ] = None,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    all_bindings: Annotated[
        bool, typer.Option("--all", help="Verify every MessageBinding in the specs, concurrently.")
    ] = False,
    server_name: Annotated[
        str | None,
        typer.Option(
            "--server-name",
            metavar="NAME",
            help="Check the server certificate (and send SNI) for NAME "
            "while dialling the URL's host, e.g. an IP address.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.1,
            max=300,
            metavar="SECONDS",
            help="Seconds allowed for each stage, and for reading the bindings' endpoints from the instance.",
        ),
    ] = DEFAULT_TIMEOUT,
    tls: Annotated[
        list[TlsVersion] | None,
        typer.Option(
            "--tls", metavar="|".join(TlsVersion), help="Allowed TLS version. Repeatable. Default: 1.2 and 1.3."
        ),
    ] = None,
    java_parity: Annotated[
        JavaParity,
        typer.Option(
            "--java-parity",
            metavar="|".join(JavaParity),
            help="When the instance (Java) would send no certificate: fail or warn.",
        ),
    ] = JavaParity.fail,
    system_trust: Annotated[
        bool,
        typer.Option(
            "--system-trust",
            help="Also trust this machine's CA bundle (public CAs), not only the specs' TrustStoreCerts.",
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, metavar="N", help="Parallel handshakes (--all).")
    ] = 8,
    output_format: Annotated[
        TextOrJson,
        typer.Option("--format", "-f", metavar="text|json", help="text, or json (one report per binding with --all)."),
    ] = "text",
    json_alias: JsonAlias = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also show the certificates the server presented (subject, issuer, expiry, SHA-256).",
        ),
    ] = False,
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
) -> None:
    """Prove the mutual-TLS set-up works: a real TLS handshake with the keystore's key against the partner
    endpoint, then one real HTTP request; reports each stage (dns, connect, tls, client-cert, http) and, when
    it fails, why and how to fix it. Checks what the instance (Java) would do differently: it sends no
    certificate when none of our chain's issuers is in the server's CA list.

    Exit 0 when every target passed, 1 otherwise.

    Examples:
      mtls-config verify acme-payments
      mtls-config verify --all specs/
      mtls-config verify --endpoint https://api.partner.example/v1 --keystore client.jks --password-env KS_PW --trust partner-ca.pem
    """
    _verify(
        args or [],
        endpoint=endpoint,
        keystore=keystore,
        trust=trust,
        password_env=password_env,
        password_file=password_file,
        all_bindings=all_bindings,
        options={
            "server_name": server_name,
            "timeout": timeout,
            "tls_versions": tuple(TLS_VERSIONS[v] for v in (tls or [TlsVersion.v12, TlsVersion.v13])),
            "java_parity": java_parity.value,
            "system_trust": system_trust,
        },
        concurrency=concurrency,
        json_output=chosen_format(output_format, json_alias) == "json",
        verbose=verbose,
        instance_options={
            "instance": instance,
            "env": env,
            "insecure": insecure,
            "ca_bundle": ca_bundle,
            "timeout": timeout,
        },
    )


def _verify(
    args: list[str],
    *,
    endpoint: str | None,
    keystore: str | None,
    trust: list[str] | None,
    password_env: str | None,
    password_file: Path | None,
    all_bindings: bool,
    options: dict[str, Any],
    concurrency: int,
    json_output: bool,
    instance_options: dict[str, Any],
    verbose: bool = False,
) -> None:
    password = resolve_secret(password_env, password_file, "keystore password")
    binding: str | None = None
    paths = [Path(a) for a in args]
    if not all_bindings and args and not Path(args[0]).exists():
        binding, paths = args[0], paths[1:]
    if all_bindings and (binding or endpoint):
        raise MtlsConfigError("--all verifies every binding; do not name one or give --endpoint")
    if binding is None and endpoint is None and not all_bindings:
        raise MtlsConfigError(
            "nothing to verify", hint="name a binding, give --endpoint https://host[:port]/path, or use --all"
        )
    if options["server_name"] and all_bindings:
        raise MtlsConfigError("--server-name applies to one endpoint, not to --all")

    specs = LazySpecs(paths, instance_options.get("env"))
    trust_items = trust_set(trust, specs)

    def read_endpoints(bindings: Sequence[MessageBinding]) -> Mapping[str, OnInstance]:
        return run_command(_read_endpoints(bindings, specs.get(), instance_options))

    items: list[VerifyTarget | Unresolved]
    if all_bindings:
        names = [b.name for b in specs.get().message_bindings]
        if not names:
            raise VerifyError("no MessageBinding in the specs to verify")
        items = binding_targets(
            names, specs.get(), keystore, trust_items, password, None, read_endpoints, keep_going=True
        )
    elif binding is not None:
        items = binding_targets(
            [binding], specs.get(), keystore, trust_items, password, endpoint, read_endpoints, keep_going=False
        )
    else:
        items = [endpoint_target(endpoint or "", keystore, trust_items, password, specs)]
    resolved = [i for i in items if isinstance(i, VerifyTarget)]
    reports = iter(run_command(run_targets(resolved, concurrency=concurrency, **options)))
    results = [next(reports) if isinstance(i, VerifyTarget) else i.error for i in items]
    _render(results, items, json_output, all_bindings, verbose=verbose)
    if not all(isinstance(r, VerifyReport) and r.ok for r in results):
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_OK)


async def _read_endpoints(
    bindings: Sequence[MessageBinding], specs: SpecSet, instance_options: dict[str, Any]
) -> Mapping[str, OnInstance]:
    async with connect(
        instance_options["instance"],
        env_name=instance_options["env"],
        project=find_project(specs.files[:1]),
        insecure=instance_options["insecure"],
        ca_bundle=instance_options["ca_bundle"],
        timeout=instance_options["timeout"],
    ) as client:
        return await endpoints_of(client, bindings, {p.name: p.spec.port for p in specs.protocol_profiles})


# --- rendering --------------------------------------------------------------------------------------------------


def _render(
    results: Sequence[VerifyReport | MtlsConfigError],
    targets: Sequence[VerifyTarget | Unresolved],
    json_output: bool,
    many: bool,
    *,
    verbose: bool = False,
) -> None:
    if json_output:
        items = [_json_item(r, t) for r, t in zip(results, targets, strict=True)]
        if many:
            print_json({"ok": all(i["ok"] for i in items), "results": items})
        else:
            print_json(items[0])
        return
    out = stdout()
    for result, target in zip(results, targets, strict=True):
        if not isinstance(result, VerifyReport) or not isinstance(target, VerifyTarget):
            out.print(Text.assemble(("FAIL", "bold red"), _shown(f"  {target.name}: {result}")))
            continue
        _render_report(result, target, verbose=verbose)
    if many:
        passed = sum(1 for r in results if isinstance(r, VerifyReport) and r.ok)
        out.print(f"{passed}/{len(results)} passed", markup=False)


def _json_item(result: VerifyReport | MtlsConfigError, target: VerifyTarget | Unresolved) -> dict[str, Any]:
    if not isinstance(result, VerifyReport) or not isinstance(target, VerifyTarget):
        return {"target": target.name, "ok": False, "error": str(result)}
    return result.to_dict() | {
        "endpoint_source": target.endpoint_source,
        "keystore": target.identity.source,
        "alias": target.identity.alias,
        "trust": list(target.trust.sources),
    }


def _shown(text: object) -> str:
    """Text for the terminal: the report quotes the server (status line, names, alerts), and a control
    character from it (ESC, BEL, C1 CSI) must be seen, not obeyed."""
    return visible(text)


def _render_report(report: VerifyReport, target: VerifyTarget, *, verbose: bool = False) -> None:
    out = stdout()
    dialled = f" (as {report.server_name})" if report.server_name != report.host else ""
    head = "PASS" if report.ok else "FAIL"
    out.print(
        Text.assemble(
            (head, "bold green" if report.ok else "bold red"), _shown(f"  {report.target}  {report.url}{dialled}")
        )
    )
    trust = ", ".join(target.trust.sources) or "none"
    out.print(
        _shown(
            f"  endpoint from {target.endpoint_source}; key from {target.identity.source} "
            f"(alias {target.identity.alias}); trust: {trust}"
        ),
        markup=False,
    )
    for stage in report.stages:
        mark, style = MARKS[stage.status]
        took = f"  {stage.duration_ms:.0f} ms" if stage.duration_ms is not None else ""
        out.print(Text.assemble("  ", (f"{mark:<5}", style), _shown(f"{stage.name.value:<12}{stage.summary}{took}")))
    if verbose and report.server_chain:
        out.print(f"  the server presented {plural(len(report.server_chain), 'certificate')}:", markup=False)
        for index, cert in enumerate(report.server_chain):
            out.print(_shown(f"    [{index}] {cert.subject}"), markup=False)
            out.print(_shown(f"        issuer {cert.issuer}; until {cert.not_after}"), markup=False)
            out.print(f"        sha256 {cert.sha256}", markup=False)
    if report.client_cert.ca_names:
        out.print("  server accepts client certificates from:", markup=False)
        for name in report.client_cert.ca_names:
            out.print(_shown(f"    {name}"), markup=False)
    for finding in report.findings:
        label = "error" if finding.severity is Severity.FAIL else "warning"
        rule = f" [{finding.rule}]" if finding.rule else ""
        out.print(
            Text.assemble(
                ("  " + label, "bold red" if label == "error" else "yellow"),
                _shown(f" {finding.code}{rule}: {finding.message}"),
            )
        )
        out.print(Text.assemble(("    fix: ", "cyan"), _shown(finding.fix)))


def register(app: typer.Typer) -> None:
    app.command()(verify)
