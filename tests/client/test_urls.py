"""A request's URL made once, already encoded (``mtls_config.client.urls``, issue 18): the URL httpx makes of the
same path and parameters, and the requests the emulator receives byte for byte the same as when httpx makes it."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtls_config.client import InstanceClient
from mtls_config.client.urls import UrlMaker, query_text, quote_plus
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings

from .conftest import make_app
from .servers import serve

# Text with what a query holds (names, "=", "^", ","), what must be encoded ("%", "+", "&", spaces, controls), and
# any other character, surrogates included.
texts = st.one_of(
    st.text(alphabet="aZ09_.-~ %+&=,^/?#[]@!$'()*;:\t\n\"<>\\é€😀", max_size=40),
    st.text(max_size=20),
)
params_of = st.dictionaries(texts, texts, max_size=6)
bases = st.sampled_from(
    [
        "http://127.0.0.1:8123",
        "https://acme.service-now.com",
        "https://acme.service-now.com/",
        "https://h.test/sub/path",
    ]
)
paths = st.sampled_from(
    [
        "/api/now/table/sys_certificate",
        "/api/now/table/sys_certificate/" + "a" * 32,
        "/api/now/attachment",
        "/api/now/v1/batch",
        "/api/now/table/../x",  # a dot segment: httpx normalises it, so httpx makes that URL
        "/api/now/table/a%20b",  # anything to quote: httpx
        "/",
    ]
)


@given(texts)
def test_quote_plus_is_urllibs(text: str) -> None:
    try:
        expected = urllib.parse.quote_plus(text)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            quote_plus(text)
        return
    assert quote_plus(text) == expected


@given(bases, paths, params_of)
def test_a_url_made_once_is_the_one_httpx_makes(base: str, path: str, params: dict[str, str]) -> None:
    client = httpx.AsyncClient(base_url=base)
    maker = UrlMaker(client.base_url)
    made = maker.url(client, path, params)
    try:
        expected = client.build_request("GET", path, params=params)
    except UnicodeEncodeError:  # a lone surrogate: httpx cannot send it either, and nothing is made here
        assert made is None
        return
    plain = path not in {"/api/now/table/../x", "/api/now/table/a%20b", "/"}
    try:
        query_text(params)
        encodable = True
    except UnicodeEncodeError:  # pragma: no cover - httpx raised above for those
        encodable = False
    if plain and params and encodable:
        assert made is not None  # the URL is made here, not by httpx's steps again
    if made is None:
        return
    assert query_text(params) == urllib.parse.urlencode(params)
    sent = client.build_request("GET", made)
    assert str(sent.url) == str(expected.url) and sent.url.raw_path == expected.url.raw_path
    assert sent.headers.raw == expected.headers.raw and sent.url == expected.url
    assert maker.url(client, path, params) is not None  # and it stays on after its first check


def test_a_maker_whose_first_url_is_not_httpxs_leaves_every_url_to_httpx() -> None:
    client = httpx.AsyncClient(base_url="https://acme.service-now.com")
    maker = UrlMaker(client.base_url)
    maker._path = "/elsewhere/"  # as another httpx might lay its parts out
    params = {"sysparm_query": "nameINa,b"}
    assert maker.url(client, "/api/now/table/sys_certificate", params) is None
    maker._path = "/"
    assert maker.url(client, "/api/now/table/sys_certificate", params) is None  # checked once: off for good


NAMES = [f"n{i:04d} {suffix}" for i in range(400) for suffix in ("a", "é+%&=", "b~c.d-e_f", "x/y?z#", "€😀")][:1500]


@pytest.mark.anyio
async def test_the_instance_receives_the_same_requests_as_when_httpx_makes_the_urls() -> None:
    """A plan's kind of reads (long IN lists of odd names, paged, with fields) over a real socket: the emulator's
    request log (path and raw query string) and the rows answered are the same with the URLs made once and with
    httpx making each."""
    app = make_app()
    log = app.state.request_log
    with serve(app) as url:
        settings = InstanceSettings(url=url, auth=BasicAuth("admin", SecretValue(b"admin", "test")))
        seen: list[list[tuple[str, str, str]]] = []
        answers = []
        for fast in (True, False):
            log.clear()
            async with InstanceClient(settings) as client:
                if not fast:
                    client._urls._parts = None
                rows = await client.list_in("sys_certificate", "name", NAMES, fields=["sys_id", "name"], page_size=7)
                rows += await client.list("sys_properties", query="nameSTARTSWITHmtls_config.", page_size=3)
                answers.append(rows)
                assert (client._urls._parts is not None) is fast
            seen.append(sorted((e["method"], e["path"], e["query"]) for e in log.snapshot()))
    assert seen[0] == seen[1] and len(seen[0]) >= 3
    assert any(len(query) > 2000 for _, _, query in seen[0])
    assert answers[0] == answers[1]
