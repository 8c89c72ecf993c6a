"""apply's fixed round trips (issue 18): the lock, the pending and the final inventory and the unlock. The lock is
inserted without reading it first; its read-back goes with the re-read of the records about to change, the
inventory's conflict check and the pending inventory's parts; the lock's last read goes with the final reads,
its release with the last cleanup; an apply of updates only writes no pending inventory. An update costs 6
(it was 15 with issue 17's claims merged, 11 before); an apply that creates records 7, plus the 4 of issue 17's
name claims. Counted on the emulator's request
log: a round is a request that arrived after the one before it in the chain was answered (``rounds``), with
latency so that requests sent together are seen together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.emulator.faults import rounds
from tests.engine.conftest import ADMIN, as_user, serve
from tests.engine.stacks import write_stack

LATENCY_MS = 200  # requests sent together overlap even on a loaded machine (the CLI between sends)
FIXED = 6  # issue 18: lock, pending inventory, final inventory, unlock


def log(url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{url}/_emulator/requests", auth=ADMIN).json()
    httpx.request("DELETE", f"{url}/_emulator/requests", auth=ADMIN, json={}).raise_for_status()
    return entries


def test_rounds_counts_the_chain_of_requests_one_after_another() -> None:
    one = {"opened": 1, "closed": 4}
    together = {"opened": 2, "closed": 3}
    after = {"opened": 5, "closed": 6}
    assert rounds([]) == 0
    assert rounds([one, together]) == 1
    assert rounds([one, together, after]) == 2
    assert rounds([one, after, {"opened": 7, "closed": 8}]) == 3


def test_apply_pays_at_most_six_fixed_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "stack"
    write_stack(root, 12)  # an inventory of parts (more than one property value holds)
    (root / "mtls-config.yaml").write_text("stack: rounds\n", encoding="utf-8")
    monkeypatch.chdir(root)
    as_user(monkeypatch, "admin")
    with serve(latency_ms=LATENCY_MS) as server:
        monkeypatch.setenv("SN_INSTANCE", server.url)
        assert main(["apply", "--auto-approve"]) == 0
        log(server.url)
        assert main(["plan"]) == 0
        plan_rounds = rounds(log(server.url))
        assert plan_rounds >= 1

        # one keystore edited: the work is one write (a PATCH of one record, its answer read back)
        spec = root / "stack-000.yaml"
        spec.write_text(spec.read_text().replace("ks-00000}\nspec: {", "ks-00000}\nspec: {description: edited, "))
        assert main(["apply", "--auto-approve"]) == 0
        entries = log(server.url)
        work = [e for e in entries if e["method"] in ("PATCH", "POST") and "sys_certificate" in e["path"]]
        assert len(work) == 1, entries
        assert rounds(entries) - plan_rounds - 1 <= FIXED, sorted(entries, key=lambda e: e["opened"])

        # nothing to apply: no lock, nothing but the plan
        assert main(["apply", "--auto-approve"]) == 0
        assert rounds(log(server.url)) == plan_rounds
    out = capsys.readouterr().out
    assert "Apply finished: 1 applied, 0 failed, 0 skipped." in out
