"""drift --format openmetrics: parsed by the Prometheus client library's own parsers (OpenMetrics, and the text
format node-exporter's textfile collector reads) for clean, drifted, expiring and failed runs and hostile names;
--out replaces the file at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text_format

from mtls_config.cli.main import main
from mtls_config.literal import visible
from mtls_config.render import METRICS, drift_error_report, drift_openmetrics
from tests.engine.conftest import open_local, rename_soap_message, short_lived_cert

TARGET = {"stack": "two-partners-demo", "servicenow_instance": "local"}
KINDS = ("KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """The samples by metric name, from the OpenMetrics parser; the text-format parser must read the same."""
    assert text.endswith("# EOF\n")
    families = list(parse_openmetrics(text))
    assert [f.name for f in families] == [n for n, _, _ in METRICS if any(f.name == n for f in families)]
    assert all(f.type == "gauge" for f in families)
    samples: Samples = {f.name: [(dict(s.labels), s.value) for s in f.samples] for f in families}
    legacy = {f.name: [(dict(s.labels), s.value) for s in f.samples] for f in parse_text_format(text)}
    assert legacy == samples
    return samples


def one(samples: Samples, name: str, /, **labels: str) -> float:
    found = [v for ls, v in samples.get(name, []) if all(ls.get(k) == v2 for k, v2 in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def counts(samples: Samples, status: str) -> dict[str, float]:
    return {ls["kind"]: v for ls, v in samples["mtls_config_drift_resources"] if ls["status"] == status}


def not_after(path: Path) -> float:
    data = path.read_bytes()
    cert = x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)
    return cert.not_valid_after_utc.replace(microsecond=0).timestamp()


def test_a_clean_run(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    before = dt.datetime.now(dt.UTC).timestamp()
    code, out, _ = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 0
    samples = parse(out)
    assert before - 1 <= one(samples, "mtls_config_drift_last_run_timestamp_seconds", **TARGET) <= before + 60
    assert one(samples, "mtls_config_drift_last_run_success", **TARGET) == 1
    assert one(samples, "mtls_config_drift_detected", **TARGET) == 0
    assert counts(samples, "in-sync") == dict.fromkeys(KINDS, 2)
    for status in ("changed", "missing", "unexpected"):
        assert counts(samples, status) == dict.fromkeys(KINDS, 0)  # zeros too: an alert on > 0 has a series
    expiry = {ls["name"]: (ls, v) for ls, v in samples["mtls_config_certificate_expiration_timestamp_seconds"]}
    assert sorted(expiry) == [
        "Acme Payments client",
        "Acme Payments server CA",
        "Globex client",
        "Globex orders server",
    ]
    labels, value = expiry["Acme Payments server CA"]
    assert labels == {
        **TARGET,
        "kind": "TrustStoreCert",
        "name": "Acme Payments server CA",
        "subject": labels["subject"],
    }
    assert value == not_after(stack_dir / "certs" / "acme-server-ca.pem")
    assert "CN=Partner Demo Root CA" in labels["subject"]
    assert expiry["Globex orders server"][1] == not_after(stack_dir / "certs" / "globex-server.der")
    assert expiry["Acme Payments client"][0]["kind"] == "KeyStore"
    assert expiry["Acme Payments client"][1] == not_after(stack_dir / "certs" / "acme-client.pem")


def test_a_drifted_run_counts_per_kind_and_status(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: 8443"))  # changed: the spec moved

    async def delete_globex_profile() -> None:  # missing: someone deleted it on the instance
        async with open_local(stack_dir) as c:
            row = (await c.list("sys_protocol_profile", query="protocol=globexm", fields=["sys_id"]))[0]
            await c.delete("sys_protocol_profile", row["sys_id"])

    asyncio.run(delete_globex_profile())
    code, out, _ = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 2
    samples = parse(out)
    assert one(samples, "mtls_config_drift_last_run_success", **TARGET) == 1
    assert one(samples, "mtls_config_drift_detected", **TARGET) == 1
    assert one(samples, "mtls_config_drift_resources", kind="ProtocolProfile", status="changed") == 1
    assert one(samples, "mtls_config_drift_resources", kind="ProtocolProfile", status="missing") == 1
    assert one(samples, "mtls_config_drift_resources", kind="ProtocolProfile", status="in-sync") == 0
    assert counts(samples, "in-sync")["KeyStore"] == 2


def test_an_unexpected_record_is_counted(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    # a resource the stack owns, dropped from the specs: owned on the instance, in no spec
    spec = stack_dir / "resources" / "acme-payments.yaml"
    docs = spec.read_text().split("\n---\n")
    spec.write_text("\n---\n".join(d for d in docs if "kind: TrustStoreCert" not in d))
    code, out, _ = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 2, out
    samples = parse(out)
    assert one(samples, "mtls_config_drift_resources", kind="TrustStoreCert", status="unexpected") == 1
    assert one(samples, "mtls_config_drift_resources", kind="TrustStoreCert", status="in-sync") == 1


def test_an_expiring_certificate(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stack_dir / "certs" / "expiring.pem").write_text(short_lived_cert(10))
    (stack_dir / "resources" / "expiring.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Expiring partner}\n"
        "spec: {file: ../certs/expiring.pem, warnDays: 30}\n"
    )
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 0  # a warning, not drift
    samples = parse(out)
    expires = one(samples, "mtls_config_certificate_expiration_timestamp_seconds", name="Expiring partner")
    assert expires == not_after(stack_dir / "certs" / "expiring.pem")
    days_left = (expires - dt.datetime.now(dt.UTC).timestamp()) / 86400
    assert 9 < days_left <= 10  # what the dashboard's "expires in" shows and the alert rule compares
    assert one(samples, "mtls_config_drift_detected", **TARGET) == 0
    code, out, _ = run(["drift", "--format", "openmetrics", "--fail-on-expiry"], capsys)
    assert code == 2
    assert one(parse(out), "mtls_config_drift_detected", **TARGET) == 1


def test_a_failed_run_still_writes_metrics_that_say_so(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    out_file = stack_dir / "metrics.prom"
    assert run(["drift", "--format", "openmetrics", "--out", str(out_file)], capsys)[0] == 0
    assert one(parse(out_file.read_text()), "mtls_config_drift_last_run_success", **TARGET) == 1
    # the instance cannot be reached: no credentials for it (nothing listens on port 9 either)
    monkeypatch.delenv("SN_USERNAME", raising=False)
    code, _, err = run(["drift", "--format", "openmetrics", "--out", str(out_file), "-i", "http://127.0.0.1:9"], capsys)
    assert code == 1 and "SN_USERNAME" in err
    samples = parse(out_file.read_text())
    failed = {"stack": "two-partners-demo", "servicenow_instance": "http://127.0.0.1:9"}
    assert one(samples, "mtls_config_drift_last_run_success", **failed) == 0
    assert one(samples, "mtls_config_drift_last_run_timestamp_seconds", **failed) > 0
    # what it could not check is not claimed: no drift verdict, no counts
    assert "mtls_config_drift_detected" not in samples and "mtls_config_drift_resources" not in samples
    # a spec error: the same, to stdout
    (stack_dir / "resources" / "broken.yaml").write_text("apiVersion: mtls-config/v1\nkind: KeyStore\n")
    code, out, err = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 1 and "broken.yaml" in err
    assert one(parse(out), "mtls_config_drift_last_run_success", **TARGET) == 0


def test_a_run_whose_plan_has_errors_is_a_failed_run(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0

    asyncio.run(rename_soap_message(stack_dir))
    code, out, _ = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 1
    samples = parse(out)
    assert one(samples, "mtls_config_drift_last_run_success", **TARGET) == 0
    assert "mtls_config_drift_detected" not in samples
    # the certificates were read: their expiry is still known
    assert len(samples["mtls_config_certificate_expiration_timestamp_seconds"]) == 4


def test_a_fleet_run_labels_each_environment(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = stack_dir / "mtls-config.yaml"
    text = project.read_text()
    assert "environments:\n" in text
    project.write_text(
        text.replace(
            "environments:\n", "environments:\n  dev: {instance: local}\n  prod: {instance: 'http://127.0.0.1:9'}\n"
        )
    )
    assert run(["apply", "--env", "dev", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["drift", "--env", "*", "--format", "openmetrics"], capsys)
    assert code == 1  # prod cannot be reached
    samples = parse(out)
    assert one(samples, "mtls_config_drift_last_run_success", environment="dev") == 1
    assert one(samples, "mtls_config_drift_last_run_success", environment="prod") == 0
    assert one(samples, "mtls_config_drift_detected", environment="dev") == 0


# Everything that could end a label value, a line or a sample early, or that a terminal would obey.
HOSTILE = 'Q"uote\\back\\"slash} 1\n# EOF\nx{a="b"} ,= \x1b[31m\r\u202e\u00e9\U0001f512 end'


def test_hostile_names_and_subjects_stay_label_values() -> None:
    """Rendered from reports as the CLI builds them: each value parses back whole, as ``literal.visible`` shows it."""
    report: dict[str, Any] = {
        "format_version": "1",
        "instance": HOSTILE,
        "stack": HOSTILE,
        "drift": True,
        "environment": HOSTILE,
        "resources": [
            {
                "address": f"TrustStoreCert/{HOSTILE}",
                "kind": "TrustStoreCert",
                "name": HOSTILE,
                "status": "changed",
                "reason": HOSTILE,
                "fields": [],
                "subject": HOSTILE,
                "expires": "2030-01-02 03:04:05",
            }
        ],
        "findings": [],
    }
    failed = drift_error_report(HOSTILE, stack=HOSTILE + "2", instance=HOSTILE, hint=HOSTILE)
    failed["environment"] = HOSTILE + "2"
    text = drift_openmetrics(report, failed, timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    samples = parse(text)
    shown = visible(HOSTILE)
    cert = one(samples, "mtls_config_certificate_expiration_timestamp_seconds", name=shown)
    assert cert == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp()
    labels = samples["mtls_config_certificate_expiration_timestamp_seconds"][0][0]
    assert labels == {
        "stack": shown,
        "servicenow_instance": shown,
        "environment": shown,
        "kind": "TrustStoreCert",
        "name": shown,
        "subject": shown,
    }
    assert one(samples, "mtls_config_drift_last_run_success", environment=shown) == 1
    assert one(samples, "mtls_config_drift_last_run_success", environment=shown + "2") == 0
    assert one(samples, "mtls_config_drift_last_run_timestamp_seconds", stack=shown) == 1767225600.0


def test_hostile_names_from_specs(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = HOSTILE.replace("\n", " ")  # a spec name is one line (the schema's pattern)
    spec = stack_dir / "resources" / "acme-payments.yaml"
    quoted = json.dumps(name, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    spec.write_text(spec.read_text().replace("name: Acme Payments server CA", f"name: {quoted}"))
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["drift", "--format", "openmetrics"], capsys)
    assert code == 0
    one(parse(out), "mtls_config_certificate_expiration_timestamp_seconds", name=visible(name))


def test_out_replaces_the_file_whole_and_readable(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """node-exporter's textfile collector must never read half a file, and runs as another user."""
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    folder = stack_dir / "textfile"
    folder.mkdir()
    target = folder / "mtls.prom"
    target.write_text("old\n")
    inode = target.stat().st_ino
    old_umask = os.umask(0o022)
    try:
        assert run(["drift", "--format", "openmetrics", "--out", str(target)], capsys)[0] == 0
    finally:
        os.umask(old_umask)
    assert target.stat().st_ino != inode  # a new file renamed over the old one, not the old one rewritten
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in folder.iterdir()] == ["mtls.prom"]  # no temporary file left behind
    assert one(parse(target.read_text()), "mtls_config_drift_last_run_success", **TARGET) == 1
    code, _, err = run(["drift", "--format", "openmetrics", "--out", str(stack_dir / "nowhere" / "m.prom")], capsys)
    assert code == 1 and "cannot write" in err and "nowhere" in err


DOCS = Path(__file__).resolve().parents[2] / "docs" / "recipes"


def _queries(node: Any) -> list[str]:
    """Every PromQL text of a Grafana dashboard: panel targets' ``expr`` and template variables' queries."""
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        if isinstance(node.get("definition"), str):
            found.append(node["definition"])
        return found + [q for value in node.values() for q in _queries(value)]
    if isinstance(node, list):
        return [q for value in node for q in _queries(value)]
    return []


def _names_and_labels(query: str) -> tuple[set[str], set[str]]:
    names = set(re.findall(r"\bmtls_config_[a-z_]+\b", query))
    labels = {m for block in re.findall(r"\{([^}]*)\}", query) for m in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", block)}
    labels |= {m.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", query) for m in group.split(",")}
    labels |= {m for m in re.findall(r"label_values\(\w+,\s*(\w+)\)", query)}
    return names, labels


def test_the_dashboard_and_the_alert_rules_use_what_drift_writes(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    samples = parse(run(["drift", "--format", "openmetrics"], capsys)[1])
    written = set(samples)
    label_names = {label for series in samples.values() for labels, _ in series for label in labels} | {"environment"}
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    rules_block = re.search(r"```yaml\n(groups:.*?)```", (DOCS / "monitoring.md").read_text(), re.S)
    assert rules_block is not None
    rules = yaml.safe_load(rules_block.group(1))["groups"][0]["rules"]
    queries = _queries(dashboard) + [rule["expr"] for rule in rules]
    assert len(queries) >= 12
    used: set[str] = set()
    for query in queries:
        names, labels = _names_and_labels(query)
        assert names, f"queries none of our metrics: {query}"
        assert names <= written, f"{query}: {sorted(names - written)} is not in drift's output"
        assert labels <= label_names, f"{query}: {sorted(labels - label_names)} is not a label drift writes"
        used |= names
    assert used == {name for name, _, _ in METRICS}  # and every metric is shown somewhere
