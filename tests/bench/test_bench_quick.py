"""The benchmark's smoke run (``python -m bench --quick``): it runs end to end against the emulator over a
socket, writes its JSON, and the request counts are the engine's promises. Never asserts on timings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import QUICK_SIZES, main
from bench.stacks import counts


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    assert main(["--quick", "--no-plot", "--quiet", "--repeat", "1", "--out-dir", str(out), "--name", "smoke"]) == 0
    data: dict[str, Any] = json.loads((out / "smoke.json").read_text(encoding="utf-8"))
    return data


def measurement(run: dict[str, Any], scenario: str, variant: str = "ours") -> dict[str, Any]:
    found = [m for m in run["measurements"] if m["scenario"] == scenario and m["variant"] == variant]
    assert len(found) == 1, (scenario, variant)
    return dict(found[0])


def test_every_size_and_scenario_ran_and_did_what_it_says(quick: dict[str, Any]) -> None:
    assert [r["n"] for r in quick["runs"]] == list(QUICK_SIZES)
    for run in quick["runs"]:
        n, checks = run["n"], run["checks"]
        edited = checks["edited"]
        assert edited == math.ceil(n / 10)
        assert checks["plan (all create)"] == {"create": n}
        assert checks["apply (all create)"] == n
        assert checks["plan (no changes)"] == {"no-op": n}
        assert checks["plan (10% changed)"] == {"no-op": n - edited, "update": edited}
        assert checks["apply (10% update)"] == edited
        assert checks["drift (10% drifted)"] == {"no-op": n - edited, "update": edited}
        assert checks["baseline records"] == n
        for m in run["measurements"]:
            assert m["requests"] > 0 and m["bytes_received"] > 0 and m["peak_rss_mb"] > 0
            if m["variant"] != "baseline":
                assert m["peak_traced_mb"] is not None  # the tracemalloc pass ran


def test_plan_is_a_fixed_handful_of_requests_whatever_the_size(quick: dict[str, Any]) -> None:
    for run in quick["runs"]:
        for scenario in ("plan (no changes)", "plan (10% changed)", "drift (10% drifted)"):
            assert measurement(run, scenario)["requests_by_kind"] == {
                "GET attachment": 1,  # the certificates' files, listed in one query
                "GET sys_certificate": 1,
                "GET sys_properties": 1,  # the inventory: its head and part records in one query
                "GET sys_protocol_profile": 1,
                "GET sys_user_has_role": 1,  # the account's roles, checked before anything is compared
                "GET sys_dictionary": 1,  # the columns of the tables the stack touches...
                "GET sys_db_object": 1,  # ...and the tables they extend
            }, (run["n"], scenario)


def test_apply_writes_in_batches_of_fifty_per_phase_files_included(quick: dict[str, Any]) -> None:
    for run in quick["runs"]:
        keystores, profiles, certs = counts(run["n"])
        apply = measurement(run, "apply (all create)")
        phases = apply["notes"]["write_phases"]
        # create every certificate -> attach the keystores' files -> set passwords and activate -> profiles
        assert phases == [keystores + certs, keystores, keystores, profiles]
        # and the inventory's parts: written before the first write, again after the last (the first ones deleted)
        parts = apply["notes"]["inventory_parts"]
        assert 0 < parts <= 50
        assert apply["requests_by_kind"]["POST batch"] == sum(math.ceil(p / 50) for p in phases) + 3
        assert "POST attachment/file" not in apply["requests_by_kind"]  # every file went in a batch
        assert not any(
            kind.startswith(("POST sys_certificate", "PATCH sys_certificate")) for kind in apply["requests_by_kind"]
        )


def test_baseline_is_one_get_per_record_and_floor_one_request_per_table(quick: dict[str, Any]) -> None:
    for run in quick["runs"]:
        keystores, profiles, certs = counts(run["n"])
        baseline = measurement(run, "plan read", "baseline")
        assert baseline["requests_by_kind"] == {
            "GET sys_certificate/<id>": keystores + certs,
            "GET sys_protocol_profile/<id>": profiles,
        }
        assert measurement(run, "plan read", "floor")["requests"] == 4


def test_results_carry_the_machine_keystore_figures_and_targets(quick: dict[str, Any]) -> None:
    meta = quick["meta"]
    assert meta["latency_ms"] == 5 and meta["machine"]["cores"] >= 1 and meta["machine"]["python"]
    ks = quick["keystore"]
    assert ks["trusted_certificates"] == 200 and ks["certificates_inspected"] == 202
    names = [t["target"] for t in quick["targets"]]
    assert any("Batch" in n or "batch" in n or "ceil" in n for n in names)
    apply_target = next(t for t in quick["targets"] if "ceil" in t["target"])
    assert apply_target["met"] is True


def test_plot_is_drawn_when_matplotlib_is_there(quick: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench.report import plot

    target = tmp_path / "plot.png"
    plot(quick, target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
