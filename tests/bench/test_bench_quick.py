"""The benchmarks' smoke runs: the engine's (``python -m bench --engine --quick``) and the commands'
(``python -m bench --quick``, every command a process of its own). Each runs end to end against the emulator
over a socket and writes its JSON; the request counts are the engine's promises, the exit codes and summaries
the commands'. Never asserts on timings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import QUICK_COMMAND_SIZES, QUICK_SIZES, main
from bench.stacks import counts


def run_bench(out: Path, *argv: str) -> dict[str, Any]:
    """``python -m bench --quick ARGV`` with one run of each scenario; its JSON, and the plot's first bytes."""
    assert main(["--quick", "--quiet", "--repeat", "1", "--out-dir", str(out), "--name", "smoke", *argv]) == 0
    data: dict[str, Any] = json.loads((out / "smoke.json").read_text(encoding="utf-8"))
    data["plot_png"] = (out / "smoke.png").read_bytes()[:8] if (out / "smoke.png").exists() else None
    return data


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_bench(tmp_path_factory.mktemp("bench"), "--engine", "--no-plot")


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_bench(tmp_path_factory.mktemp("bench"), "--startup-repeat", "1")


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
                # the inventory (its head and part records in one query), the instance's claims of names, and the
                # profiles' glide.httpclient.protocol.* properties (one listing, whatever the number of profiles)
                "GET sys_properties": 3,
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
        # and the inventory's parts: written before the first write, again after the last (the first ones deleted);
        # none for 40, whose inventory its head holds packed (issue 18)
        parts = apply["notes"]["inventory_parts"]
        assert (parts == 0) if run["n"] <= 40 else (0 < parts <= 50), (run["n"], parts)
        # and the claims of the names it creates: the first alone, then the rest in batches of 50
        claims = 1 + math.ceil((run["n"] - 1) / 50)
        steps = 3 if parts else 0
        # the profiles go out beside the keystores' last phase (issue 18), in its batches
        rounds = [keystores + certs, keystores, keystores + profiles]
        assert apply["requests_by_kind"]["POST batch"] == sum(math.ceil(p / 50) for p in rounds) + steps + claims
        assert "POST attachment/file" not in apply["requests_by_kind"]  # every file went in a batch
        assert not any(
            kind.startswith(("POST sys_certificate", "PATCH sys_certificate")) for kind in apply["requests_by_kind"]
        )


def test_baseline_is_one_get_per_record_and_floor_one_request_per_first_read(quick: dict[str, Any]) -> None:
    for run in quick["runs"]:
        keystores, profiles, certs = counts(run["n"])
        baseline = measurement(run, "plan read", "baseline")
        assert baseline["requests_by_kind"] == {
            "GET sys_certificate/<id>": keystores + certs,
            "GET sys_protocol_profile/<id>": profiles,
        }
        assert measurement(run, "plan read", "floor")["requests"] == 9  # the reads a plan makes first, one per query


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


# --- the commands as processes -----------------------------------------------------------------------------


def test_every_command_ran_as_a_process_and_did_what_it_says(commands: dict[str, Any]) -> None:
    assert [(r["n"], r["latency_ms"]) for r in commands["runs"]] == [(n, 5) for n in QUICK_COMMAND_SIZES]
    for run in commands["runs"]:
        n, checks = run["n"], run["checks"]
        edited = checks["edited"]
        assert edited == math.ceil(n / 10)
        assert checks["validate"].startswith(f"valid: {n} resources")
        assert (
            checks["plan (all create)"] == f"Plan: {n} to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged."
        )
        assert checks["apply (all create)"] == f"Apply finished: {n} applied, 0 failed, 0 skipped."
        assert checks["plan (no changes)"] == f"No changes. The instance matches the specs ({n} resources)."
        assert checks["plan (10% changed)"].startswith(f"Plan: 0 to create, {edited} to update")
        assert checks["apply (10% update)"] == f"Apply finished: {edited} applied, 0 failed, 0 skipped."
        assert checks["drift (10% drifted)"] == f"Drift detected ({n - edited} of {n} resources in sync)."
        assert checks["baseline records"] == n
        scenarios = [(m["scenario"], m["variant"], m["exit_code"]) for m in run["measurements"]]
        assert scenarios == [
            ("validate", "ours", 0),
            ("plan (all create)", "ours", 2),
            ("apply (all create)", "ours", 0),
            ("plan (no changes)", "ours", 0),
            ("plan (10% changed)", "ours", 2),
            ("apply (10% update)", "ours", 0),
            ("drift (10% drifted)", "ours", 2),
            ("plan read", "floor", 0),
            ("plan read", "baseline", 0),
        ]
        for m in run["measurements"]:
            assert m["wall_s"] > 0 and m["cpu_s"] > 0 and m["peak_rss_mb"] > 5  # a Python process's, not a wrapper's


def test_a_plan_process_makes_the_floors_requests_and_the_baseline_one_per_record(commands: dict[str, Any]) -> None:
    for run in commands["runs"]:
        keystores, profiles, certs = counts(run["n"])
        floor = measurement(run, "plan read", "floor")
        assert floor["requests_by_kind"] == {
            "GET attachment": 1,
            "GET sys_certificate": 1,
            "GET sys_db_object": 1,
            "GET sys_dictionary": 1,
            "GET sys_properties": 3,  # the inventory, the names' claims, the profiles' glide.httpclient.protocol.*
            "GET sys_protocol_profile": 1,
            "GET sys_user_has_role": 1,
        }
        for scenario in ("plan (no changes)", "plan (10% changed)", "drift (10% drifted)"):
            assert measurement(run, scenario)["requests_by_kind"] == floor["requests_by_kind"], scenario
        assert measurement(run, "validate")["requests"] == 0
        assert measurement(run, "plan read", "baseline")["requests_by_kind"] == {
            "GET sys_certificate/<id>": keystores + certs,
            "GET sys_protocol_profile/<id>": profiles,
        }


def test_startup_is_measured_beside_the_import_floor_and_judged(commands: dict[str, Any]) -> None:
    startup = {m["scenario"]: m for m in commands["startup"]}
    assert list(startup) == ["import floor", "--version", "--help", "validate (example)"]
    assert all(m["exit_code"] == 0 and m["cpu_s"] > 0 for m in startup.values())
    meta = commands["meta"]
    assert meta["rss_source"] in ("/usr/bin/time %M", "wait4 ru_maxrss")
    assert len(meta["load_average_before"]) == 3 and len(commands["runs"][0]["load_average_at_start"]) == 3
    judged = {t["target"]: t["met"] for t in commands["targets"]}
    assert judged["start-up: --version CPU under 1.5x the import floor"] in (True, False)
    assert judged["start-up: --help CPU under 1.5x the import floor"] in (True, False)


def test_the_commands_table_prints_ratios_to_the_floor(commands: dict[str, Any]) -> None:
    from bench.report import commands_table

    text = commands_table(commands)
    floor_line = next(line for line in text.splitlines() if " floor " in line and "plan read" in line)
    assert "1.0x" in floor_line
    plan_line = next(line for line in text.splitlines() if "plan (no changes)" in line)
    assert plan_line.count("x ") >= 2  # wall and CPU, each against the floor process
    assert "the import floor" in text
    if commands["plot_png"] is not None:
        assert commands["plot_png"] == b"\x89PNG\r\n\x1a\n"
