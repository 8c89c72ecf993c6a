"""Seed data of an emulated instance: the REST and SOAP messages a fresh instance starts with, under stable
sys_ids (derived from their names, so that a seeded instance looks the same every time).

Pure data. Must never import: starlette or any HTTP library, the client, the engine.
"""

from __future__ import annotations

import hashlib
from typing import Any


def seed_sys_id(*parts: str) -> str:
    """Stable sys_ids for seed records, so that a seeded instance looks the same every time."""
    return hashlib.md5(":".join(("mtls-config-seed", *parts)).encode(), usedforsecurity=False).hexdigest()


SEED_REST_MESSAGES: list[dict[str, Any]] = [
    {
        "record": {
            "name": "Acme Payments API",
            "description": "Card payments and refunds with Acme Payments",
            "rest_endpoint": "https://api.acme-payments.example/v2",
            # The way ServiceNow's docs set up a REST message for mutual auth: "Outbound REST: Create a REST message
            # using basic authentication" (facts-2 §2). The demo binds it.
            "authentication_type": "basic",
        },
        "functions": [
            {
                "function_name": "Default GET",
                "http_method": "get",
                "rest_endpoint": "https://api.acme-payments.example/v2",
            },
            {
                "function_name": "post_payment",
                "http_method": "post",
                "rest_endpoint": "https://api.acme-payments.example/v2/payments",
                "content": '{"amount": "${amount}", "currency": "${currency}"}',
            },
        ],
    },
    {
        "record": {
            "name": "Weather Service",
            "description": "Forecasts for the facilities dashboard",
            "rest_endpoint": "https://api.weather.example/v1/forecast",
            "authentication_type": "no_authentication",
        },
        "functions": [
            {
                "function_name": "Default GET",
                "http_method": "get",
                "rest_endpoint": "https://api.weather.example/v1/forecast",
            },
        ],
    },
]

SEED_SOAP_MESSAGES: list[dict[str, Any]] = [
    {
        "record": {
            "name": "Globex Orders",
            "description": "Order intake at Globex",
            "wsdl": "https://orders.globex.example/ws/OrderService?wsdl",
        },
        "functions": [
            {
                "function_name": "submitOrder",
                "soap_action": "urn:globex:orders#submitOrder",
                "soap_endpoint": "https://orders.globex.example/ws/OrderService",
            },
            {
                "function_name": "getStatus",
                "soap_action": "urn:globex:orders#getStatus",
                "soap_endpoint": "https://orders.globex.example/ws/OrderService",
            },
        ],
    },
    {
        "record": {
            "name": "Legacy Billing",
            "description": "Invoices from the legacy billing system",
            "wsdl": "https://billing.legacy.example/soap/Billing?wsdl",
        },
        "functions": [
            {
                "function_name": "invoice",
                "soap_action": "urn:legacy:billing#invoice",
                "soap_endpoint": "https://billing.legacy.example/soap/Billing",
            },
        ],
    },
]

# An OAuth provider in the Application Registry and an HTTP(s) Connection, the two other places a protocol profile
# is used (facts-2 §3, §4); no mutual auth yet.
SEED_OAUTH_ENTITIES: list[dict[str, str]] = [
    {
        "name": "Acme Payments OAuth",
        "type": "oauth_provider",
        "client_id": "acme-demo-client",
        "default_grant_type": "client_credentials",
        "token_url": "https://auth.acme-payments.example/oauth2/token",
        "auth_url": "https://auth.acme-payments.example/oauth2/authorize",
    },
]

SEED_HTTP_CONNECTIONS: list[dict[str, str]] = [
    {
        "name": "Globex Orders Connection",
        "connection_url": "https://orders.globex.example",
        "host": "orders.globex.example",
        "use_mid": "false",
    },
]

# A group to name in certificates' expiry notifications (facts-2 §6).
SEED_GROUPS: list[dict[str, str]] = [
    {"name": "PKI Operations", "description": "Owns the instance's certificates and keystores"},
]
