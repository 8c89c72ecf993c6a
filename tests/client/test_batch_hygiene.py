"""Batch requests carry the keystore password in their body (apply sets it through the Batch API): their repr
must not, as TableOp's does not, since a repr ends up in assertion output, debuggers and log records."""

from __future__ import annotations

from mtls_config.client import BatchRequest

CANARY = "canary-keystore-password-7f3a"


def test_batch_request_repr_hides_its_body() -> None:
    request = BatchRequest(
        id="0",
        method="PATCH",
        url="/api/now/table/sys_certificate/abc?sysparm_input_display_value=true",
        body={"active": "true", "key_store_password": CANARY},
    )
    assert CANARY not in repr(request)
    assert CANARY not in str(request)
    assert "PATCH" in repr(request)  # still says what it is
