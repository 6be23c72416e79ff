"""KrakenD's JWT validation, router rate limit and CORS in front of a plugin/http-client endpoint:
what KrakenD refuses never reaches topicgate, so nothing of it is on the topic; what it lets
through is published and read back byte for byte. And KrakenD's OpenTelemetry span as the
record's trace context. And a stream through the http-server mounting behind that telemetry,
which hides the server's writer (the plugin takes the connection over)."""

import time

from conftest import CORS_ORIGIN, RATE_CAPACITY, WRONG_SECRET, e2e, token


def post(kd, path, extra_headers=None):
    return kd.post(path, headers={**e2e.CLASSIC_HEADERS, **(extra_headers or {})})


def assert_published(kd, r, topic):
    assert r.status == 200, r
    body = r.json()
    recs = kd.read_back(topic, body["partition"], body["offset"], 1)
    assert len(recs) == 1 and recs[0].value == e2e.CLASSIC_VALUE and recs[0].key == b"messageKey", recs
    # KrakenD's telemetry is on (see the last test), so each record also carries KrakenD's span.
    own = [(k, v) for k, v in recs[0].headers if k not in ("traceparent", "tracestate")]
    assert own == e2e.CLASSIC_RECORD_HEADERS, recs[0].headers


def test_jwt_refusals_publish_nothing_and_a_valid_token_publishes(kd):
    path = f"/k/jwt/{kd.jwt_topic}"
    refusals = {
        "missing": post(kd, path),
        "wrong signature": post(kd, path, {"Authorization": "Bearer " + token(secret=WRONG_SECRET)}),
        "expired": post(kd, path, {"Authorization": "Bearer " + token(exp_in=-120)}),
        "unknown kid": post(kd, path, {"Authorization": "Bearer " + token(kid="other")}),
        "not a JWT": post(kd, path, {"Authorization": "Bearer abc.def.ghi"}),
    }
    assert {k: r.status for k, r in refusals.items()} == {k: 401 for k in refusals}, refusals
    # None of them reached the plugin: the topic does not even exist yet.
    assert kd.totals(kd.jwt_topic) == {kd.jwt_topic: None}
    r = post(kd, path, {"Authorization": "Bearer " + token()})
    assert_published(kd, r, kd.jwt_topic)
    assert kd.totals(kd.jwt_topic) == {kd.jwt_topic: 1}


def test_rate_limit_refusals_publish_nothing(kd):
    path = f"/k/rate/{kd.rate_topic}"
    statuses = [post(kd, path).status for _ in range(RATE_CAPACITY + 4)]
    assert statuses == [200] * RATE_CAPACITY + [503] * 4, statuses
    assert kd.totals(kd.rate_topic) == {kd.rate_topic: RATE_CAPACITY}


def test_cors_preflight_is_answered_by_krakend_and_publishes_nothing(kd):
    path = f"/k/cors/{kd.cors_topic}"
    preflight = {
        "Origin": CORS_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,message-key",
    }
    r = kd.request("OPTIONS", path, headers=preflight)
    assert r.status in (200, 204), r
    assert r.headers.get("Access-Control-Allow-Origin") == CORS_ORIGIN, dict(r.headers)
    assert "POST" in r.headers.get("Access-Control-Allow-Methods", ""), dict(r.headers)
    # A preflight from an origin not allowed gets no permission.
    r = kd.request("OPTIONS", path, headers={**preflight, "Origin": "https://evil.example"})
    assert r.headers.get("Access-Control-Allow-Origin") is None, dict(r.headers)
    assert kd.totals(kd.cors_topic) == {kd.cors_topic: None}, "a preflight reached the plugin"
    # The actual cross-origin POST is published and carries the CORS answer header.
    r = post(kd, path, {"Origin": CORS_ORIGIN})
    assert r.headers.get("Access-Control-Allow-Origin") == CORS_ORIGIN, dict(r.headers)
    assert_published(kd, r, kd.cors_topic)
    assert kd.totals(kd.cors_topic) == {kd.cors_topic: 1}


def test_the_record_carries_krakends_own_span_when_its_telemetry_is_on(kd):
    """KrakenD's OpenTelemetry continues the client's trace; the record's traceparent is KrakenD's
    backend span (same trace id, a new span id that KrakenD exports), not the client's."""
    trace_id, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = post(kd, f"/k/trace/{kd.trace_topic}", {"traceparent": f"00-{trace_id}-{client_span}-01"})
    assert r.status == 200, r
    body = r.json()
    rec = kd.read_back(kd.trace_topic, body["partition"], body["offset"], 1)[0]
    assert rec.value == e2e.CLASSIC_VALUE, rec
    got = dict(rec.headers)["traceparent"].decode()
    version, tid, span, flags = got.split("-")
    assert (version, tid, flags) == ("00", trace_id, "01") and span != client_span, got
    deadline = time.monotonic() + 20  # the batch span processor exports every few seconds
    while not kd.spans.exported(span):
        assert time.monotonic() < deadline, f"span {span} was never exported ({len(kd.spans.bodies)} exports)"
        time.sleep(0.2)


def test_a_stream_behind_krakends_telemetry_is_produced_while_it_arrives(kd):
    """KrakenD's telemetry/opentelemetry wraps the writer without Unwrap, so full duplex is out of
    reach: the stream takes the connection over. Answers come while the body is still open, every
    record is read back in order, and a silent client is cut by the idle timeout."""
    topic = kd.stream_topic
    s = e2e.Stream(kd, f"/k/stream/{topic}", key="sk", headers="h=1")
    texts = [f"k{i}" for i in range(3000)]
    s.send("".join(f'{{"sample_message": "{t}"}}\n' for t in texts[:10]).encode())
    first = s.lines(10)
    assert s.response().getheader("Connection") == "close", s.response().getheaders()
    for i in range(10, 3000, 500):
        s.send("".join(f'{{"sample_message": "{t}"}}\n' for t in texts[i:i + 500]).encode())
    s.end()
    rest = s.rest()
    end = rest.pop()
    answers = first + rest
    assert end["statusCode"] == "200" and end["written"] == 3000, end
    assert [a["line"] for a in answers] == list(range(1, 3001)) and all(a["statusCode"] == "200" for a in answers)
    p, o = answers[0]["partition"], answers[0]["offset"]
    assert [(a["partition"], a["offset"]) for a in answers] == [(p, o + i) for i in range(3000)]
    recs = kd.read_back(topic, p, o, 3000)
    assert [r.value for r in recs] == [b"\x0a" + bytes([len(t)]) + t.encode() for t in texts]
    assert all(r.key == b"sk" and dict(r.headers).get("h") == b"1" for r in recs), recs[0]

    s = e2e.Stream(kd, f"/k/stream/{topic}")
    s.send(b'{"sample_message": "idle"}\n')
    out = s.rest()
    assert out[-1]["statusCode"] == "408" and out[-1]["stoppedAtLine"] == 2 and out[0]["statusCode"] == "200", out
