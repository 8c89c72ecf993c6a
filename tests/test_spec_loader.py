"""The loader: YAML with marks, every problem in one run, the set-wide checks, and nothing secret read."""

from __future__ import annotations

import textwrap
from dataclasses import FrozenInstanceError, fields
from pathlib import Path
from typing import Any

import pytest

from mtls_config.errors import Problem, SpecError
from mtls_config.spec import loader
from mtls_config.spec.loader import Origin, find_spec_files, load_specs
from mtls_config.spec.models import API_VERSION, MODELS, KeyStore, MessageBinding, ProtocolProfile, TrustStoreCert
from mtls_config.spec.yamlsource import MAX_FILE_BYTES, Mark, read_documents

from .conftest import EXAMPLE_STACK

CERT = (EXAMPLE_STACK / "certs" / "acme-client.pem").read_bytes()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


KEYSTORE = textwrap.dedent("""
    apiVersion: mtls-config/v1
    kind: KeyStore
    metadata:
      name: partner-client
    spec:
      build:
        key: {fromEnv: PARTNER_KEY}
        cert: certs/client.pem
        chain:
          - certs/client.pem
      password: {fromFile: secrets/keystore-password.txt}
    """).lstrip()

PROFILE = textwrap.dedent("""
    apiVersion: mtls-config/v1
    kind: ProtocolProfile
    metadata:
      name: mauth
    spec:
      keyStore: partner-client
    """).lstrip()


def problems_of(paths: list[Path], **kwargs: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_specs(paths, **kwargs)
    return [str(p) for p in caught.value.problems]


# --- marks -----------------------------------------------------------------------------------------------


def test_marks_are_one_based_line_and_column_of_each_key_and_item(spec_repo: Path) -> None:
    path = write(spec_repo / "a.yaml", KEYSTORE)
    docs, problems = read_documents(path, "a.yaml")
    assert problems == []
    [doc] = docs
    assert doc.start == Mark(1, 1)
    assert doc.marks[("spec",)] == Mark(5, 1)
    assert doc.marks[("spec", "build")] == Mark(6, 3)
    assert doc.marks[("spec", "build", "cert")] == Mark(8, 5)
    assert doc.marks[("spec", "build", "chain", 0)] == Mark(10, 9)
    assert doc.marks[("spec", "password", "fromFile")] == Mark(11, 14)
    # A field that is not there takes the mark of its nearest ancestor.
    assert doc.mark_for(("spec", "build", "alias")) == Mark(6, 3)


def test_each_document_of_a_multi_document_file_has_its_own_start_and_index(spec_repo: Path) -> None:
    path = write(spec_repo / "a.yaml", "# comment\n" + KEYSTORE + "---\n---\n" + PROFILE)
    docs, problems = read_documents(path, "a.yaml")
    assert problems == []
    assert [(d.index, d.start.line) for d in docs] == [(0, 2), (2, 15)]  # the empty middle document is skipped


def test_documents_of_one_file_share_their_field_paths_and_origins_keep_the_documents_marks(spec_repo: Path) -> None:
    # Held for memory: a path like ("spec", "keyStore") is one tuple for the file, not one per document, and a
    # resource's Origin keeps its document's marks rather than a copy (at 5000 resources, about 5 MB of tuples).
    other = PROFILE.replace("name: mauth", "name: mauthb")
    assert other != PROFILE
    path = write(spec_repo / "a.yaml", PROFILE + "---\n" + other)
    docs, problems = read_documents(path, "a.yaml")
    assert problems == [] and len(docs) == 2
    first, second = ({loc: loc for loc in d.marks} for d in docs)
    assert first.keys() == second.keys()
    assert all(first[loc] is second[loc] for loc in first)
    assert docs[0].marks[("spec", "keyStore")] == Mark(6, 3) == (6, 3)
    assert docs[1].marks[("spec", "keyStore")] == Mark(len(PROFILE.splitlines()) + 7, 3)
    assert Mark(5, 9) < Mark(6, 1) < Mark(6, 2)  # ordered by line, then column
    keystore = write(spec_repo / "ks.yaml", KEYSTORE)
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    specs = load_specs([path, keystore], root=spec_repo)
    origins = [specs.origins[f"ProtocolProfile/{n}"] for n in ("mauth", "mauthb")]
    assert [dict(o.marks) for o in origins] == [d.marks for d in docs]
    assert origins[0].base_dir is origins[1].base_dir == path.parent.resolve()
    # files of one folder share its Path too: a run's caches keyed by it find it without Path.__eq__
    assert specs.origins["KeyStore/partner-client"].base_dir is origins[0].base_dir
    assert origins[1].at("spec", "keyStore", "nothing") == f"a.yaml:{len(PROFILE.splitlines()) + 7}:3"


def test_byte_order_mark_and_crlf_line_endings_are_accepted(spec_repo: Path) -> None:
    path = spec_repo / "a.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + PROFILE.lstrip().replace("\n", "\r\n").encode())
    docs, problems = read_documents(path, "a.yaml")
    assert problems == []
    assert docs[0].marks[("spec", "keyStore")] == Mark(6, 3)


def test_problem_positions_from_the_loader_point_at_the_field(spec_repo: Path) -> None:
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "a.yaml", KEYSTORE.replace("cert: certs/client.pem", "cert: certs/nope.pem"))
    assert problems_of([spec_repo]) == [
        "a.yaml:8:5: KeyStore/partner-client: spec.build.cert: file 'certs/nope.pem' does not exist "
        "(paths are relative to the spec file)"
    ]


def test_origins_locate_fields_of_loaded_resources(spec_repo: Path) -> None:
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "specs" / "all.yaml", KEYSTORE + "---\n" + PROFILE)
    (spec_repo / "specs" / "certs").mkdir()
    (spec_repo / "specs" / "certs" / "client.pem").write_bytes(CERT)
    specs = load_specs([spec_repo / "specs"], root=spec_repo)
    origin = specs.origins["ProtocolProfile/mauth"]
    assert origin.at("spec", "keyStore") == "specs/all.yaml:18:3"
    assert origin.at("spec", "port") == "specs/all.yaml:17:1"  # defaulted field: its parent's mark
    assert origin.base_dir == (spec_repo / "specs").resolve()
    assert specs.origins["KeyStore/partner-client"].at() == "specs/all.yaml:1:1"


# --- every problem at once -------------------------------------------------------------------------------


def test_all_problems_of_all_files_are_reported_sorted_by_place(spec_repo: Path) -> None:
    write(spec_repo / "b.yaml", PROFILE.replace("name: mauth", "name: MAuth") + "---\n" + "kind: Nope\n")
    write(spec_repo / "a.yaml", "key: [unclosed\n")
    write(spec_repo / "c" / "d.yml", "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: x}\n")
    lines = problems_of([spec_repo])
    assert [line.split(": ", 1)[0] for line in lines] == ["a.yaml:2:1", "b.yaml:4:3", "b.yaml:8:1", "c/d.yml:1:1"]
    assert "TrustStoreCert/x: spec: required field is missing" in lines[3]


def test_spec_error_message_counts_and_lists_problems(spec_repo: Path) -> None:
    write(spec_repo / "a.yaml", "")
    write(spec_repo / "b.yaml", "- 1\n")
    with pytest.raises(SpecError) as caught:
        load_specs([spec_repo])
    text = str(caught.value)
    assert text.startswith("2 problems in spec files:\n")
    assert "a.yaml:1:1: no resource documents" in text
    assert "b.yaml:1:1: a resource document must be a mapping" in text


def test_problem_renders_only_the_parts_it_has() -> None:
    assert str(Problem("a.yaml", 3, 5, "KeyStore/x", "spec.file", "bad")) == "a.yaml:3:5: KeyStore/x: spec.file: bad"
    assert str(Problem("a.yaml", 1, 1, "", "", "bad")) == "a.yaml:1:1: bad"


def test_a_missing_path_is_a_problem_not_a_crash(spec_repo: Path) -> None:
    assert problems_of([spec_repo / "nope"]) == ["nope:1:1: no such file or directory"]


def test_a_file_over_the_size_limit_is_not_read(spec_repo: Path) -> None:
    path = spec_repo / "big.yaml"
    with path.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)  # sparse: reading it would find NUL bytes, not a size problem
    assert problems_of([path]) == [
        f"big.yaml:1:1: file is {MAX_FILE_BYTES + 1} bytes; a spec file may be at most {MAX_FILE_BYTES} bytes (1 MiB)"
    ]


def test_values_written_in_the_wrong_place_are_never_echoed(spec_repo: Path) -> None:
    canary = "canary-9f2c-Passw0rd"
    write(
        spec_repo / "a.yaml",
        KEYSTORE.replace("{fromEnv: PARTNER_KEY}", f"[{canary}]").replace(
            "{fromFile: secrets/keystore-password.txt}", f"{{fromEnv: {canary}}}"
        )
        + f"  description: [{canary}]\n  warnDays: {canary}\n  keyPassword: {canary}\n",
    )
    with pytest.raises(SpecError) as caught:
        load_specs([spec_repo])
    rendered = str(caught.value) + repr(caught.value) + repr(caught.value.problems)
    assert canary not in rendered
    assert len(caught.value.problems) >= 5


# --- files and folders -----------------------------------------------------------------------------------


def test_folders_are_searched_recursively_skipping_hidden_folders_and_project_files(spec_repo: Path) -> None:
    for rel in ("a.yaml", "sub/b.yml", "sub/deeper/c.yaml", ".hidden/d.yaml", "mtls-config.yaml", "notes.txt"):
        write(spec_repo / rel, "x: 1\n")
    files, problems = find_spec_files([spec_repo, spec_repo / "a.yaml"])
    assert problems == []
    assert [f.relative_to(spec_repo.resolve()).as_posix() for f in files] == [
        "a.yaml",
        "sub/b.yml",
        "sub/deeper/c.yaml",
    ]


def test_example_stack_loads_in_kind_then_name_order() -> None:
    specs = load_specs([EXAMPLE_STACK / "resources"], root=EXAMPLE_STACK)
    assert [r.address for r in specs.resources] == [
        "KeyStore/Acme Payments client",
        "KeyStore/Globex client",
        "TrustStoreCert/Acme Payments server CA",
        "TrustStoreCert/Globex orders server",
        "ProtocolProfile/acmemtls",
        "ProtocolProfile/globexm",
        "MessageBinding/acme-payments-api",
        "MessageBinding/globex-orders",
    ]
    assert list(specs.origins) == [r.address for r in specs.resources]  # an origin for each, by its address
    assert len(specs.key_stores) == len(specs.trust_store_certs) == 2
    assert len(specs.protocol_profiles) == len(specs.message_bindings) == 2
    assert isinstance(specs.get("ProtocolProfile/acmemtls"), ProtocolProfile)
    assert specs.get("ProtocolProfile/nope") is None
    binding = specs.get("MessageBinding/globex-orders")
    assert isinstance(binding, MessageBinding)
    assert binding.spec.functions == ["submitOrder"]


def test_file_references_become_absolute_existing_paths(spec_repo: Path) -> None:
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "a.yaml", KEYSTORE)
    [keystore] = load_specs([spec_repo]).key_stores
    assert isinstance(keystore, KeyStore)
    assert keystore.spec.build is not None
    assert Path(keystore.spec.build.cert) == (spec_repo / "certs" / "client.pem").resolve()
    assert Path(keystore.spec.build.chain[0]).is_absolute()


def test_loading_reads_no_secret(spec_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The key's variable is unset and the password file does not exist: loading still succeeds,
    # because secrets are resolved only when an operation needs them.
    monkeypatch.delenv("PARTNER_KEY", raising=False)
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "a.yaml", KEYSTORE)
    [keystore] = load_specs([spec_repo]).key_stores
    assert keystore.spec.password.from_file == "secrets/keystore-password.txt"
    assert keystore.spec.build is not None
    assert keystore.spec.build.key.describe() == "env:PARTNER_KEY"


def test_references_may_not_leave_the_given_root(spec_repo: Path) -> None:
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "specs" / "a.yaml", KEYSTORE.replace("certs/", "../certs/"))
    # With the repository as root the files are fine ...
    assert len(load_specs([spec_repo / "specs"], root=spec_repo).key_stores) == 1
    # ... with only the specs folder as root they lie outside it.
    lines = problems_of([spec_repo / "specs"], root=spec_repo / "specs")
    assert lines == [
        "specs/a.yaml:8:5: KeyStore/partner-client: spec.build.cert: '../certs/client.pem' points outside the "
        "spec repository; keep referenced files inside it",
        "specs/a.yaml:10:9: KeyStore/partner-client: spec.build.chain[0]: '../certs/client.pem' points outside "
        "the spec repository; keep referenced files inside it",
    ]


FILE_KEYSTORE = textwrap.dedent("""
    apiVersion: mtls-config/v1
    kind: KeyStore
    metadata: {name: NAME}
    spec: {file: FILE, password: {fromEnv: PW}}
    """).lstrip()


def _keystores(*pairs: tuple[str, str]) -> str:
    return "---\n".join(FILE_KEYSTORE.replace("NAME", name).replace("FILE", file) for name, file in pairs)


def test_a_path_named_by_many_specs_gives_each_its_own_answer(spec_repo: Path) -> None:
    # Paths are checked once per folder and run (issue 18): every spec naming a bad path still gets its problem at
    # its own line, and the same text in another folder is checked against that folder.
    (spec_repo / "a").mkdir()
    (spec_repo / "a" / "client.jks").write_bytes(b"jks")
    (spec_repo / "b").mkdir()
    (spec_repo.parent / "elsewhere.jks").write_bytes(b"jks")
    (spec_repo / "b" / "link.jks").symlink_to(spec_repo.parent / "elsewhere.jks")
    write(spec_repo / "a" / "ks.yaml", _keystores(("a1", "client.jks"), ("a2", "client.jks"), ("a3", "gone.jks")))
    write(
        spec_repo / "b" / "ks.yaml",
        _keystores(("b1", "client.jks"), ("b2", "client.jks"), ("b3", "link.jks"), ("b4", "link.jks")),
    )
    write(spec_repo / "c" / "ks.yaml", _keystores(("c1", "../../elsewhere.jks"), ("c2", "../a/client.jks")))
    missing = "file '{}' does not exist (paths are relative to the spec file)"
    link = "'link.jks' is a symbolic link to a file outside the spec repository; copy the file into the repository "
    link += "instead"
    outside = "'../../elsewhere.jks' points outside the spec repository; keep referenced files inside it"
    assert problems_of([spec_repo]) == [
        f"a/ks.yaml:14:8: KeyStore/a3: spec.file: {missing.format('gone.jks')}",
        f"b/ks.yaml:4:8: KeyStore/b1: spec.file: {missing.format('client.jks')}",
        f"b/ks.yaml:9:8: KeyStore/b2: spec.file: {missing.format('client.jks')}",
        f"b/ks.yaml:14:8: KeyStore/b3: spec.file: {link}",
        f"b/ks.yaml:19:8: KeyStore/b4: spec.file: {link}",
        f"c/ks.yaml:4:8: KeyStore/c1: spec.file: {outside}",
    ]


def test_a_spec_path_is_checked_again_by_the_next_load(spec_repo: Path) -> None:
    write(spec_repo / "ks.yaml", _keystores(("a", "client.jks"), ("b", "client.jks")))
    assert len(problems_of([spec_repo])) == 2
    (spec_repo / "client.jks").write_bytes(b"jks")
    specs = load_specs([spec_repo])
    assert [Path(k.spec.file or "") for k in specs.key_stores] == [(spec_repo / "client.jks").resolve()] * 2
    (spec_repo / "client.jks").unlink()
    (spec_repo / "client.jks").mkdir()
    assert problems_of([spec_repo]) == [
        f"ks.yaml:{line}:8: KeyStore/{name}: spec.file: 'client.jks' is not a regular file"
        for line, name in ((4, "a"), (9, "b"))
    ]


def test_a_symbolic_link_out_of_the_repository_is_told_apart_for_every_spec(spec_repo: Path) -> None:
    (spec_repo.parent / "elsewhere.jks").write_bytes(b"jks")
    (spec_repo / "link.jks").symlink_to(spec_repo.parent / "elsewhere.jks")
    write(spec_repo / "ks.yaml", _keystores(("a", "link.jks"), ("b", "link.jks")))
    assert problems_of([spec_repo]) == [
        f"ks.yaml:{line}:8: KeyStore/{name}: spec.file: 'link.jks' is a symbolic link to a file outside the spec "
        "repository; copy the file into the repository instead"
        for line, name in ((4, "a"), (9, "b"))
    ]


# --- checks across resources -----------------------------------------------------------------------------


def test_trust_store_cert_inline_pem(spec_repo: Path) -> None:
    pem = CERT.decode().replace("\n", "\n    ")
    write(
        spec_repo / "a.yaml",
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: partner-ca}\nspec:\n  pem: |\n    "
        + pem
        + "\n",
    )
    [cert] = load_specs([spec_repo]).trust_store_certs
    assert isinstance(cert, TrustStoreCert)
    assert cert.spec.pem is not None
    assert cert.spec.pem.startswith("-----BEGIN CERTIFICATE-----")
    assert cert.spec.format == "pem"


def test_reference_to_a_resource_with_its_own_problems_is_not_reported_twice(spec_repo: Path) -> None:
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "a.yaml", KEYSTORE.replace("spec:\n", "spec:\n  warnDays: -1\n"))
    write(spec_repo / "b.yaml", PROFILE)
    assert problems_of([spec_repo]) == ["a.yaml:6:3: KeyStore/partner-client: spec.warnDays: must be at least 0"]


def test_same_name_in_different_kinds_is_fine_except_for_certificates(spec_repo: Path) -> None:
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    binding = (
        "apiVersion: mtls-config/v1\nkind: MessageBinding\nmetadata: {name: partner-client}\n"
        "spec: {message: {type: soap, name: Orders}, protocolProfile: mauth}\n"
    )
    write(spec_repo / "a.yaml", KEYSTORE + "---\n" + PROFILE + "---\n" + binding)
    specs = load_specs([spec_repo])
    assert [r.name for r in specs.resources] == ["partner-client", "mauth", "partner-client"]


def test_every_pattern_in_the_schemas_has_words_for_messages() -> None:
    import json

    from mtls_config.spec.loader import PATTERN_WORDS
    from mtls_config.spec.models import PROTOCOL_NAME
    from mtls_config.spec.schema import build_schemas

    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(json.dumps(build_schemas())))
    # The name pattern has its own message; the protocol pattern is checked by a validator with its own words.
    assert found - set(PATTERN_WORDS) == {r"^\S(.*\S)?$", PROTOCOL_NAME.pattern}


# --- the spec repository's root without a project file ----------------------------------------------------


def test_default_root_is_the_git_repository_holding_the_paths(spec_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mtls_config.spec.paths import default_spec_root

    (spec_repo / "specs" / "resources").mkdir(parents=True)
    monkeypatch.chdir("/")
    assert default_spec_root([spec_repo / "specs" / "resources"]) == spec_repo.resolve()


def test_default_root_without_git_is_the_working_folder_or_the_common_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mtls_config.spec.paths import default_spec_root

    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "y").mkdir()
    monkeypatch.chdir(tmp_path)
    if any((folder / ".git").exists() for folder in (tmp_path, *tmp_path.parents)):
        pytest.skip("the temporary folder lies inside a git repository")
    assert default_spec_root([tmp_path / "a" / "x"]) == tmp_path.resolve()
    monkeypatch.chdir(tmp_path / "a" / "x")  # the paths are not all below the working folder
    assert default_spec_root([tmp_path / "a" / "x", tmp_path / "a" / "y" / "f.yaml"]) == (tmp_path / "a").resolve()


def test_without_a_project_file_specs_in_a_subfolder_may_use_sibling_folders(
    spec_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The layout of the example stack: resources/*.yaml refer to ../certs/.
    from mtls_config.cli.main import main

    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    write(spec_repo / "resources" / "a.yaml", KEYSTORE.replace("certs/", "../certs/"))
    assert main(["validate", "--no-lint", "resources"]) == 0, capsys.readouterr().err
    write(
        spec_repo / "resources" / "b.yaml",
        KEYSTORE.replace("partner-client", "other").replace("certs/client.pem", "../../x.pem"),
    )
    (spec_repo.parent / "x.pem").write_bytes(CERT)  # exists, but outside the repository
    capsys.readouterr()
    assert main(["validate", "--no-lint", "resources"]) == 1
    assert "'../../x.pem' points outside the spec repository" in capsys.readouterr().err


# --- variables: a file that cannot hold '${' is not walked ---------------------------------------------------

SUBSTITUTION_TEXTS = [
    "a: plain\nb: [1, two, {c: d}]\n",
    "a: ${v}\nb:\n  - x-${v}\n  - $${v}\n  - {c: [d]}\n",
    'a: "\\x24{v}"\nb: "\\u0024{v}"\nc: "\\t"\n',  # double-quoted escapes that make '${' without writing it
    'a: "$\\\n  {v}"\n',  # an escaped line break joins '$' and '{'
    "a: >\n  $\n  {v}\nb: |\n  $\n  {v}\nc: $\n  {v}\n",  # folding makes '$ {v}', a literal block '$\n{v}'
    "a: ${undefined}\n",
    "a: ${not valid}\n",
    "a: !!str ${v}\nb: &x ${v}\nc: *x\n",
]


@pytest.mark.parametrize("text", SUBSTITUTION_TEXTS)
def test_substitution_is_the_same_whether_or_not_the_file_is_walked(spec_repo: Path, text: str) -> None:
    from mtls_config.spec.loader import _substitute

    path = write(spec_repo / "v.yaml", text)
    results = []
    for forced in (False, True):
        docs, problems = read_documents(path, "v.yaml")
        assert problems == []
        [doc] = docs
        if forced:
            doc.may_hold_variables = True
        else:
            assert doc.may_hold_variables is ("${" in text or "\\" in text)
        found: list[Problem] = []
        ok = _substitute(doc, {"v": "VALUE"}, found)
        results.append((ok, doc.data, [str(p) for p in found]))
    assert results[0] == results[1]


def test_a_file_without_variables_is_not_walked(spec_repo: Path) -> None:
    from mtls_config.spec.loader import _substitute

    docs, _ = read_documents(write(spec_repo / "v.yaml", "a: plain\n"), "v.yaml")
    data = docs[0].data
    assert docs[0].may_hold_variables is False
    assert _substitute(docs[0], {}, []) is True
    assert docs[0].data is data  # not copied


def test_models_with_the_same_fields_given_share_one_fields_set_and_keep_what_was_given(spec_repo: Path) -> None:
    # Held for memory (one set per model class and content, not per model): what each model says was given stays
    # its own, and copying one with an update leaves the others as they were.
    text = PROFILE + "---\n" + PROFILE.replace("name: mauth", "name: mauthb") + "---\n"
    text += PROFILE.replace("name: mauth", "name: mauthc").replace(
        "keyStore: partner-client", "keyStore: partner-client\n  port: 8443"
    )
    path = write(spec_repo / "p.yaml", text)
    keystore = write(spec_repo / "ks.yaml", KEYSTORE)
    (spec_repo / "certs").mkdir()
    (spec_repo / "certs" / "client.pem").write_bytes(CERT)
    specs = load_specs([path, keystore], root=spec_repo)
    a, b, c = (specs.get(f"ProtocolProfile/{n}") for n in ("mauth", "mauthb", "mauthc"))
    assert isinstance(a, ProtocolProfile) and isinstance(b, ProtocolProfile) and isinstance(c, ProtocolProfile)
    assert a.spec.model_fields_set == {"key_store"} and c.spec.model_fields_set == {"key_store", "port"}
    assert a.spec.model_fields_set is b.spec.model_fields_set
    assert a.model_fields_set == {"api_version", "kind", "metadata", "spec"}
    copied = a.spec.model_copy(update={"port": 9443})
    assert copied.model_fields_set == {"key_store", "port"}
    assert a.spec.model_fields_set == b.spec.model_fields_set == {"key_store"}
    assert a.spec.model_dump(exclude_unset=True) == {"key_store": "partner-client"}
    with pytest.raises(ValueError, match="frozen"):
        a.spec.port = 1  # type: ignore[misc]


# Documents whose models leave every field with a default at its default (no validation context: paths as written).
DEFAULTS_IN_PLAY = [
    {"kind": "KeyStore", "metadata": {"name": "ks"}, "spec": {"file": "a.jks", "password": {"fromEnv": "P"}}},
    {
        "kind": "KeyStore",
        "metadata": {"name": "ks"},
        "spec": {"build": {"key": {"fromFile": "k.pem"}, "cert": "c.pem"}, "password": {"fromEnv": "P"}},
    },
    {"kind": "TrustStoreCert", "metadata": {"name": "tc"}, "spec": {"file": "a.pem"}},
    {"kind": "TrustStoreCert", "metadata": {"name": "tc"}, "spec": {"file": "a.pem", "expirationNotification": True}},
    {"kind": "ProtocolProfile", "metadata": {"name": "mauth"}, "spec": {"keyStore": "ks"}},
    {
        "kind": "MessageBinding",
        "metadata": {"name": "mb"},
        "spec": {"message": {"type": "rest", "name": "m"}, "protocolProfile": "mauth"},
    },
]


@pytest.mark.parametrize("doc", DEFAULTS_IN_PLAY, ids=lambda doc: doc["kind"])
def test_every_default_is_what_its_field_makes_of_it(doc: dict[str, Any]) -> None:
    # The models do not validate their defaults (validate_default=False: about 1 us a resource of a load), which is
    # the same only while each default is a value its field takes as it is. Written out in full, every default is
    # validated: the model must come out the same.
    model = MODELS[doc["kind"]]
    resource = model.model_validate({"apiVersion": API_VERSION, **doc})
    written_out = resource.model_dump(by_alias=True)
    assert model.model_validate(written_out) == resource
    assert model.model_validate(written_out).model_dump(by_alias=True) == written_out


def test_origins_are_made_whole(spec_repo: Path) -> None:
    # The loader fills an Origin's slots itself (loader._origin): every field as the dataclass would have it.
    made = loader._origin("a.yaml", 3, 5, spec_repo, {("spec",): Mark(4, 1)})
    assert isinstance(made, Origin)
    assert {f.name: getattr(made, f.name) for f in fields(Origin)} == {
        "path": "a.yaml",
        "line": 3,
        "column": 5,
        "base_dir": spec_repo,
        "marks": {("spec",): Mark(4, 1)},
    }
    assert made == Origin("a.yaml", 3, 5, spec_repo)
    assert made.at("spec", "x") == "a.yaml:4:1"
    with pytest.raises(FrozenInstanceError):
        made.line = 1  # type: ignore[misc]
