"""The request's W3C trace context (traceparent, tracestate, baggage) is written into the record as
headers, in both mounting styles, so a consumer continues the trace; a name the client also sends in
message-headers keeps the client's value."""

import pytest

from conftest import CLASSIC_HEADERS

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE = {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE", "baggage": "userId=alice"}


def publish_and_read(gw, path, headers):
    r = gw.post(path.format(t=gw.topic), headers=headers)
    assert r.status == 200, r
    body = r.json()
    (rec,) = gw.read_back(gw.topic, body["partition"], body["offset"], 1)
    return dict(rec.headers)


@pytest.mark.parametrize("path", ["/v1/event/{t}", "/v2/event/{t}"], ids=["server", "client"])
def test_trace_headers_reach_the_record(gw, path):
    got = publish_and_read(gw, path, {**CLASSIC_HEADERS, **TRACE})
    for name, value in TRACE.items():
        assert got.get(name) == value.encode(), (name, got)
    assert got.get("my_key") == b"myvalue", got  # message-headers still there


def test_message_headers_win_over_the_copied_trace_context(gw):
    headers = {**CLASSIC_HEADERS, **TRACE, "message-headers": "traceparent=mine,my_key=myvalue"}
    got = publish_and_read(gw, "/v1/event/{t}", headers)
    assert got["traceparent"] == b"mine" and got["tracestate"] == TRACE["tracestate"].encode(), got


def test_an_invalid_traceparent_is_not_copied(gw):
    got = publish_and_read(gw, "/v1/event/{t}", {**CLASSIC_HEADERS, "traceparent": "not-a-traceparent",
                                                 "tracestate": "a=b"})
    assert "traceparent" not in got and "tracestate" not in got, got
