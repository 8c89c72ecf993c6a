"""Large plans render what a person reads (issue 18): the changes and a summary, not pages of unchanged
resources or the values of thousands of creates; --verbose is the full listing. apply says what a reviewed plan
does in one line, then its results, not the whole plan again. And a text plan never goes through JSON.

A synthetic stack of 120 resources (the benchmarks' writer) on the embedded local instance, through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.plan import Plan
from mtls_config.render import LISTING_LIMIT
from tests.engine.stacks import write_stack

N = 120  # more changes than LISTING_LIMIT when all are created
CHANGE_EVERY = 40  # 3 edited resources


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def addresses(out: str) -> list[str]:
    """The resources a rendering lists, one per line: '  <symbol> Kind/name  (action...)'."""
    return re.findall(r"^  (?:[-+~ ]|-/\+) (\w+/\S+)  \(", out, flags=re.MULTILINE)


def counted(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """A list that grows by one at each call of ``Plan.<method>`` (which still does its work)."""
    calls: list[int] = []
    original = getattr(Plan, method)

    def counting(self: Plan) -> str:
        calls.append(1)
        return str(original(self))

    monkeypatch.setattr(Plan, method, counting)
    return calls


@pytest.fixture(scope="module")
def pems() -> list[str]:
    from bench.stacks import counts, mint_pems

    return mint_pems(counts(N)[2])


@pytest.fixture
def big_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pems: list[str]) -> Path:
    root = tmp_path / "big"
    write_stack(root, N, pems=pems)
    (root / "mtls-config.yaml").write_text("stack: big\n", encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def test_limit_is_below_the_stack() -> None:
    assert LISTING_LIMIT < N


def test_a_plan_of_many_creates_lists_them_by_name_and_verbose_lists_their_values(
    big_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["plan"], capsys)
    assert code == 2
    assert len(addresses(out)) == N
    assert "\n      + " not in out  # no field values
    assert f"creates and deletes listed by name (more than {LISTING_LIMIT} changes)" in out
    assert f"Plan: {N} to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in out
    code, full = run(["plan", "--verbose"], capsys)
    assert code == 2
    assert len(addresses(full)) == N
    assert full.count("\n      + ") >= N  # every create with its values
    assert "listed by name" not in full


def test_a_plan_with_few_changes_lists_the_changes_and_counts_the_unchanged(
    big_stack: Path, pems: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    edited = write_stack(big_stack, N, change_every=CHANGE_EVERY, pems=pems)
    code, out = run(["plan"], capsys)
    assert code == 2
    listed = addresses(out)
    assert len(listed) == edited == N // CHANGE_EVERY
    assert out.count("(update: ") == edited
    assert out.count("      ~ short_description: ") == edited  # updates always show their changed fields
    assert f"{N - edited} unchanged resources not listed" in out
    assert f"Plan: 0 to create, {edited} to update, 0 to replace, 0 to delete, {N - edited} unchanged." in out
    code, full = run(["plan", "--verbose"], capsys)
    assert code == 2
    assert len(addresses(full)) == N  # the full listing: unchanged resources too
    assert set(listed) < set(addresses(full))
    assert "not listed" not in full


def test_apply_prints_the_plans_summary_and_the_results_not_the_plan(
    big_stack: Path, pems: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["apply", "--auto-approve"], capsys)
    assert code == 0
    assert addresses(out) == []  # no listing of the plan
    assert f"Plan: {N} to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in out
    assert re.search(rf"^  applied  {N} create \(--verbose lists them\)$", out, flags=re.MULTILINE), out
    assert f"Apply finished: {N} applied, 0 failed, 0 skipped." in out
    assert "applied  create" not in out
    # a small apply lists what it applied, one line each
    write_stack(big_stack, N, change_every=CHANGE_EVERY, pems=pems)
    code, out = run(["apply", "--auto-approve"], capsys)
    assert code == 0
    assert addresses(out) == []
    assert len(re.findall(r"^  applied  update ", out, flags=re.MULTILINE)) == N // CHANGE_EVERY
    assert f"Apply finished: {N // CHANGE_EVERY} applied, 0 failed, 0 skipped." in out


def test_apply_verbose_lists_every_applied_resource(big_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["apply", "--auto-approve", "--verbose"], capsys)
    assert code == 0
    assert len(re.findall(r"^  applied  create ", out, flags=re.MULTILINE)) >= N


def test_a_text_plan_never_goes_through_json(
    big_stack: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dumped = counted(monkeypatch, "to_json")
    assert run(["plan"], capsys)[0] == 2
    assert dumped == []
    # the JSON output and a saved plan are the same document as before
    code, printed = run(["plan", "--json", "--out", "plan.json"], capsys)
    assert code == 2
    saved = (big_stack / "plan.json").read_text(encoding="utf-8")
    assert printed == saved  # the same text as the saved plan, which alone is dumped
    assert Plan.from_json(printed).checksum.startswith("sha256:")
    assert len(dumped) == 1


def test_a_text_plan_is_not_checksummed_and_a_saved_or_shown_one_is(
    big_stack: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan read only as text shows no checksum, so none is made (issue 18); a plan saved (--out), printed as
    JSON or as markdown carries the checksum of its content, which loading it checks."""
    hashed = counted(monkeypatch, "body_checksum")
    assert run(["plan"], capsys)[0] == 2
    assert run(["plan", "--verbose"], capsys)[0] == 2
    assert hashed == []
    code, _ = run(["plan", "--out", "saved.json"], capsys)
    assert code == 2 and len(hashed) == 1
    saved = Plan.from_json((big_stack / "saved.json").read_text(encoding="utf-8"))  # from_json checks it
    code, printed = run(["plan", "--json"], capsys)
    shown = Plan.from_json(printed)
    assert shown.checksum == saved.checksum and shown.checksum.startswith("sha256:")
    code, markdown = run(["plan", "--format", "markdown"], capsys)
    assert f"plan checksum `{saved.checksum}`" in markdown
    # the saved plan applies: its checksum and pins hold
    code, out = run(["apply", "saved.json"], capsys)
    assert code == 0, out
