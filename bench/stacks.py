"""Synthetic spec repositories of any size, for the benchmarks and the engine's scale tests.

A stack of n resources: a quarter KeyStores (all sharing one JKS file), a quarter ProtocolProfiles (one per
keystore), the rest PEM TrustStoreCerts. ``change_every=k`` rewrites the same stack with every k-th resource
edited (a description, or a profile's port), which is how the "10% changed" scenarios are made: the
certificates are minted once (``mint_pems``) so both versions differ only by those edits.

Never imports the engine's internals, the client or the emulator: it only writes files.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from tests.pki import CA, new_key

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "two-partners"
DOCS_PER_FILE = 500


def counts(n: int) -> tuple[int, int, int]:
    """(keystores, profiles, trust certificates) in a stack of n resources."""
    k = n // 4
    return k, k, n - 2 * k


def mint_pems(count: int) -> list[str]:
    """``count`` self-signed CA certificates (PEM), valid 400 days from now, one EC key for all; basicConstraints
    is their only extension."""
    key = new_key("ec-p256")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    validity = {"not_before": now - dt.timedelta(days=1), "not_after": now + dt.timedelta(days=400)}
    plain = {"key_usage": None, "ski": False}
    return [
        CA.root(f"partner-{i}.example", key=key, serial=i + 1, **validity, **plain).pem.decode() for i in range(count)
    ]


def write_stack(root: Path, n: int, *, change_every: int = 0, pems: list[str] | None = None) -> int:
    """Write the stack's files under ``root``; returns how many resources carry an edit (0 when not asked)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "keystores" / "globex-client.jks", root / "client.jks")
    shutil.copy(EXAMPLE / "demo-secrets" / "keystore-password.txt", root / "password.txt")
    k, _, t = counts(n)
    if pems is None:
        pems = mint_pems(t)
    if len(pems) < t:
        raise ValueError(f"a stack of {n} needs {t} certificates, {len(pems)} given")
    docs: list[str] = []
    edited = 0

    def edit() -> bool:
        nonlocal edited
        hit = change_every > 0 and len(docs) % change_every == 0
        edited += hit
        return hit

    for i in range(k):
        extra = ", description: edited" if edit() else ""
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: KeyStore\nmetadata: {{name: ks-{i:05d}}}\n"
            f"spec: {{file: client.jks, password: {{fromFile: password.txt}}{extra}}}\n"
        )
        letters = "".join(chr(ord("a") + int(d)) for d in f"{i:05d}")
        extra = ", port: 8443" if edit() else ""
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: ProtocolProfile\nmetadata: {{name: p{letters}}}\n"
            f"spec: {{keyStore: ks-{i:05d}{extra}}}\n"
        )
    for i in range(t):
        extra = "  description: edited\n" if edit() else ""
        pem = pems[i].replace("\n", "\n    ")
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: tc-{i:05d}}}\n"
            f"spec:\n{extra}  pem: |\n    {pem.rstrip()}\n"
        )
    # Several files, as a real repository would have: the loader caps a spec file at 1 MiB.
    for old in root.glob("stack-*.yaml"):
        old.unlink()
    for start in range(0, len(docs), DOCS_PER_FILE):
        (root / f"stack-{start // DOCS_PER_FILE:03d}.yaml").write_text(
            "---\n".join(docs[start : start + DOCS_PER_FILE])
        )
    return edited
