"""Every error status of the HTTP contract, each reached by a real cause; then the
gateway still serves. 4xx answers must write nothing: the topics' record totals (read by
Kafka's Java client) are taken before the 4xx cases and compared after them."""

import time

import pytest

from conftest import CLASSIC_BODY, CLASSIC_HEADERS, DOWN_RETRY_AFTER, SMALL_LIMIT


def headers(**changes):
    h = {k.lower(): v for k, v in CLASSIC_HEADERS.items()}
    for k, v in changes.items():
        k = k.replace("_", "-").lower()
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return h


def check_error(r, status, *words):
    """HTTP status, JSON body {"statusCode": "<status>", "message": ...} naming `words`."""
    assert r.status == status, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"statusCode", "message"}, body
    assert body["statusCode"] == str(status), body
    for w in words:
        assert w.lower() in body["message"].lower(), f"message does not name {w!r}: {body['message']!r}"
    return body


@pytest.fixture(scope="module")
def before(gw):
    """Record totals of the topics the 4xx cases aim at, before any of them runs (None: no
    such topic). One classic request first, so the classic topic exists and the gateway
    is known to serve before the errors."""
    r = gw.post(f"/v1/event/{gw.topic}")
    assert r.status == 200, r
    t = gw.totals(gw.topic)
    assert t[gw.topic] is not None and t[gw.topic] >= 1, t
    # The 404 cases' topics are unique to this run and nobody creates them: they must stay absent.
    t.update({gw.no_schema_topic: None, gw.not_exposed_topic: None, gw.glue_no_schema_topic: None})
    return t


# (id, method, path template, body, request headers, status, words the message must name)
CASES = [
    ("bad-json", "POST", "/v1/event/{t}", b'{"sample_message": "hello', headers(), 400, ["sample_message", "EOF", "line 1, column 25"]),
    ("bad-json-client", "POST", "/v2/event/{t}", b'{"sample_message": "x",}', headers(), 400, ["line 1, column"]),
    ("not-json", "POST", "/v1/event/{t}", b"not json at all", headers(), 400, ["JSON object"]),
    ("wrong-field-type", "POST", "/v1/event/{t}", b'{"sample_message": 42}', headers(), 400,
     ["sample_message", "expected a string"]),
    ("wrong-field-type-client", "POST", "/v2/event/{t}", b'{"count": "many"}', headers(), 400, ["count"]),
    ("unknown-field", "POST", "/v1/event/{t}", b'{"sample_message": "x", "no_such_field": 1}', headers(), 400,
     ["unrecognized field", "no_such_field"]),
    ("empty-body", "POST", "/v1/event/{t}", b"", headers(), 400, ["empty"]),
    ("bad-message-headers", "POST", "/v1/event/{t}", CLASSIC_BODY,
     headers(message_headers="my_key=myvalue,broken_entry"), 400, ["message-headers", "broken_entry"]),
    ("bad-message-headers-client", "POST", "/v2/event/{t}", CLASSIC_BODY,
     headers(message_headers="no_equals_sign"), 400, ["message-headers", "no_equals_sign"]),
    ("topic-not-exposed", "POST", "/v1/event/{nx}", CLASSIC_BODY, headers(), 404, ["topic", "{nx}", "not exposed"]),
    ("topic-not-exposed-client", "POST", "/v2/event/{nx}", CLASSIC_BODY, headers(), 404, ["{nx}"]),
    ("schema-not-in-file-registry", "POST", "/v1/event/{ns}", CLASSIC_BODY, headers(), 404, ["schema", "{ns}", "not found"]),
    ("schema-not-in-glue", "POST", "/v3/glue/{gns}", CLASSIC_BODY, headers(), 404, ["schema", "{gns}", "not found", "topicgate-tests"]),
    ("body-too-large", "POST", "/v1/small/{t}", b'{"sample_message":"' + b"x" * SMALL_LIMIT + b'"}', headers(), 413,
     ["larger than the limit", str(SMALL_LIMIT)]),
    # Chunked (no Content-Length): the plugin reads at most limit+1 bytes, then answers 413.
    ("body-too-large-chunked", "POST", "/v1/small/{t}", (b'{"sample_message":"', b"x" * SMALL_LIMIT, b'"}'), headers(),
     413, ["larger than the limit", str(SMALL_LIMIT)]),
    ("wrong-content-type", "POST", "/v1/event/{t}", CLASSIC_BODY, headers(content_type="text/plain"), 415,
     ["text/plain"]),
    ("missing-content-type-client", "POST", "/v2/event/{t}", CLASSIC_BODY, headers(content_type=None), 415,
     ["Content-Type"]),
    ("wrong-method", "GET", "/v1/event/{t}", None, headers(content_type=None), 405, ["GET"]),
]


def fill(s, gw):
    return s.format(t=gw.topic, nx=gw.not_exposed_topic, ns=gw.no_schema_topic, gns=gw.glue_no_schema_topic)


@pytest.mark.parametrize("method,path,body,hdrs,status,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error(gw, before, method, path, body, hdrs, status, words):
    r = gw.request(method, fill(path, gw), body=body, headers=hdrs)
    check_error(r, status, *(fill(w, gw) for w in words))
    if status == 405:
        assert r.headers.get("Allow") == "POST", r.headers


def test_4xx_wrote_nothing(gw, before):
    after = gw.totals(*before)
    assert after == before, f"records were written by 4xx requests: before {before}, after {after}"


def test_broker_down_is_503_with_retry_after(gw):
    t0 = time.monotonic()
    r = gw.post(f"/v3/down/{gw.topic}")
    elapsed = time.monotonic() - t0
    check_error(r, 503, "Kafka broker unreachable", "1500 ms")
    assert r.headers.get("Retry-After") == str(DOWN_RETRY_AFTER), r.headers
    assert elapsed < 10, f"503 took {elapsed:.1f} s with a 1.5 s delivery timeout"


def test_endpoint_timeout_ends_the_wait_with_504(gw):
    """The endpoint's timeout (1 s) ends a publish that waits for an unreachable broker before the
    core's own answer (a 503 at 20 s): 504, saying the record may still be written."""
    r = gw.post(f"/v3/cut/{gw.topic}")
    check_error(r, 504, "endpoint timeout", "may still be written")


@pytest.mark.parametrize("path", ["/v1/event/{t}", "/v2/event/{t}"], ids=["server", "client"])
def test_still_serving_after_errors(gw, path):
    r = gw.post(fill(path, gw))
    assert r.status == 200, r
    body = r.json()
    assert body["statusCode"] == "200" and body["topic"] == gw.topic, body
