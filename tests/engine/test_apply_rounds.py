"""apply's fixed round trips (issue 18): the lock, the pending and the final inventory, the names' claims and the
unlock. The lock is inserted without reading it first; its read-back goes with the re-read of the records about to
change, the inventory's conflict check, the pending inventory's parts and the first name about to be created,
claimed alone; the pending inventory's head goes with the rest of the names; the lock's last read goes with the
final reads, its release with the last cleanup; an apply of updates only writes no pending inventory and claims
nothing; an inventory that fits a value packed needs no part record. An update costs 5 (it was 15 with issue 17's
claims merged, 11 before); an apply that creates records 6 (it was 11, 4 of them the claims'). Counted on the
emulator's request log: a round is a request that arrived after the one before it in the chain was answered
(``rounds``), with latency so that requests sent together are seen together."""

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
FIXED = 6  # issue 18: lock, pending inventory, final inventory, unlock (and the names' claims beside them)
# The stack of 12's own writes when all are created: its keystores' three phases (created inactive, file attached,
# password set and activated; the trusted certificates' creates go with the first), then the profiles.
CREATE_WRITE_ROUNDS = 4


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


def test_apply_pays_at_most_six_fixed_round_trips_creating_and_five_updating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "stack"
    write_stack(root, 12)  # an inventory longer than a property value as JSON: its head holds it packed
    (root / "mtls-config.yaml").write_text("stack: rounds\n", encoding="utf-8")
    monkeypatch.chdir(root)
    as_user(monkeypatch, "admin")
    with serve(latency_ms=LATENCY_MS) as server:
        monkeypatch.setenv("SN_INSTANCE", server.url)
        log(server.url)
        assert main(["plan"]) == 2
        plan_rounds = rounds(log(server.url))
        assert plan_rounds >= 1

        # every record created: the claims of 12 new names and an inventory of 12 on top of the plan and the writes
        assert main(["apply", "--auto-approve"]) == 0
        entries = log(server.url)
        batches = [e for e in entries if e["method"] == "POST" and e["path"] == "/api/now/v1/batch"]
        assert len(batches) >= CREATE_WRITE_ROUNDS + 2, entries  # the writes' batches and the claims' two
        fixed = rounds(entries) - plan_rounds - CREATE_WRITE_ROUNDS
        assert fixed <= FIXED, sorted(entries, key=lambda e: e["opened"])
        assert main(["plan"]) == 0
        assert rounds(log(server.url)) == plan_rounds

        # one keystore edited: the work is one write (a PATCH of one record, its answer read back)
        spec = root / "stack-000.yaml"
        spec.write_text(spec.read_text().replace("ks-00000}\nspec: {", "ks-00000}\nspec: {description: edited, "))
        assert main(["apply", "--auto-approve"]) == 0
        entries = log(server.url)
        work = [e for e in entries if e["method"] in ("PATCH", "POST") and "sys_certificate" in e["path"]]
        assert len(work) == 1, entries
        assert rounds(entries) - plan_rounds - 1 <= FIXED - 1, sorted(entries, key=lambda e: e["opened"])

        # nothing to apply: no lock, nothing but the plan
        assert main(["apply", "--auto-approve"]) == 0
        assert rounds(log(server.url)) == plan_rounds
    out = capsys.readouterr().out
    assert "Apply finished: 1 applied, 0 failed, 0 skipped." in out
