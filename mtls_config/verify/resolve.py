"""What ``verify`` is asked to check, resolved into targets: one binding, every binding, or one endpoint.

A binding is resolved binding -> protocol profile -> keystore (its key and chain, ``targets``), its endpoint read
from the instance (``endpoints_of``) unless one is given, with what the instance's records say about whether it
would use mutual auth at all, and the trust from the specs' TrustStoreCerts or files.
Specs are loaded only when something names them. With ``keep_going`` (every binding) a binding that cannot be
resolved becomes ``Unresolved`` and the others go on.

How the instance is reached is the caller's: it hands in ``read_endpoints``. Never imports the client, the
emulator or the CLI; never prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mtls_config.concurrency import gather_all
from mtls_config.errors import MtlsConfigError, PermissionDenied, VerifyError
from mtls_config.instance import Instance
from mtls_config.resources.sending import Issue
from mtls_config.secrets import SecretValue
from mtls_config.spec.loader import SpecSet
from mtls_config.spec.models import KeyStore, MessageBinding, ProtocolProfile
from mtls_config.spec.stack import load_stack
from mtls_config.verify.targets import (
    ClientIdentity,
    TrustSet,
    VerifyTarget,
    binding_endpoint,
    binding_on_instance,
    binding_parts,
    https_url,
    identity_from_file,
    identity_from_key_store,
    trust_from_file,
    trust_from_specs,
)

Endpoint = tuple[str, str] | MtlsConfigError  # (URL, where it was found), or why it could not be read


@dataclass(frozen=True)
class OnInstance:
    """A binding as the instance holds it: its endpoint, and what would stop the instance from using mutual auth
    for it (or why that could not be read)."""

    endpoint: Endpoint
    issues: tuple[Issue, ...] | str | None = None  # None: not checked


ReadEndpoints = Callable[[Sequence[MessageBinding]], Mapping[str, OnInstance]]


@dataclass(frozen=True)
class Unresolved:
    """A binding that could not be prepared for verification (a run over every binding goes on with the others)."""

    name: str
    error: MtlsConfigError


class LazySpecs:
    """Specs are loaded only when something names them (a binding, a KeyStore or TrustStoreCert name)."""

    def __init__(self, paths: Sequence[Path], env: str | None, loaded: SpecSet | None = None) -> None:
        self.paths = list(paths)
        self.env = env
        self._specs = loaded

    def get(self) -> SpecSet:
        if self._specs is None:
            self._specs = load_stack(self.paths, self.env).specs
        return self._specs


def is_file_argument(path: Path) -> bool:
    """A NAME|FILE argument that names a file: anything there but a folder (a FIFO or device is then refused by
    the reader, naming it, rather than taken for a spec name)."""
    return path.exists() and not path.is_dir()


def trust_set(items: Sequence[str] | None, specs: LazySpecs) -> TrustSet:
    """Trust from files and TrustStoreCert names; every active TrustStoreCert of the specs when none is given."""
    if not items:
        return trust_from_specs(specs.get())
    total = TrustSet((), ())
    for item in items:
        path = Path(item)
        total = total + (trust_from_file(path) if is_file_argument(path) else trust_from_specs(specs.get(), [item]))
    return total


def identity(keystore: str, password: SecretValue | None, specs: LazySpecs) -> ClientIdentity:
    """The key entry of a keystore file, or of the KeyStore spec of that name."""
    path = Path(keystore)
    if is_file_argument(path):
        return identity_from_file(path, password)
    return identity_from_key_store(specs.get(), keystore, password=password)


def endpoint_target(
    endpoint: str, keystore: str | None, trust: TrustSet, password: SecretValue | None, specs: LazySpecs
) -> VerifyTarget:
    """An endpoint given on its own, with the specs' only keystore unless one is named."""
    if keystore is None:
        stores = specs.get().key_stores
        if len(stores) != 1:
            kinds = KeyStore.kind_name() + "s"
            raise MtlsConfigError(
                "which keystore? the specs hold "
                + (f"{len(stores)} {kinds}" if stores else f"no {KeyStore.kind_name()}"),
                hint="give --keystore NAME|FILE",
            )
        keystore = stores[0].name
    return VerifyTarget(endpoint, https_url(endpoint), identity(keystore, password, specs), trust, "--endpoint")


def binding_targets(
    names: Sequence[str],
    specs: SpecSet,
    keystore: str | None,
    trust: TrustSet,
    password: SecretValue | None,
    endpoint: str | None,
    read_endpoints: ReadEndpoints,
    *,
    keep_going: bool,
) -> list[VerifyTarget | Unresolved]:
    """Resolve each binding; with ``keep_going`` one that cannot be resolved becomes ``Unresolved`` instead of
    stopping the run. ``endpoint`` replaces every binding's; otherwise ``read_endpoints`` reads them."""
    lazy = LazySpecs([], None, specs)
    identities: dict[str, ClientIdentity | MtlsConfigError] = {}
    prepared: list[tuple[MessageBinding, ProtocolProfile, ClientIdentity] | Unresolved] = []
    for name in names:
        try:
            binding, profile, key_store = binding_parts(specs, name)
            wanted = keystore or key_store.name
            if wanted not in identities:
                try:
                    identities[wanted] = identity(wanted, password, lazy)
                except MtlsConfigError as exc:
                    identities[wanted] = exc
            found = identities[wanted]
            if isinstance(found, MtlsConfigError):
                raise found
            prepared.append((binding, profile, found))
        except MtlsConfigError as exc:
            if not keep_going:
                raise
            prepared.append(Unresolved(name, exc))
    ready = [p for p in prepared if not isinstance(p, Unresolved)]
    if endpoint is not None:  # the instance is not asked at all
        urls: Mapping[str, OnInstance] = {b.name: OnInstance((endpoint, "--endpoint")) for b, _p, _i in ready}
    else:
        urls = read_endpoints([b for b, _p, _i in ready]) if ready else {}
    out: list[VerifyTarget | Unresolved] = []
    for item in prepared:
        if isinstance(item, Unresolved):
            out.append(item)
            continue
        binding, profile, client = item
        url_found = urls[binding.name].endpoint
        try:
            if isinstance(url_found, MtlsConfigError):
                raise url_found
            url = https_url(url_found[0], profile)
        except MtlsConfigError as exc:
            if not keep_going:
                raise
            out.append(Unresolved(binding.name, exc))
            continue
        out.append(VerifyTarget(binding.name, url, client, trust, url_found[1], urls[binding.name].issues))
    return out


async def endpoints_of(
    client: Instance, bindings: Sequence[MessageBinding], ports: Mapping[str, int] | None = None
) -> dict[str, OnInstance]:
    """Each binding's endpoint as the instance holds it, and what its records say about mutual auth (``ports``: the
    port of each profile by name, for its protocol properties); a binding whose record cannot give them gets the
    reason (failures of the instance as a whole stop the run)."""

    async def one(binding: MessageBinding) -> OnInstance:
        try:
            endpoint: Endpoint = await binding_endpoint(client, binding)
        except VerifyError as exc:
            return OnInstance(exc, exc.message)
        port = (ports or {}).get(binding.spec.protocol_profile, 443)
        try:
            return OnInstance(endpoint, await binding_on_instance(client, binding, port))
        except (VerifyError, PermissionDenied) as exc:  # the handshake can still be tried
            return OnInstance(endpoint, exc.message)

    found = await gather_all(one(b) for b in bindings)
    return {b.name: f for b, f in zip(bindings, found, strict=True)}
