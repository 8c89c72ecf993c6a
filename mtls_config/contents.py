"""Content checks: the digest of every file the specs want on the instance, put into the live view.

The inventory vouches for a file it recorded (same attachment, same size): its digest is taken from there. Any
other file is downloaded and digested the way the desired side made its own (``Kind.content_digest``: a keystore
assembled from its parts is compared by its canonical model, which takes its password). This is the one stage of
reading that needs the desired state's secrets, so it is kept apart from ``observe``.

Only reads. Never imports the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

from dataclasses import replace

from mtls_config.concurrency import gather_all
from mtls_config.desired import Desired
from mtls_config.instance import Instance
from mtls_config.live import Live
from mtls_config.resources.common import Attachment, DesiredResource
from mtls_config.resources.registry import kind_named


async def check_contents(client: Instance, desired: Desired, live: Live) -> Live:
    """``live`` with the digest of each desired file's live counterpart (None where there is no single file)."""
    vouched: dict[str, str] = {}
    downloads: list[tuple[DesiredResource, Attachment]] = []
    for d in desired.resources:
        current = live.resources.get(d.address)
        kind = kind_named(d.kind)
        if kind.content_field is None or current is None or d.content is None or len(current.attachments) != 1:
            continue
        attachment = current.attachments[0]
        entry = live.owned(d.address)
        if (
            entry is not None
            and entry.content_attachment == attachment.sys_id
            and entry.content_size == attachment.size
            and entry.content_digest is not None
        ):
            vouched[d.address] = entry.content_digest
        else:
            downloads.append((d, attachment))
    contents = await gather_all(client.download_attachment(a.sys_id) for _, a in downloads)
    for (d, _), data in zip(downloads, contents, strict=True):
        vouched[d.address] = kind_named(d.kind).content_digest(d, data)
    if not vouched:
        return live
    resources = dict(live.resources)
    for address, digest in vouched.items():
        kind = kind_named(resources[address].kind)
        resources[address] = kind.with_content(resources[address], digest)
    return replace(live, resources=resources)
