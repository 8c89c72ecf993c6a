"""Renderings of plans, drift reports and apply results: rich ``Text`` for terminals, JSON, JUnit XML, Markdown,
OpenMetrics (drift, for Prometheus).

Returns values; never prints (the CLI does). Sensitive values are already masked in the plan; nothing
here ever sees a secret. Every value that comes from a spec, a certificate or the instance (names, addresses,
reasons, messages, field values) is rendered literally: escaped with ``literal.visible`` in text and XML (rich's
Text would drop some control characters silently, XML 1.0 cannot hold them), as a code span or escaped text
in Markdown, as JSON strings by ``json``, and as escaped label values in OpenMetrics.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree as ET

from rich.text import Text

from mtls_config.changes import ApplyResult, Status
from mtls_config.diff import expiry_time
from mtls_config.errors import Interrupted
from mtls_config.literal import visible
from mtls_config.plan import Plan, PlannedField, ResourceChange, summary_line
from mtls_config.resources.registry import NAMES as KIND_NAMES
from mtls_config.wording import plural

SYMBOLS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "replace": ("-/+", "magenta"),
    "delete": ("-", "red"),
    "no-op": (" ", "dim"),
}
SEVERITY = {"error": ("✗", "bold red"), "warning": ("!", "yellow"), "info": ("i", "cyan")}


def _value(value: Any) -> str:
    """A field value as JSON (a string quoted), its controls escaped (JSON leaves DEL, C1 and U+2028 as they are)."""
    if isinstance(value, str):
        return visible(json.dumps(value, ensure_ascii=False))
    if value is None:
        return "(none)"
    return visible(json.dumps(value, sort_keys=True, ensure_ascii=False))


# How a changed field names its sides: the instance's value and the spec's. A plan reads "instance X -> spec Y"
# (apply makes the instance's value the spec's); a drift report "instance X, spec Y" (the instance drifted from
# the spec). A create has only the spec's side, a delete only the instance's.
PLAN_SIDES = " -> "
DRIFT_SIDES = ", "
SENSITIVE = "(sensitive: not shown)"


def field_sides(
    f: PlannedField, action: str, *, between: str = PLAN_SIDES, value: Callable[[Any], str] | None = None
) -> str:
    """The field's values with their sides named: ``instance 443 -> spec 8443`` (``between`` joins them;
    ``value`` renders one, by default as JSON, escaped)."""
    shown = value or _value
    if f.sensitive:
        if action == "create":
            return f"spec {SENSITIVE}"
        if action == "delete":
            return f"instance {SENSITIVE}"
        return f"instance and spec differ {SENSITIVE}"
    if action == "create":
        return f"spec {shown(f.after)}"
    if action == "delete":
        return f"instance {shown(f.before)}"
    return f"instance {shown(f.before)}{between}spec {shown(f.after)}"


FIELD_SYMBOLS = {"create": ("+", "green"), "delete": ("-", "red")}


def _field_line(f: PlannedField, action: str, *, between: str = PLAN_SIDES) -> Text:
    symbol, style = FIELD_SYMBOLS.get(action, ("~", "yellow"))
    line = Text("      ")
    line.append(f"{symbol} {visible(f.field)}", style).append(f": {field_sides(f, action, between=between)}")
    return line


def _change(c: ResourceChange, verbose: bool, values: bool = True) -> Text:
    symbol, style = SYMBOLS[c.action]
    out = Text("  ")
    out.append(f"{symbol} {visible(c.address)}", style=f"bold {style}" if c.action != "no-op" else style)
    label = "adopt" if c.importing and c.action == "update" else c.action
    if c.action != "no-op" or verbose:
        out.append(f"  ({label}" + (f": {visible(c.reason)}" if c.reason else "") + ")", style="dim")
    if c.action == "no-op" or not values:
        return out
    for f in c.changed_fields:
        out.append("\n").append_text(_field_line(f, c.action))
    info = {k: v for k, v in c.info.items() if v not in (None, "")}
    if info:
        details = ", ".join(f"{visible(k)}: {visible(v)}" for k, v in sorted(info.items()))
        out.append("\n      ").append(f"(known: {details})", style="dim")
    return out


# A plan of more changes than this lists its creates and deletes by name, one line each: their values are the
# specs (or the record going away), and thousands of them are pages nobody reads. Updates and replaces always
# show their changed fields; --verbose (``verbose=True``) lists everything, unchanged resources included.
LISTING_LIMIT = 50


def plan_text(plan: Plan, *, verbose: bool = False, title: str = "Plan") -> Text:
    """What a person reads: the changes and a summary. Unchanged resources are counted, not listed, and in a
    plan of more than ``LISTING_LIMIT`` changes creates and deletes are listed by name; ``verbose`` is the full
    listing (every resource, every field)."""
    out = _plan_head(plan, title)
    changes = [c for c in plan.resource_changes if c.action != "no-op"]
    by_name = not verbose and len(changes) > LISTING_LIMIT
    shown = plan.resource_changes if verbose else changes
    if shown:
        out.append("\n")
        for c in shown:
            values = not (by_name and c.action in ("create", "delete"))
            out.append_text(_change(c, verbose, values)).append("\n")
    left_out = []
    if not verbose and changes and plan.summary.no_op:
        left_out.append(f"{plural(plan.summary.no_op, 'unchanged resource')} not listed")
    if by_name and any(c.action in ("create", "delete") for c in changes):
        left_out.append(f"creates and deletes listed by name (more than {LISTING_LIMIT} changes)")
    if left_out:
        out.append("\n  " + "; ".join(left_out) + ": --verbose lists every resource and field.\n", style="dim")
    return _plan_tail(out, plan, title)


def plan_summary(plan: Plan, *, title: str = "Plan") -> Text:
    """A plan without its listing: what apply says of a plan reviewed already (or not to be reviewed), its
    findings and the summary line."""
    return _plan_tail(_plan_head(plan, title), plan, title)


def _plan_head(plan: Plan, title: str) -> Text:
    out = Text()
    out.append(f"{title} for stack ", style="bold").append(visible(plan.stack), style="bold cyan")
    out.append(" on ", style="bold").append(visible(plan.instance), style="bold cyan").append("\n")
    return out


def _plan_tail(out: Text, plan: Plan, title: str) -> Text:
    if plan.findings:
        out.append("\n")
        for f in plan.findings:
            sym, style = SEVERITY[f.severity]
            out.append(f"  {sym} {visible(f.address)}: ", style=style).append(visible(f.message))
            if f.hint:
                out.append(f"\n      hint: {visible(f.hint)}", style="dim")
            out.append("\n")
    out.append("\n")
    if plan.has_changes:
        out.append(f"{title}: ", style="bold").append(summary_line(plan) + ".")
    elif plan.errors:  # "no changes" would say the instance matches: it cannot be known where the plan failed
        out.append("Nothing can be applied: ", style="bold red").append(
            f"the plan has {plural(len(plan.errors), 'error')} (above)."
        )
    else:
        out.append("No changes. ", style="bold green").append(
            f"The instance matches the specs ({plural(plan.summary.no_op, 'resource')})."
        )
    return out


OUTCOME_STYLES: dict[Status, str] = {
    "applied": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "interrupted": "bold yellow",
    "not applied": "yellow",
}


def _outcomes(result: ApplyResult, *, applied: bool = True) -> Text:
    """One line per outcome (with its message and hint); ``applied`` False leaves the applied ones out."""
    out = Text()
    width = max((len(o.status) for o in result.outcomes), default=8)
    for o in result.outcomes:
        if o.status == "applied" and not applied:
            continue
        out.append(f"  {o.status:{max(width, 8)}} ", style=OUTCOME_STYLES[o.status])
        out.append(f"{o.action:8} {visible(o.address)}")
        if o.message:
            out.append(f"  {visible(o.message)}", style="dim")
        out.append("\n")
        if o.hint:
            out.append(f"    hint: {visible(o.hint)}\n", style="dim")
    return out


def apply_text(result: ApplyResult, *, verbose: bool = False) -> Text:
    """The results: every resource that failed or was skipped, with why; the applied ones listed when there are
    at most ``LISTING_LIMIT`` of them (or ``verbose``), else counted by action."""
    applied = [o for o in result.outcomes if o.status == "applied"]
    list_applied = verbose or len(applied) <= LISTING_LIMIT
    out = _outcomes(result, applied=list_applied)
    if not list_applied:
        actions: dict[str, int] = {}
        for o in applied:
            actions[o.action] = actions.get(o.action, 0) + 1
        counted = ", ".join(f"{n} {action}" for action, n in sorted(actions.items()))
        out.append(f"  applied  {counted} (--verbose lists them)\n", style="green")
    out.append(
        f"\nApply finished: {result.count('applied')} applied, {result.count('failed')} failed, "
        f"{result.count('skipped')} skipped.",
        style="bold" if result.ok else "bold red",
    )
    if result.journal is not None:
        out.append(f"\nJournal: {visible(result.journal)}", style="dim")
    return out


def interrupted_text(error: Interrupted, *, signal_name: str, stack: str, rerun: str) -> Text:
    """What a run a signal stopped did: for an apply, each resource applied, interrupted while being written, or
    not applied, and the journal; whether the stack's lock was given back; that ``rerun`` converges."""
    result = error.result if isinstance(error.result, ApplyResult) else None
    out = Text()
    out.append(f"interrupted ({signal_name}): {visible(error.message)}\n", style="bold red")
    if result is not None:
        out.append_text(_outcomes(result))
        counts = ", ".join(f"{result.count(status)} {status}" for status in OUTCOME_STYLES if result.count(status))
        out.append(f"\nApply interrupted: {counts or 'nothing to do'}.\n", style="bold")
        if result.journal is not None and result.journal.exists():
            out.append(f"Journal: {visible(result.journal)}\n", style="dim")
    if error.lock_released is True:
        out.append(f"The lock of stack '{stack}' was given back.\n")
    elif error.lock_released is False or (error.lock_released is None and error.stage):
        why = "interrupted again before it was given back" if error.signals > 1 else "it could not be given back"
        out.append(
            f"The lock of stack '{stack}' may still be held ({why}): it frees itself within its lease, and the next "
            "apply on this machine takes it over at once.\n"
        )
    out.append(rerun)
    return out


# -- drift -----------------------------------------------------------------------------------------


def drift_status(c: ResourceChange) -> str:
    if c.action == "create":
        return "missing"
    if c.action == "no-op":
        return "in-sync"
    return "changed"


def _drift_action(status: str) -> str:
    """The plan action a drift status came from: what says which sides a field has."""
    return {"missing": "create", "unexpected": "delete"}.get(status, "update")


def drift_report(plan: Plan, *, fail_on_expiry: bool = False) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for c in plan.resource_changes:
        resource = {
            "address": c.address,
            "kind": c.kind,
            "name": c.name,
            "status": drift_status(c),
            "reason": c.reason,
            "fields": [f.model_dump(mode="json") for f in c.changed_fields],
        }
        # a certificate's, the instance's (or, when it is missing there, the spec's): what expiry alerts watch
        resource.update({k: c.info[k] for k in ("subject", "expires") if c.info.get(k)})
        resources.append(resource)
    for f in plan.findings:
        if f.kind == "orphan":
            kind, _, name = f.address.partition("/")
            resources.append(
                {
                    "address": f.address,
                    "kind": kind,
                    "name": name,
                    "status": "unexpected",
                    "reason": f.message,
                    "fields": [],
                }
            )
    expiring = [f for f in plan.findings if f.kind == "expiry"]
    drifted = any(r["status"] != "in-sync" for r in resources) or (fail_on_expiry and bool(expiring))
    return {
        "format_version": "1",
        "instance": plan.instance,
        "stack": plan.stack,
        "drift": drifted,
        "resources": sorted(resources, key=lambda r: str(r["address"])),
        "findings": [f.model_dump(mode="json") for f in plan.findings],
    }


def drift_error_report(message: str, *, stack: str, instance: str, hint: str = "") -> dict[str, Any]:
    """The report of a drift run that failed before it could compare anything (a spec error, an unreachable
    instance, a time limit): the same shape, no resources, and the error as its one failing case, so that a CI
    publisher reading the file shows the failure instead of nothing."""
    finding = {"address": "drift check", "severity": "error", "message": message, "hint": hint, "kind": "other"}
    return {
        "format_version": "1",
        "instance": instance,
        "stack": stack,
        "drift": None,
        "error": message,
        "resources": [],
        "findings": [finding],
    }


def drift_text(report: dict[str, Any]) -> Text:
    out = Text()
    out.append("Drift check for stack ", style="bold").append(visible(report["stack"]), style="bold cyan")
    out.append(" on ", style="bold").append(visible(report["instance"]), style="bold cyan").append("\n\n")
    for r in report["resources"]:
        if r["status"] == "in-sync":
            continue
        style = {"missing": "red", "changed": "yellow", "unexpected": "magenta"}.get(r["status"], "")
        out.append(f"  {r['status']:10} ", style=f"bold {style}").append(visible(r["address"]))
        if r["reason"]:
            out.append(f"  ({visible(r['reason'])})", style="dim")
        out.append("\n")
        for f in r["fields"]:
            field = PlannedField.model_validate(f)
            out.append_text(_field_line(field, _drift_action(r["status"]), between=DRIFT_SIDES)).append("\n")
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    for f in report["findings"]:
        if f["kind"] == "expiry":
            out.append(f"  ! {visible(f['address'])}: {visible(f['message'])}\n", style="yellow")
        elif f["severity"] == "error":
            out.append(f"  ✗ {visible(f['address'])}: {visible(f['message'])}\n", style="bold red")
            if f["hint"]:
                out.append(f"      hint: {visible(f['hint'])}\n", style="dim")
    in_sync = sum(1 for r in report["resources"] if r["status"] == "in-sync")
    if out.plain.endswith("\n\n"):
        out.right_crop(1)  # nothing was listed: the summary follows the title after one blank line, not two
    if errors:
        # Exit 1: the resources above could not be checked, so "no drift" would be a claim we cannot make.
        out.append(
            f"\nDrift check failed: {plural(len(errors), 'error')}; the resources named above were not checked.",
            style="bold red",
        )
    elif report["drift"]:
        out.append(
            f"\nDrift detected ({in_sync} of {plural(len(report['resources']), 'resource')} in sync).", style="bold red"
        )
    else:
        out.append(f"\nNo drift ({plural(in_sync, 'resource')} in sync).", style="bold green")
    return out


def drift_junit(*reports: dict[str, Any], timestamp: dt.datetime | None = None, hostname: str | None = None) -> str:
    """JUnit XML in the Apache Ant format that Jenkins, GitLab, GitHub reporters and Azure read: one test suite
    per instance, one test case per resource; drift is a failure, so CI shows drifted resources as failed tests."""
    stamp = (timestamp or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S")
    host = hostname or socket.gethostname() or "localhost"
    suites = ET.Element("testsuites", name="mtls-config")
    for index, report in enumerate(reports):
        label = visible(f"{report['stack']}@{report['instance']}")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"mtls-config drift {label}",
            package=visible(f"mtls-config.{report['stack']}"),
            id=str(index),
            timestamp=stamp,
            hostname=host,
            tests="0",
            failures="0",
            errors="0",
            skipped="0",
            time="0",
        )
        properties = ET.SubElement(suite, "properties")
        for key in ("stack", "instance", "environment"):
            if key in report:
                ET.SubElement(properties, "property", name=key, value=visible(report[key]))
        # An error (the run exits 1) is a test error: a resource that could not be checked has no case otherwise.
        errors: dict[str, list[str]] = {}
        for f in report["findings"]:
            if f["severity"] == "error":
                errors.setdefault(str(f["address"]), []).append(str(f["message"]))
        cases = [(str(r["address"]), r) for r in report["resources"]]
        listed = {address for address, _ in cases}
        cases += [(address, None) for address in sorted(errors) if address not in listed]
        counts = {"tests": 0, "failures": 0, "errors": 0}
        for address, r in cases:
            classname = visible(f"mtls-config.{report['stack']}")
            case = ET.SubElement(suite, "testcase", name=visible(address), classname=classname, time="0")
            counts["tests"] += 1
            if r is not None and r["status"] != "in-sync":
                message = visible(f"{r['status']}: {r['reason']}")
                failure = ET.SubElement(case, "failure", message=message, type=str(r["status"]))
                action = _drift_action(str(r["status"]))
                failure.text = "\n".join(
                    f"{visible(f['field'])}: "
                    + field_sides(PlannedField.model_validate(f), action, between=DRIFT_SIDES)
                    for f in r["fields"]
                )
                counts["failures"] += 1
            elif address in errors:
                ET.SubElement(case, "error", message=visible("; ".join(errors[address])), type="error")
                counts["errors"] += 1
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        ET.SubElement(suite, "system-out").text = ""
        ET.SubElement(suite, "system-err").text = ""
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# -- OpenMetrics (Prometheus, node-exporter's textfile collector, a Pushgateway) -------------------------------------

DRIFT_STATUSES = ("in-sync", "changed", "missing", "unexpected")
# (name, help, unit): every family this rendering can hold, in the order it writes them. docs/recipes/monitoring.md
# and the Grafana dashboard beside it use these names.
METRICS: tuple[tuple[str, str, str], ...] = (
    (
        "mtls_config_drift_last_run_timestamp_seconds",
        "When the drift check ran, in seconds since the epoch.",
        "seconds",
    ),
    (
        "mtls_config_drift_last_run_success",
        "1 when the drift check compared every resource, 0 when it failed (exit code 1: see the job's log).",
        "",
    ),
    (
        "mtls_config_drift_detected",
        "1 when the drift check found drift (exit code 2), 0 when the instance matched the specs.",
        "",
    ),
    (
        "mtls_config_drift_resources",
        "Resources by kind and status (in-sync, changed, missing, unexpected) at the drift check.",
        "",
    ),
    (
        "mtls_config_certificate_expiration_timestamp_seconds",
        "When the certificate of a KeyStore or TrustStoreCert expires (notAfter), in seconds since the epoch.",
        "seconds",
    ),
)


def _label_value(value: object) -> str:
    """A label value in the exposition format: shown literally (``visible``, which also leaves no line break),
    then a backslash and a double quote escaped, so no name or subject can end the value or the line."""
    return visible(value).replace("\\", "\\\\").replace('"', '\\"')


def _sample(name: str, labels: dict[str, object], value: str) -> str:
    pairs = ",".join(f'{key}="{_label_value(v)}"' for key, v in labels.items())
    return f"{name}{{{pairs}}} {value}"


def drift_openmetrics(*reports: dict[str, Any], timestamp: dt.datetime | None = None) -> str:
    """The drift reports as OpenMetrics text: each run's time and outcome, drift counts per kind and status, and
    each certificate's expiry. Gauges only, no sample timestamps: node-exporter's textfile collector reads it too
    (``# UNIT`` and ``# EOF`` are comments to the Prometheus text format). A failed run says so (success 0) and
    leaves out the counts it could not take; what it could tell (certificates' expiry) is still there.

    The labels are ``stack`` and ``servicenow_instance`` (not ``instance``: Prometheus sets that to the scraped
    target, and would rename ours), ``environment`` in a fleet run, and ``kind``, ``status``, ``name``, ``subject``."""
    now = (timestamp or dt.datetime.now(dt.UTC)).timestamp()
    samples: dict[str, list[tuple[tuple[str, ...], str]]] = {name: [] for name, _, _ in METRICS}

    def add(name: str, labels: dict[str, object], value: str) -> None:
        samples[name].append((tuple(_label_value(v) for v in labels.values()), _sample(name, labels, value)))

    for report in reports:
        target: dict[str, object] = {"stack": report["stack"], "servicenow_instance": report["instance"]}
        if "environment" in report:
            target["environment"] = report["environment"]
        failed = "error" in report or any(f["severity"] == "error" for f in report["findings"])
        add("mtls_config_drift_last_run_timestamp_seconds", target, f"{now:.3f}")
        add("mtls_config_drift_last_run_success", target, "0" if failed else "1")
        if not failed:
            add("mtls_config_drift_detected", target, "1" if report["drift"] else "0")
            counts = {(kind, status): 0 for kind in KIND_NAMES for status in DRIFT_STATUSES}
            for r in report["resources"]:
                key = (str(r["kind"]), str(r["status"]))
                counts[key] = counts.get(key, 0) + 1
            for (kind, status), count in counts.items():
                add("mtls_config_drift_resources", target | {"kind": kind, "status": status}, str(count))
        for r in report["resources"]:
            when = expiry_time(str(r.get("expires") or ""))
            if when is not None:
                labels = target | {"kind": r["kind"], "name": r["name"], "subject": r.get("subject") or ""}
                add("mtls_config_certificate_expiration_timestamp_seconds", labels, str(int(when.timestamp())))
    lines: list[str] = []
    for name, help_text, unit in METRICS:
        if not samples[name]:
            continue  # an empty family is valid OpenMetrics, but not every reader of the text format takes one
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        if unit:
            lines.append(f"# UNIT {name} {unit}")
        lines += [line for _, line in sorted(samples[name])]
    return "\n".join([*lines, "# EOF"]) + "\n"


# -- Markdown (pull-request comments) --------------------------------------------------------------


# Markdown's inline punctuation that would turn data into emphasis, links, HTML, entities, strike-through or
# (on GitHub) math; a backslash before any ASCII punctuation shows it as is (CommonMark 2.4).
_MD_INLINE = re.compile(r"[\\`*_\[\]<>|~&$]")


def _md(text: object) -> str:
    """Data as Markdown prose (a table cell or a list item): shown literally, on one line."""
    return _MD_INLINE.sub(lambda m: "\\" + m.group(), visible(text))


def _md_code(text: object, *, in_table: bool = True) -> str:
    """Data as a code span, byte for byte: fenced with one more backtick than its longest run (CommonMark 6.1),
    padded when it starts or ends with one; in a table a pipe is escaped (GFM reads ``\\|`` in a cell as ``|``)."""
    body = visible(text)
    if in_table:
        body = body.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    pad = " " if body[:1] == "`" or body[-1:] == "`" else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _md_value(value: Any) -> str:
    return _md_code(_value(value))


def plan_markdown(plan: Plan) -> str:
    s = plan.summary
    lines = [
        f"### mtls-config plan: {_md_code(plan.stack, in_table=False)} on {_md_code(plan.instance, in_table=False)}",
        "",
        f"**{s.create}** to create, **{s.update}** to update, **{s.replace}** to replace, "
        f"**{s.delete}** to delete, {s.no_op} unchanged.",
        "",
    ]
    changed = [c for c in plan.resource_changes if c.action != "no-op"]
    if changed:
        lines += ["| | resource | action | changes |", "|---|---|---|---|"]
        for c in changed:
            symbol = SYMBOLS[c.action][0]
            fields = "<br>".join(
                f"{_md_code(f.field)}: {field_sides(f, c.action, between=' → ', value=_md_value)}"
                for f in c.changed_fields
            )
            label = "adopt" if c.importing and c.action == "update" else c.action
            lines.append(f"| `{symbol}` | {_md_code(c.address)} | {label} | {fields or _md(c.reason)} |")
        lines.append("")
    elif plan.errors:
        lines += [f"Nothing can be applied: the plan has {plural(len(plan.errors), 'error')} (below).", ""]
    else:
        lines += ["No changes: the instance matches the specs.", ""]
    if plan.findings:
        lines += ["| | resource | finding |", "|---|---|---|"]
        icons = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
        for f in plan.findings:
            hint = f"<br>_{_md(f.hint)}_" if f.hint else ""
            lines.append(f"| {icons[f.severity]} | {_md_code(f.address)} | {_md(f.message)}{hint} |")
        lines.append("")
    lines.append(f"<sub>plan checksum `{plan.sealed().checksum}`</sub>")
    return "\n".join(lines) + "\n"


def drift_markdown(report: dict[str, Any]) -> str:
    drifted = [r for r in report["resources"] if r["status"] != "in-sync"]
    failed = any(f["severity"] == "error" for f in report["findings"])
    lines = [
        f"### mtls-config drift: {_md_code(report['stack'], in_table=False)} on "
        f"{_md_code(report['instance'], in_table=False)}",
        "",
        ("**Drift check failed**" if failed else "**Drift detected**" if report["drift"] else "**No drift**")
        + f": {len(report['resources']) - len(drifted)} of {plural(len(report['resources']), 'resource')} in sync.",
        "",
    ]
    if drifted:
        lines += ["| resource | status | details |", "|---|---|---|"]
        for r in drifted:
            action = _drift_action(str(r["status"]))
            fields = "<br>".join(
                f"{_md_code(f['field'])}: "
                + field_sides(PlannedField.model_validate(f), action, between=DRIFT_SIDES, value=_md_value)
                for f in r["fields"]
            )
            lines.append(f"| {_md_code(r['address'])} | {r['status']} | {fields or _md(r['reason'])} |")
        lines.append("")
    for f in report["findings"]:
        if f["severity"] == "error":
            lines.append(f"- ❌ {_md_code(f['address'], in_table=False)}: {_md(f['message'])}")
    warnings = [f for f in report["findings"] if f["kind"] == "expiry"]
    for f in warnings:
        lines.append(f"- ⚠️ {_md_code(f['address'], in_table=False)}: {_md(f['message'])}")
    return "\n".join(lines) + "\n"
