"""Encoded queries, table-driven: query text -> which of a fixed set of records match (and in what order)."""

from __future__ import annotations

import pytest

from mtls_config.emulator import query as encoded

RECORDS = [
    {"name": "alpha", "port": "443", "type": "key_store", "note": "", "other": "alpha"},
    {"name": "Beta", "port": "8443", "type": "trust_store", "note": "partner cert", "other": "x"},
    {"name": "gamma", "port": "80", "type": "pkcs12_key_store", "note": "", "other": "y"},
]
FIELDS = {"name", "port", "type", "note", "other"}

CASES = [
    ("", ["alpha", "Beta", "gamma"]),
    ("name=alpha", ["alpha"]),
    ("name!=alpha", ["Beta", "gamma"]),
    ("typeINkey_store,pkcs12_key_store", ["alpha", "gamma"]),
    ("typeNOT INkey_store,pkcs12_key_store", ["Beta"]),
    ("nameLIKEet", ["Beta"]),
    ("nameLIKEBET", ["Beta"]),  # LIKE ignores case
    ("nameNOT LIKEa", []),
    ("nameSTARTSWITHg", ["gamma"]),
    ("nameENDSWITHa", ["alpha", "Beta", "gamma"]),
    ("noteISEMPTY", ["alpha", "gamma"]),
    ("noteISNOTEMPTY", ["Beta"]),
    ("port>443", ["Beta"]),  # numbers compare as numbers
    ("port>=443", ["alpha", "Beta"]),
    ("port<443", ["gamma"]),
    ("port<=80", ["gamma"]),
    ("portBETWEEN80@443", ["alpha", "gamma"]),
    ("nameSAMEASother", ["alpha"]),
    ("nameNSAMEASother", ["Beta", "gamma"]),
    ("nameANYTHING", ["alpha", "Beta", "gamma"]),
    ("name=alpha^ORname=gamma", ["alpha", "gamma"]),
    ("name=alpha^ORname=gamma^port=80", ["gamma"]),  # (a OR b) AND c
    ("name=alpha^NQname=Beta", ["alpha", "Beta"]),
    ("name=alpha^bogus=1", ["alpha"]),  # invalid part ignored
    ("name=alpha^nameFOO1", ["alpha"]),  # unknown operator: ignored
    ("Name=alpha", ["alpha", "Beta", "gamma"]),  # field names are case-sensitive: invalid, ignored
    ("name=alpha^EQ", ["alpha"]),
    ("nameINALPHA,gamma", ["alpha", "gamma"]),  # IN ignores case too
    ("nameINalpha,beta^port=8443", ["Beta"]),
    ("nameINalpha^NQname=gamma", ["alpha", "gamma"]),
    ("nameINalpha^ORname=gamma", ["alpha", "gamma"]),
    ("noteIN", ["alpha", "gamma"]),
    ("port=443^nameINalpha,gamma", ["alpha"]),
    ("nameSTARTSWITHg^name=gamma", ["gamma"]),
    ("nameSTARTSWITHB", ["Beta"]),
    ("noteLIKEcert^typeSTARTSWITHtrust", ["Beta"]),
]


def _run(text: str, *, narrow: bool = False, ignore_case: bool = True) -> list[str]:
    parsed = encoded.parse(text, lambda f: f in FIELDS, ignore_case=ignore_case)
    rows = parsed.narrowed(RECORDS) if narrow else RECORDS
    return [r["name"] for r in rows if parsed.matches(lambda f, r=r: r.get(f, ""))]


@pytest.mark.parametrize(("text", "names"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_encoded_query(text: str, names: list[str]) -> None:
    assert _run(text) == names
    # the emulator narrows the rows before testing them (``EncodedQuery.narrowed``): the same answer, either case
    assert _run(text, narrow=True) == names
    assert _run(text, narrow=True, ignore_case=False) == _run(text, ignore_case=False)


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("nameINALPHA,gamma", ["alpha", "gamma"]),
        ("port=443^nameINalpha,gamma", ["alpha"]),  # the first clause that can narrow does
        ("nameINalpha^ORname=gamma", ["alpha", "Beta", "gamma"]),  # a clause of two conditions: all rows tested
        ("nameINalpha^NQname=gamma", ["alpha", "Beta", "gamma"]),  # two queries: all rows tested
        ("nameSTARTSWITHB", ["Beta"]),
        ("noteLIKEcert^typeSTARTSWITHtrust", ["Beta"]),
        ("nameLIKEa", ["alpha", "Beta", "gamma"]),
        ("other.name=alpha", ["alpha", "Beta", "gamma"]),  # dot-walked: all rows tested
    ],
)
def test_a_query_of_names_tests_only_the_rows_named(text: str, left: list[str]) -> None:
    parsed = encoded.parse(text, lambda f: f.partition(".")[0] in FIELDS)
    assert [r["name"] for r in parsed.narrowed(RECORDS)] == left


def test_invalid_parts_are_reported() -> None:
    parsed = encoded.parse("name=alpha^bogus=1^ORDERBYnope^ORDERBYDESCport", lambda f: f in FIELDS)
    assert parsed.invalid_parts == ("bogus=1",)
    assert parsed.order == (encoded.Order("port", True),)  # sorting by an unknown field is dropped


def test_or_without_a_preceding_condition_is_a_field_named_or() -> None:
    parsed = encoded.parse("ORname=alpha", lambda f: f in FIELDS)
    assert parsed.queries == () and parsed.invalid_parts == ("ORname=alpha",)
