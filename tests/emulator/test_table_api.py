"""Table API behaviour, table-driven: each case is a request and the status, headers and body the instance
answers. ``{name}`` in a case is filled from the records the ``world`` fixture creates; cases marked
``emulator_only`` depend on seed data, extra users or emulator-only answers and skip on a real instance."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import PartnerCert, Target, assert_matches

ENVELOPE_404 = {
    "error": {"message": "No Record found", "detail": "<any>"},
    "status": "failure",
}

CASES: list[dict[str, Any]] = [
    # ------------------------------------------------------------ reading
    {
        "id": "list-seeded-message-by-name",
        "emulator_only": True,
        "request": {
            "url": "/api/now/table/sys_rest_message",
            "params": {"sysparm_query": "nameSTARTSWITHAcme", "sysparm_fields": "name,rest_endpoint,use_mutual_auth"},
        },
        "expect": {
            "status": 200,
            "headers": {"X-Total-Count": "1", "Content-Type": "application/json;charset=UTF-8"},
            "body": {
                "result": [
                    {
                        "name": "Acme Payments API",
                        "rest_endpoint": "https://api.acme-payments.example/v2",
                        "use_mutual_auth": "false",
                    }
                ]
            },
        },
    },
    {
        "id": "get-profile-reference-link",
        "request": {"url": "/api/now/table/sys_protocol_profile/{profile_id}"},
        "expect": {
            "status": 200,
            "body": {
                "result": {
                    "protocol": "{protocol}",
                    "default_port": "443",
                    "keystore": {"link": "{base}/api/now/table/sys_certificate/{ks_id}", "value": "{ks_id}"},
                    "sys_id": "{profile_id}",
                    "sys_created_on": "<date>",
                    "sys_created_by": "<any>",
                    "sys_mod_count": "0",
                }
            },
        },
    },
    {
        "id": "exclude-reference-link",
        "request": {
            "url": "/api/now/table/sys_protocol_profile/{profile_id}",
            "params": {"sysparm_exclude_reference_link": "true", "sysparm_fields": "keystore"},
        },
        "expect": {"status": 200, "body": {"result": {"keystore": "{ks_id}"}}},
    },
    {
        "id": "display-value-true",
        "request": {
            "url": "/api/now/table/sys_protocol_profile/{profile_id}",
            "params": {"sysparm_display_value": "true", "sysparm_fields": "keystore,default_port"},
        },
        "expect": {
            "status": 200,
            "body": {
                "result": {
                    "keystore": {"display_value": "{ks_name}", "link": "{base}/api/now/table/sys_certificate/{ks_id}"}
                }
            },
        },
    },
    {
        "id": "display-value-all-without-links",
        "request": {
            "url": "/api/now/table/sys_protocol_profile/{profile_id}",
            "params": {
                "sysparm_display_value": "all",
                "sysparm_exclude_reference_link": "true",
                "sysparm_fields": "keystore,protocol",
            },
        },
        "expect": {
            "status": 200,
            "body": {
                "result": {
                    "keystore": {"display_value": "{ks_name}", "value": "{ks_id}", "link": "<absent>"},
                    "protocol": {"display_value": "{protocol}", "value": "{protocol}"},
                }
            },
        },
    },
    {
        "id": "display-value-choice-label",
        "request": {
            "url": "/api/now/table/sys_certificate/{ks_id}",
            "params": {"sysparm_display_value": "true", "sysparm_fields": "type,active"},
        },
        "expect": {"status": 200, "body": {"result": {"type": "Java Key Store", "active": "false"}}},
    },
    {
        "id": "dot-walk-query",
        "request": {
            "url": "/api/now/table/sys_protocol_profile",
            "params": {"sysparm_query": "keystore.name={ks_name}", "sysparm_fields": "protocol"},
        },
        "expect": {"status": 200, "headers": {"X-Total-Count": "1"}, "body": {"result": [{"protocol": "{protocol}"}]}},
    },
    {
        "id": "invalid-query-part-ignored",
        "request": {
            "url": "/api/now/table/sys_protocol_profile",
            "params": {"sysparm_query": "protocol={protocol}^no_such_field=1", "sysparm_fields": "protocol"},
        },
        "expect": {"status": 200, "body": {"result": [{"protocol": "{protocol}"}]}},
    },
    {
        "id": "or-and-orderbydesc",
        "request": {
            "url": "/api/now/table/sys_certificate",
            "params": {
                "sysparm_query": "name={ks_name}^ORname={trust_name}^activeISNOTEMPTY^ORDERBYDESCname",
                "sysparm_fields": "name",
            },
        },
        "expect": {"status": 200, "body": {"result": [{"name": "{trust_name}"}, {"name": "{ks_name}"}]}},
    },
    {
        "id": "in-operator-and-orderby",
        "request": {
            "url": "/api/now/table/sys_certificate",
            "params": {"sysparm_query": "sys_idIN{trust_id},{ks_id}^ORDERBYname", "sysparm_fields": "name"},
        },
        "expect": {"status": 200, "body": {"result": [{"name": "{ks_name}"}, {"name": "{trust_name}"}]}},
    },
    {
        "id": "nq-new-query",
        "request": {
            "url": "/api/now/table/sys_certificate",
            "params": {"sysparm_query": "name={ks_name}^NQname={trust_name}^ORDERBYname", "sysparm_fields": "name"},
        },
        "expect": {"status": 200, "body": {"result": [{"name": "{ks_name}"}, {"name": "{trust_name}"}]}},
    },
    {
        "id": "plain-field-parameters-filter",
        "request": {
            "url": "/api/now/table/sys_protocol_profile",
            "params": {"protocol": "{protocol}", "sysparm_fields": "protocol"},
        },
        "expect": {"status": 200, "body": {"result": [{"protocol": "{protocol}"}]}},
    },
    {
        "id": "invalid-fields-ignored",
        "request": {
            "url": "/api/now/table/sys_protocol_profile/{profile_id}",
            "params": {"sysparm_fields": "protocol,no_such_field"},
        },
        "expect": {
            "status": 200,
            "body": {"result": {"protocol": "{protocol}", "no_such_field": "<absent>", "sys_id": "<absent>"}},
        },
    },
    {
        "id": "pagination-link-and-count",
        "request": {
            "url": "/api/now/table/sys_certificate",
            "params": {"sysparm_query": "nameIN{ks_name},{trust_name}", "sysparm_limit": "1", "sysparm_fields": "name"},
        },
        "expect": {
            "status": 200,
            "headers": {"X-Total-Count": "2", "Link": "<any>"},
            "link_rels": ["first", "next", "last"],
        },
    },
    {
        "id": "suppress-pagination-header",
        "request": {
            "url": "/api/now/table/sys_certificate",
            "params": {"sysparm_query": "name={ks_name}", "sysparm_suppress_pagination_header": "true"},
        },
        "expect": {"status": 200, "headers": {"Link": "<absent>", "X-Total-Count": "1"}},
    },
    {
        "id": "no-count",
        "request": {
            "url": "/api/now/table/sys_certificate",
            "params": {"sysparm_query": "name={ks_name}", "sysparm_no_count": "true"},
        },
        "expect": {"status": 200, "headers": {"X-Total-Count": "<absent>"}},
    },
    {
        "id": "v2-empty-list",
        "request": {
            "url": "/api/now/v2/table/sys_certificate",
            "params": {"sysparm_query": "name=no-such-certificate-anywhere"},
        },
        "expect": {"status": 200, "body": {"result": []}},
    },
    {
        "id": "v1-empty-list-404",
        "emulator_only": True,
        "request": {
            "url": "/api/now/v1/table/sys_certificate",
            "params": {"sysparm_query": "name=no-such-certificate-anywhere"},
        },
        "expect": {"status": 404, "body": ENVELOPE_404},
    },
    {
        "id": "get-missing-record",
        "request": {"url": "/api/now/table/sys_certificate/0123456789abcdef0123456789abcdef"},
        "expect": {"status": 404, "body": ENVELOPE_404},
    },
    {
        "id": "unknown-table",
        "request": {"url": "/api/now/table/u_no_such_table"},
        "expect": {
            "status": 400,
            "body": {"error": {"message": "Invalid table u_no_such_table", "detail": None}, "status": "failure"},
        },
    },
    {
        "id": "unknown-uri",
        "emulator_only": True,
        "request": {"url": "/api/now/no_such_api"},
        "expect": {
            "status": 400,
            "body": {"error": {"message": "Requested URI does not represent any resource"}, "status": "failure"},
        },
    },
    # ------------------------------------------------------------ authentication and roles
    {
        "id": "no-credentials",
        "request": {"url": "/api/now/table/sys_certificate", "auth": None},
        "expect": {
            "status": 401,
            "body": {
                "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                "status": "failure",
            },
        },
    },
    {
        "id": "wrong-password",
        "request": {"url": "/api/now/table/sys_certificate", "auth": ["admin", "not-the-password"]},
        "expect": {"status": 401, "body": {"error": {"message": "User Not Authenticated"}, "status": "failure"}},
    },
    {
        "id": "no-role-read-record-is-404",
        "emulator_only": True,
        "request": {"url": "/api/now/table/sys_protocol_profile/{profile_id}", "auth": ["itil", "itil-pass"]},
        "expect": {"status": 404, "body": ENVELOPE_404},
    },
    {
        "id": "no-role-list-is-filtered",
        "emulator_only": True,
        "request": {"url": "/api/now/table/sys_certificate", "auth": ["itil", "itil-pass"]},
        "expect": {"status": 200, "headers": {"X-Total-Count": "0"}, "body": {"result": []}},
    },
    {
        "id": "no-role-insert-is-403",
        "emulator_only": True,
        "request": {
            "method": "POST",
            "url": "/api/now/table/sys_certificate",
            "auth": ["itil", "itil-pass"],
            "json": {"name": "x"},
        },
        "expect": {
            "status": 403,
            "body": {
                "error": {
                    "message": "Operation Failed",
                    "detail": "ACL Exception Insert Failed due to security constraints",
                },
                "status": "failure",
            },
        },
    },
    {
        "id": "web-service-admin-cannot-write-certificates",
        "emulator_only": True,
        "request": {
            "method": "PATCH",
            "url": "/api/now/table/sys_certificate/{ks_id}",
            "auth": ["wsa", "wsa-pass"],
            "json": {"active": "true"},
        },
        "expect": {"status": 404},
    },
    {
        "id": "web-service-admin-updates-messages",
        "emulator_only": True,
        "request": {
            "method": "PATCH",
            "url": "/api/now/table/sys_rest_message/{acme_id}",
            "auth": ["wsa", "wsa-pass"],
            "json": {"use_mutual_auth": True, "protocol_name": "{profile_id}"},
        },
        "expect": {
            "status": 200,
            "body": {
                "result": {
                    "use_mutual_auth": "true",
                    "protocol_name": {"value": "{profile_id}"},
                    "sys_mod_count": "1",
                    "sys_updated_by": "wsa",
                }
            },
        },
    },
    # ------------------------------------------------------------ headers and bodies
    {
        "id": "accept-xml-not-acceptable",
        "emulator_only": True,
        "request": {"url": "/api/now/table/sys_certificate", "headers": {"Accept": "application/xml"}},
        "expect": {"status": 406, "body": {"status": "failure"}},
    },
    {
        "id": "post-form-encoded-unsupported",
        "request": {
            "method": "POST",
            "url": "/api/now/table/sys_certificate",
            "content": "name=x",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        "expect": {"status": 415},
    },
    {
        "id": "post-invalid-json",
        "request": {
            "method": "POST",
            "url": "/api/now/table/sys_certificate",
            "content": "{not json",
            "headers": {"Content-Type": "application/json"},
        },
        "expect": {"status": 400, "body": {"status": "failure"}},
    },
    {
        "id": "post-without-content-type",
        "emulator_only": True,
        "request": {"method": "POST", "url": "/api/now/table/sys_certificate", "content": "{}"},
        "expect": {"status": 400, "body": {"status": "failure"}},
    },
    {
        "id": "delete-on-collection-not-allowed",
        "emulator_only": True,
        "request": {"method": "DELETE", "url": "/api/now/table/sys_certificate"},
        "expect": {"status": 405, "body": {"status": "failure"}},
    },
    # ------------------------------------------------------------ rules
    {
        "id": "protocol-upper-case-refused",
        "request": {
            "method": "POST",
            "url": "/api/now/table/sys_protocol_profile",
            "json": {"protocol": "MAuth", "default_port": "443"},
        },
        "expect": {
            "status": 400,
            "body": {"error": {"message": "Operation Failed", "detail": "<any>"}, "status": "failure"},
        },
    },
    {
        "id": "protocol-https-refused",
        "request": {"method": "POST", "url": "/api/now/table/sys_protocol_profile", "json": {"protocol": "https"}},
        "expect": {"status": 400},
    },
    {
        "id": "protocol-unique",
        "request": {"method": "POST", "url": "/api/now/table/sys_protocol_profile", "json": {"protocol": "{protocol}"}},
        "expect": {"status": 400},
    },
    {
        "id": "keystore-must-be-a-keystore",
        "emulator_only": True,
        "request": {
            "method": "POST",
            "url": "/api/now/table/sys_protocol_profile",
            "json": {"protocol": "trustprof", "keystore": "{trust_id}"},
        },
        "expect": {"status": 400},
    },
    {
        "id": "certificate-fields-derived",
        "request": {
            "url": "/api/now/table/sys_certificate/{trust_id}",
            "params": {"sysparm_fields": "valid_from,expires,subject,issuer,serial_number,expires_in_days"},
        },
        "expect": {
            "status": 200,
            "body": {
                "result": {
                    "valid_from": "2025-01-02 03:04:05",
                    "expires": "{expires}",
                    "subject": "{subject}",
                    "issuer": "{issuer}",
                    "serial_number": "1234abcd",
                    "expires_in_days": "{expires_in_days}",
                }
            },
        },
    },
    {
        "id": "password2-never-in-clear",
        "request": {
            "url": "/api/now/table/sys_certificate/{ks_id}",
            "params": {"sysparm_fields": "key_store_password"},
        },
        "expect": {"status": 200, "body_excludes": "ks-canary-Secret-91"},
    },
]


@pytest.fixture
async def world(sn: Target, partner_cert: PartnerCert) -> AsyncIterator[dict[str, str]]:
    """Records the cases refer to: a keystore, a PEM trust certificate, a protocol profile."""
    c = sn.client
    suffix = "" if not sn.is_real else "-mtlscfgtest"
    created: list[str] = []

    async def post(table: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await c.post(f"/api/now/table/{table}", json=body, params={"sysparm_input_display_value": "true"})
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()["result"]
        created.append(f"/api/now/table/{table}/{result['sys_id']}")
        return result

    ks = await post(
        "sys_certificate",
        {
            "name": f"emu-test-ks{suffix}",
            "type": "key_store",
            "active": "false",
            "key_store_password": "ks-canary-Secret-91",
        },
    )
    trust = await post(
        "sys_certificate",
        {
            "name": f"emu-test-trust{suffix}",
            "type": "trust_store",
            "format": "pem",
            "pem_certificate": partner_cert.pem,
        },
    )
    profile = await post(
        "sys_protocol_profile",
        {"protocol": "emutest" if not sn.is_real else "mtlscfgtest", "default_port": "443", "keystore": ks["sys_id"]},
    )
    values = {
        "base": str(c.base_url).rstrip("/"),
        "ks_id": ks["sys_id"],
        "ks_name": ks["name"],
        "trust_id": trust["sys_id"],
        "trust_name": trust["name"],
        "profile_id": profile["sys_id"],
        "protocol": profile["protocol"],
        "subject": partner_cert.subject,
        "issuer": partner_cert.issuer,
        "expires": partner_cert.not_after.strftime("%Y-%m-%d %H:%M:%S"),
    }
    values["expires_in_days"] = str((partner_cert.not_after - dt.datetime.now(dt.UTC)).days)
    if not sn.is_real:
        r = await c.get("/api/now/table/sys_rest_message", params={"sysparm_query": "name=Acme Payments API"})
        values["acme_id"] = r.json()["result"][0]["sys_id"]
    yield values
    for url in reversed(created):
        await c.delete(url)


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, sub in values.items():
            value = value.replace("{" + key + "}", sub)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
async def test_table_api(case: dict[str, Any], sn: Target, world: dict[str, str]) -> None:
    if case.get("emulator_only") and sn.is_real:
        pytest.skip("depends on emulator seed data, users or answers")
    req = _fill(case["request"], world)
    expect = _fill(case["expect"], world)
    kwargs: dict[str, Any] = {"params": req.get("params"), "headers": req.get("headers")}
    if "json" in req:
        kwargs["json"] = req["json"]
    if "content" in req:
        kwargs["content"] = req["content"]
    if "auth" in req:
        # auth=None would fall back to the client's credentials: send none at all instead
        kwargs["auth"] = httpx.BasicAuth(*req["auth"]) if req["auth"] else _NoAuth()
    response = await sn.client.request(req.get("method", "GET"), req["url"], **kwargs)
    assert response.status_code == expect["status"], response.text
    for name, want in expect.get("headers", {}).items():
        if want == "<absent>":
            assert name not in response.headers, f"header {name}: {response.headers.get(name)!r}"
        else:
            assert name in response.headers, f"header {name} missing"
            if want != "<any>":
                assert response.headers[name] == want
    if "body" in expect:
        assert_matches(response.json(), expect["body"])
    if "body_excludes" in expect:
        assert expect["body_excludes"] not in response.text
    if "link_rels" in expect:
        rels = [part.split('rel="')[1].rstrip('"') for part in response.headers["Link"].split(",")]
        assert rels == expect["link_rels"]
        next_link = response.headers["Link"].split(",")[1].split(">")[0].lstrip("<")
        assert "sysparm_offset=1" in next_link and "sysparm_limit=1" in next_link


class _NoAuth(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.pop("Authorization", None)
        yield request


def test_cases_are_json_data() -> None:
    """The cases are plain data (they could live in a JSON file); keep them that way."""
    assert json.loads(json.dumps(CASES)) == CASES
