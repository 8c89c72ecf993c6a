"""Credentials in an endpoint URL never reach a report or a message."""

from __future__ import annotations

import pytest

from mtls_config.errors import VerifyError
from mtls_config.verify.endpoint import parse_endpoint


def test_userinfo_is_dropped_from_the_endpoint() -> None:
    endpoint = parse_endpoint("https://svc:CANARY-url-pw@api.partner.example:8443/v1/x?y=1")
    assert "CANARY" not in repr(endpoint) and "svc" not in endpoint.url
    assert (endpoint.host, endpoint.port, endpoint.path) == ("api.partner.example", 8443, "/v1/x?y=1")


def test_userinfo_is_not_echoed_in_errors() -> None:
    with pytest.raises(VerifyError) as info:
        parse_endpoint("http://svc:CANARY-url-pw@api.partner.example/")
    assert "CANARY" not in str(info.value) and "api.partner.example" in str(info.value)
