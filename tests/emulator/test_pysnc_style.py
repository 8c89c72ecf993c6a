"""Requests exactly as ServiceNow's own Python client (PySNC) sends them by default get the answers a real
instance gives: sysparm_display_value=all, sysparm_exclude_reference_link=true,
sysparm_suppress_pagination_header=true on the Table API, /api/now/v1/attachment, and /api/now/v1/batch with
a numeric batch_request_id and the prepared request's own headers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.emulator.conftest import Target, assert_matches

pytestmark = pytest.mark.anyio
PYSNC_PARAMS = {
    "sysparm_display_value": "all",
    "sysparm_exclude_reference_link": "true",
    "sysparm_suppress_pagination_header": "true",
}
PYSNC_HEADERS = {
    "Accept": "application/json",
    "X-WantSessionDebugMessages": "true",
    "X-WantSessionNotificationMessages": "true",
}


async def test_glide_record_round_trip(sn: Target) -> None:
    c = sn.client
    # GlideRecord.insert(): POST with the default params, body = serialize()
    r = await c.post(
        "/api/now/table/sys_certificate",
        params=PYSNC_PARAMS,
        headers=PYSNC_HEADERS,
        json={"name": "pysnc-style-ks", "type": "key_store", "active": "false"},
    )
    assert r.status_code == 201, r.text
    created = r.json()["result"]
    assert_matches(
        created,
        {
            "sys_id": {"display_value": "<sys_id>", "value": "<sys_id>"},
            "name": {"display_value": "pysnc-style-ks", "value": "pysnc-style-ks"},
            "type": {"display_value": "Java Key Store", "value": "key_store"},
            "active": {"display_value": "false", "value": "false"},
            "sys_mod_count": {"display_value": "0", "value": "0"},
        },
    )
    sys_id = created["sys_id"]["value"]
    try:
        # GlideRecord.query(): list with limit/offset and the query, no Link header
        r = await c.get(
            "/api/now/table/sys_protocol_profile",
            params={**PYSNC_PARAMS, "sysparm_query": "ORDERBYprotocol", "sysparm_limit": "100", "sysparm_offset": "0"},
            headers=PYSNC_HEADERS,
        )
        assert r.status_code == 200 and "Link" not in r.headers and "X-Total-Count" in r.headers
        # A reference with display_value=all and no links: {display_value, value}
        r = await c.post(
            "/api/now/table/sys_protocol_profile",
            params=PYSNC_PARAMS,
            headers=PYSNC_HEADERS,
            json={"protocol": "pysncstyle", "default_port": "443", "keystore": sys_id},
        )
        assert r.status_code == 201, r.text
        profile = r.json()["result"]
        assert profile["keystore"] == {"display_value": "pysnc-style-ks", "value": sys_id}
        # GlideRecord.update(): PATCH with only the changes
        r = await c.patch(
            f"/api/now/table/sys_protocol_profile/{profile['sys_id']['value']}",
            params=PYSNC_PARAMS,
            headers=PYSNC_HEADERS,
            json={"default_port": "8443"},
        )
        assert r.json()["result"]["default_port"] == {"display_value": "8443", "value": "8443"}
        assert r.json()["result"]["sys_mod_count"]["value"] == "1"
        # GlideRecord.delete()
        r = await c.delete(f"/api/now/table/sys_protocol_profile/{profile['sys_id']['value']}", headers=PYSNC_HEADERS)
        assert r.status_code == 204
    finally:
        await c.delete(f"/api/now/table/sys_certificate/{sys_id}", headers=PYSNC_HEADERS)


async def test_attachment_api_v1(sn: Target) -> None:
    c = sn.client
    r = await c.post(
        "/api/now/table/sys_certificate", json={"name": "pysnc-attach", "type": "key_store", "active": "false"}
    )
    cert_id = r.json()["result"]["sys_id"]
    try:
        # AttachmentAPI.upload_file
        r = await c.post(
            "/api/now/v1/attachment/file",
            params={"file_name": "ks.jks", "table_name": "sys_certificate", "table_sys_id": cert_id},
            headers={**PYSNC_HEADERS, "Content-Type": "application/octet-stream"},
            content=b"\xfe\xed\xfe\xed-bytes",
        )
        assert r.status_code == 201
        assert r.headers["Location"].endswith(f"/api/now/v1/attachment/{r.json()['result']['sys_id']}/file")
        # Attachment.query(): list with the default params (the Attachment API ignores display values)
        r = await c.get(
            "/api/now/v1/attachment",
            params={**PYSNC_PARAMS, "sysparm_query": f"table_name=sys_certificate^table_sys_id={cert_id}"},
            headers=PYSNC_HEADERS,
        )
        listed = r.json()["result"]
        assert [a["file_name"] for a in listed] == ["ks.jks"] and isinstance(listed[0]["size_bytes"], str)
        # AttachmentAPI.get_file: the session's Accept: application/json still gets the bytes
        r = await c.get(f"/api/now/v1/attachment/{listed[0]['sys_id']}/file", headers=PYSNC_HEADERS)
        assert r.status_code == 200 and r.content == b"\xfe\xed\xfe\xed-bytes"
        r = await c.delete(f"/api/now/v1/attachment/{listed[0]['sys_id']}", headers=PYSNC_HEADERS)
        assert r.status_code == 204
    finally:
        await c.delete(f"/api/now/table/sys_certificate/{cert_id}")


def _prepared_item(id_: str, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """What PySNC's BatchAPI._add_request builds from a bare prepared request (no session headers)."""
    headers = []
    item: dict[str, Any] = {"id": id_, "method": method, "url": url, "headers": headers}
    if body is not None:
        raw = json.dumps(body).encode()
        headers += [
            {"name": "Content-Length", "value": str(len(raw))},
            {"name": "Content-Type", "value": "application/json"},
        ]
        item["body"] = base64.b64encode(raw).decode()
    return item


async def test_batch_api_v1_as_pysnc_sends_it(sn: Target) -> None:
    c = sn.client
    query = "&".join(f"{k}={v}" for k, v in PYSNC_PARAMS.items())
    r = await c.post(
        "/api/now/v1/batch",
        headers=PYSNC_HEADERS,
        json={
            "batch_request_id": 1,
            "rest_requests": [
                _prepared_item(
                    "140001",
                    "POST",
                    f"/api/now/table/sys_properties?{query}",
                    {"name": "pysnc.batch.prop", "value": "a"},
                ),
                _prepared_item(
                    "140002", "GET", f"/api/now/table/sys_properties?{query}&sysparm_query=name%3Dpysnc.batch.prop"
                ),
            ],
        },
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["batch_request_id"] == "1" and data["unserviced_requests"] == []
    by_id = {s["id"]: s for s in data["serviced_requests"]}
    created = json.loads(base64.b64decode(by_id["140001"]["body"]))["result"]
    try:
        assert by_id["140001"]["status_code"] == 201
        assert created["value"] == {"display_value": "a", "value": "a"}
        listed = json.loads(base64.b64decode(by_id["140002"]["body"]))["result"]
        assert [p["name"]["value"] for p in listed] == ["pysnc.batch.prop"]
    finally:
        await c.delete(f"/api/now/table/sys_properties/{created['sys_id']['value']}")
