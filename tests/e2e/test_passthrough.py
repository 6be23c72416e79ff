"""Requests that no topicgate route owns go to KrakenD untouched."""

import json

import pytest

from conftest import CLASSIC_BODY, CLASSIC_HEADERS


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/not-owned/anything"),
        # Prefix /v1/event/ owns /v1/event/<topic> only, not /v1/eventX/...
        ("POST", "/v1/eventX/{topic}"),
        # No endpoint /v2/other/{topic}: the server plugin passes it on and KrakenD has no route.
        ("POST", "/v2/other/{topic}"),
    ],
)
def test_unowned_path_reaches_krakend(gw, method, path):
    body = CLASSIC_BODY if method == "POST" else None
    r = gw.request(method, path.format(topic=gw.topic), body=body, headers=CLASSIC_HEADERS if body else {})
    # KrakenD's (and kdhost's) own "404 page not found", not a topicgate answer.
    assert r.status == 404, r
    try:
        parsed = json.loads(r.body)
    except ValueError:
        parsed = None
    assert not (isinstance(parsed, dict) and "statusCode" in parsed), f"topicgate answered: {r}"
    assert not r.headers.get("Content-Type", "").startswith("application/json"), r.headers
