"""Certificates with a negative or zero serial number (RFC 5280 forbids them; old and private CAs issued them):
the tool says so in its own words (lint K14/T03, ``inspect`` marks the serial) and cryptography's deprecation
warning never reaches the user. The CLI cases run in fresh interpreters, so that the real warnings machinery runs
(pytest's filters are not there) and stderr is what a user sees."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from mtls_config.keystore import assemble_keystore, load_certificates
from mtls_config.keystore.certs import NON_POSITIVE_SERIAL_WARNING
from tests.keystore.conftest import (
    DER,
    STORE_PASSWORD,
    NonPositiveSerials,
    Pki,
    key_pem,
    keytool,
    pem,
    secret,
    store_args,
)
from tests.reliability.cli_runner import REPO, Finished, base_env, fresh

EXAMPLE = REPO / "specs" / "examples" / "two-partners"
MARK = "(not positive: RFC 5280 forbids it)"


def user_env(**extra: str) -> dict[str, str]:
    env = base_env(**extra)
    if "PYTHONWARNINGS" not in extra:
        env.pop("PYTHONWARNINGS", None)
    return env


def assert_quiet(run: Finished) -> None:
    """Nothing of Python's on stderr: no warning, no path into our package."""
    assert "CryptographyDeprecationWarning" not in run.err, run.err
    assert "serial number which wasn't positive" not in run.err, run.err
    assert "mtls_config/" not in run.err, run.err
    assert run.err == "", run.err


def test_cryptography_still_warns_with_the_message_we_filter(non_positive_serials: NonPositiveSerials) -> None:
    """The filter matches cryptography's wording: if a release rewords it, this fails before users see it. And the
    builder refuses such serials, which is why the fixtures are made with openssl."""
    data = non_positive_serials.negative.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x509.load_pem_x509_certificate(data)
    assert [(w.category, str(w.message).startswith(NON_POSITIVE_SERIAL_WARNING)) for w in caught] == [
        (CryptographyDeprecationWarning, True)
    ]
    for serial in (-5, 0):
        with pytest.raises(ValueError, match="positive"):
            x509.CertificateBuilder().serial_number(serial)


SCRIPT = """
import sys, warnings
from cryptography import x509
from mtls_config.keystore.certs import certificate_info, load_certificates
data = open(sys.argv[1], "rb").read()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", append=True)  # behind the filters already installed, ours among them
    info = certificate_info(load_certificates(data)[0])
    ours = len(caught)
    x509.load_pem_x509_certificate(data)  # the application's own parse: attributed to __main__
    print(ours, len(caught) - ours, info.serial, info.serial_positive)
"""


def test_the_filter_is_ours_alone(non_positive_serials: NonPositiveSerials) -> None:
    """In a plain interpreter (not under pytest's filters): our parses are quiet, an application's own parse of
    the same certificate still warns."""
    for path, serial in ((non_positive_serials.negative, "-5"), (non_positive_serials.zero, "0")):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(path)], env=user_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0", "1", serial, "False"], done.stdout + done.stderr


@pytest.mark.parametrize("pythonwarnings", [None, "error"])
def test_cert_inspect(tmp_path: Path, non_positive_serials: NonPositiveSerials, pythonwarnings: str | None) -> None:
    """Even a user who runs with PYTHONWARNINGS=error gets the certificate shown, not a traceback."""
    env = user_env(**({"PYTHONWARNINGS": pythonwarnings} if pythonwarnings else {}))
    for path, serial in ((non_positive_serials.negative, "-5"), (non_positive_serials.zero, "0")):
        run = fresh(["cert", "inspect", str(path)], cwd=tmp_path, env=env)
        assert run.status == 0, run.out + run.err
        assert f"serial:   {serial} {MARK}" in run.out
        assert_quiet(run)
    run = fresh(["cert", "inspect", "--json", str(non_positive_serials.negative)], cwd=tmp_path, env=env)
    assert run.status == 0, run.err
    [info] = json.loads(run.out)["certificates"]
    assert (info["serial"], info["serial_positive"]) == ("-5", False)
    assert_quiet(run)


def test_a_positive_serial_is_not_marked(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "root.pem").write_bytes(pem(pki.root))
    run = fresh(["cert", "inspect", "--json", "root.pem"], cwd=tmp_path, env=user_env())
    [info] = json.loads(run.out)["certificates"]
    assert info["serial_positive"] is True and not info["serial"].startswith("-")
    run = fresh(["cert", "inspect", "root.pem"], cwd=tmp_path, env=user_env())
    assert "serial:" in run.out and "not positive" not in run.out


def test_keystore_inspect_and_lint_of_a_jks_holding_one_as_trusted(
    tmp_path: Path, pki: Pki, non_positive_serials: NonPositiveSerials
) -> None:
    """keytool imports such a certificate without a word (Java accepts it); we lint the JKS it wrote."""
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="serials.test.example")
    (tmp_path / "client.jks").write_bytes(
        assemble_keystore(key_pem(key), pem(leaf), [pem(pki.ica, pki.root)], secret())
    )
    shutil.copy(non_positive_serials.negative, tmp_path / "old-ca.pem")
    keytool("-importcert", "-noprompt", "-alias", "old-ca", "-file", "old-ca.pem", *store_args("client.jks"),
            cwd=tmp_path)  # fmt: skip
    env = user_env(KS_PASSWORD=STORE_PASSWORD)

    run = fresh(["keystore", "lint", "client.jks", "--store-type", "jks", "--password-env", "KS_PASSWORD"], cwd=tmp_path,
                env=env)  # fmt: skip
    assert run.status == 0, run.out + run.err  # a warning does not fail the lint
    assert "client.jks: warning K14 [old-ca]: trusted certificate CN=Old CA negative has serial number -5" in run.out
    assert "fix: ask the CA to reissue it with a positive serial" in run.out
    assert "0 errors, 1 warning" in run.out
    assert_quiet(run)

    run = fresh(["keystore", "inspect", "client.jks", "--password-env", "KS_PASSWORD"], cwd=tmp_path, env=env)
    assert run.status == 0, run.err
    assert f"serial:   -5 {MARK}" in run.out and run.out.count("not positive") == 1
    assert_quiet(run)


def test_validate_and_plan_of_a_stack_trusting_them(tmp_path: Path, non_positive_serials: NonPositiveSerials) -> None:
    """``plan`` parses the partner certificates in a worker thread while the event loop reads the instance."""
    stack = tmp_path / "stack"
    shutil.copytree(EXAMPLE, stack, ignore=shutil.ignore_patterns(".mtls-config"))
    shutil.copy(non_positive_serials.negative, stack / "certs" / "old-ca.pem")
    zero = load_certificates(non_positive_serials.zero.read_bytes())[0]
    (stack / "certs" / "zero-ca.der").write_bytes(zero.public_bytes(DER))
    (stack / "resources" / "old-partners.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Old partner CA}\n"
        "spec: {format: pem, file: ../certs/old-ca.pem}\n---\n"
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Zero partner CA}\n"
        "spec: {format: der, file: ../certs/zero-ca.der}\n"
    )
    env = user_env()

    run = fresh(["validate"], cwd=stack, env=env)
    assert run.status == 0, run.out + run.err
    assert "resources/old-partners.yaml:4:21: warning T03: CN=Old CA negative has serial number -5" in run.out
    assert "resources/old-partners.yaml:9:21: warning T03: CN=Old CA zero has serial number 0" in run.out
    assert "0 errors, 2 warnings" in run.out
    assert_quiet(run)

    run = fresh(["plan"], cwd=stack, env=env)
    assert run.status == 2, run.out + run.err  # changes to make; the warnings do not block
    assert (
        "TrustStoreCert/Old partner CA: T03: CN=Old CA negative has serial number -5, which is not positive" in run.out
    )
    assert "TrustStoreCert/Zero partner CA: T03: CN=Old CA zero has serial number 0" in run.out
    assert "hint: ask the CA to reissue it with a positive serial" in run.out
    assert_quiet(run)
