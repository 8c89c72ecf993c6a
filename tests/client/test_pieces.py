"""Small pure pieces: IN-list chunking, retry delays, Retry-After, batch wire forms, request stats."""

from __future__ import annotations

import base64
import json
import random

import pytest

from mtls_config.client import BatchRequest, RequestStats, RetryPolicy, in_list_chunks
from mtls_config.client.batch import parse_batch_reply, split_batches
from mtls_config.client.retry import parse_retry_after
from mtls_config.errors import BadResponse


def test_in_list_chunks_fit_the_limit_and_keep_every_value_once() -> None:
    values = [f"{i:032x}" for i in range(500)] + ["0" * 32]
    chunks = list(in_list_chunks(values, max_chars=2000))
    assert len(chunks) > 1
    assert all(len(",".join(chunk)) <= 2000 for chunk in chunks)
    flat = [v for chunk in chunks for v in chunk]
    assert flat == list(dict.fromkeys(values))


def test_in_list_chunks_edge_cases() -> None:
    assert list(in_list_chunks([])) == []
    assert list(in_list_chunks(["x" * 50, "y"], max_chars=10)) == [["x" * 50], ["y"]]
    with pytest.raises(ValueError, match="cannot be part of an IN query"):
        list(in_list_chunks(["a,b"]))


def test_backoff_grows_and_is_capped_and_retry_after_is_honoured_up_to_a_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=60.0)
    rng = random.Random(1)
    for retry in range(10):
        assert 0 <= policy.delay(retry, rng) <= min(8.0, 2**retry)
    assert 5.0 <= policy.delay(0, rng, retry_after=5.0) <= 6.0
    assert policy.delay(0, rng, retry_after=100000.0) <= 61.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_batch_request_wire_form_encodes_the_body_in_base64() -> None:
    request = BatchRequest("1", "post", "/api/now/table/sys_certificate", {"name": "a"})
    wire = request.wire()
    assert wire["method"] == "POST"
    assert json.loads(base64.b64decode(wire["body"])) == {"name": "a"}
    assert "body" not in BatchRequest("2", "GET", "/api/now/table/x").wire()


def test_batch_reply_parsing() -> None:
    body = base64.b64encode(json.dumps({"result": {"sys_id": "a" * 32}}).encode()).decode()
    serviced, unserviced = parse_batch_reply(
        {
            "serviced_requests": [{"id": "1", "status_code": 201, "body": body, "headers": []}],
            "unserviced_requests": ["2", {"id": "3"}],
        }
    )
    assert serviced[0].status == 201 and serviced[0].body == {"result": {"sys_id": "a" * 32}}
    assert unserviced == ["2", "3"]
    with pytest.raises(BadResponse):
        parse_batch_reply(["not", "a", "reply"])
    # An item's record is checked like any other answer: its sys_id could end up in a URL.
    bad = base64.b64encode(json.dumps({"result": {"sys_id": "../sys_user/x"}}).encode()).decode()
    with pytest.raises(BadResponse, match="not 32 hex characters"):
        parse_batch_reply({"serviced_requests": [{"id": "1", "status_code": 201, "body": bad}]})


def test_split_batches_by_count_and_size() -> None:
    requests = [BatchRequest(str(i), "PATCH", "/api/now/table/t/x", {"v": "x" * 100}) for i in range(10)]
    assert [len(g) for g in split_batches(requests, max_items=4, max_bytes=10**6)] == [4, 4, 2]
    one = requests[0].wire_size()
    assert all(len(g) <= 2 for g in split_batches(requests, max_items=50, max_bytes=2 * one + 5))


def test_request_stats_snapshot() -> None:
    stats = RequestStats()
    stats.record("table.list", bytes_sent=10, bytes_received=100, elapsed_ms=12.4)
    stats.record("table.list", bytes_sent=10, bytes_received=50, retry=True)
    stats.record("batch", bytes_sent=1, bytes_received=2)
    snap = stats.snapshot()
    assert snap["total"] == {"requests": 3, "retries": 1, "bytes_sent": 21, "bytes_received": 152, "elapsed_ms": 12}
    assert list(snap) == ["total", "batch", "table.list"]
