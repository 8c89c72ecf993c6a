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
            "authentication_type": "no_authentication",
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
