"""Commands that write key material either write all of it or nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from tests.keystore.conftest import Pki, key_pem, pem


def test_new_refuses_before_writing_when_the_csr_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "req.csr").write_text("an old request\n")
    code = main(
        ["keystore", "new", "--subject", "CN=c.example", "--key-type", "ec-p256",
         "--key-out", str(tmp_path / "client.key"), "--csr-out", str(tmp_path / "req.csr")]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1 and "exists already" in err
    assert not (tmp_path / "client.key").exists()  # no key without its CSR
    assert (tmp_path / "req.csr").read_text() == "an old request\n"


def test_assemble_does_not_write_a_keystore_that_fails_lint(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = pki.key("ec")
    expired = pki.leaf(key, start=dt.datetime.now(dt.UTC) - dt.timedelta(days=400), days=30)
    (tmp_path / "client.key").write_bytes(key_pem(key))
    (tmp_path / "signed.pem").write_bytes(pem(expired))
    (tmp_path / "ca.pem").write_bytes(pem(pki.ica, pki.root))
    monkeypatch.setenv("KS_PASSWORD", "CANARY-assemble-pw")
    code = main(
        ["keystore", "assemble", "--key", str(tmp_path / "client.key"), "--cert", str(tmp_path / "signed.pem"),
         "--chain", str(tmp_path / "ca.pem"), "--out", str(tmp_path / "client.jks"), "--password-env", "KS_PASSWORD"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert "K11" in out + err and "was not written" in err
    assert not (tmp_path / "client.jks").exists()
    assert "CANARY-assemble-pw" not in out + err
