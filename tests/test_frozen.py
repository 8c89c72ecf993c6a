"""``slot_maker`` makes what the class's own constructor makes, for every class the package makes thousands of
with it: the same type, the same values, equal, as frozen; and it refuses a class it cannot fill."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mtls_config.frozen import slot_maker
from mtls_config.keystore.certs import CheckedCertificate
from mtls_config.resources.common import Content, DesiredResource, desired_resource
from mtls_config.secrets import SecretValue
from mtls_config.spec.loader import Origin
from mtls_config.spec.yamlsource import Mark

_WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CASES: list[tuple[type[Any], tuple[Any, ...]]] = [
    (Origin, ("specs/a.yaml", 3, 1, Path("/repo/specs"), {("spec",): Mark(4, 3)})),
    (CheckedCertificate, (b"\x30\x03\x02\x01\x01", b"\x00" * 32, "CN=partner", _WHEN, _WHEN, 7, True)),
    (
        DesiredResource,
        (
            "KeyStore/ks",
            "KeyStore",
            "ks",
            "sys_certificate",
            {"active": True},
            True,
            Content(b"data", "ks.jks", "application/octet-stream", "sha256:00"),
            SecretValue(b"canary-password", "env:KS"),
            ("ProtocolProfile/p",),
            {"warn_days": 30},
            {"functions": "all"},
        ),
    ),
]


@pytest.mark.parametrize(("cls", "values"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_the_maker_makes_what_the_constructor_makes(cls: type[Any], values: tuple[Any, ...]) -> None:
    made, built = slot_maker(cls)(*values), cls(*values)
    assert type(made) is cls
    assert made == built and repr(made) == repr(built)
    assert [getattr(made, f.name) for f in dataclasses.fields(cls)] == list(values)
    assert all(getattr(made, f.name) is v for f, v in zip(dataclasses.fields(cls), values, strict=True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(dataclasses.fields(cls)[0].name, "changed")
    assert not hasattr(made, "__dict__")
    with pytest.raises(TypeError):
        slot_maker(cls)(*values[:-1])  # every field, no defaults


def test_the_kinds_maker_of_desired_resources_is_the_class_filled_in_order() -> None:
    values = CASES[2][1]
    assert desired_resource(*values) == DesiredResource(*values)
    assert "canary-password" not in repr(desired_resource(*values))


def test_a_class_that_cannot_be_filled_slot_by_slot_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithDict:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise AssertionError

    class Plain:
        __slots__ = ("a",)

    for cls in (WithDict, NotFrozen, Checked, Plain):
        with pytest.raises(TypeError):
            slot_maker(cls)
