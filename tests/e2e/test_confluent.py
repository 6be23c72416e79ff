"""Confluent REST Proxy v3 produce API (README "Confluent REST Proxy v3"): Confluent's documented
request shapes, produced and read back by Kafka's own consumer; its response shapes and error
codes. Server mounting at /kafka/v3/, client mounting at /cv3/ (and /cv3down/, broker down)."""

import base64
import json

import pytest

from conftest import CLASSIC_VALUE, V3_MAX_RECORDS, Stream
from test_batch import new_topic, on_topic, value

CLUSTER = "lkc-abc123"
JSON_CT = {"Content-Type": "application/json"}

# Confluent's documented produce request, with the value in the topic's schema (no "type").
DOC_REQUEST = {
    "partition_id": 1,
    "headers": [{"name": "Header-1", "value": "SGVhZGVyLTE="}, {"name": "Header-2", "value": "SGVhZGVyLTI="}],
    "key": {"type": "BINARY", "data": "Zm9vYmFy"},
    "value": {"data": {"sample_message": "hello world"}},
    "timestamp": "2021-02-05T19:14:42Z",
}


def records_path(prefix, topic, cluster=CLUSTER):
    return f"{prefix}clusters/{cluster}/topics/{topic}/records"


def post(gw, path, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gw.request("POST", path, body=data, headers=JSON_CT)


@pytest.mark.parametrize("prefix", ["/kafka/v3/", "/cv3/"])
def test_documented_request_is_produced_and_answered_as_confluent_does(gw, prefix):
    topic = new_topic(gw)
    r = post(gw, records_path(prefix, topic), DOC_REQUEST)
    assert r.status == 200, r
    b = r.json()
    assert b == {
        "error_code": 200, "cluster_id": CLUSTER, "topic_name": topic, "partition_id": 1,
        "offset": b["offset"], "timestamp": "2021-02-05T19:14:42.000Z",
        "key": {"type": "BINARY", "size": 6}, "value": {"type": "PROTOBUF", "size": len(CLASSIC_VALUE)},
    }, b
    rec = gw.read_back(topic, 1, b["offset"], 1)[0]
    assert (rec.key, rec.value) == (b"foobar", CLASSIC_VALUE), rec
    assert rec.headers == [("Header-1", b"Header-1"), ("Header-2", b"Header-2")], rec


@pytest.mark.parametrize("prefix", ["/kafka/v3/", "/cv3/"])
def test_header_values_are_bytes_in_order_with_duplicates(gw, prefix):
    """Kafka header values are bytes: base64 of 00 ff 80 (not UTF-8) is written as those bytes;
    the headers' order and a repeated name are kept."""
    b64 = lambda raw: base64.b64encode(raw).decode()
    topic = new_topic(gw)
    req = {
        "partition_id": 0,
        "headers": [{"name": "bin", "value": b64(b"\x00\xff\x80")}, {"name": "a", "value": b64(b"1")},
                    {"name": "bin", "value": b64(b"\xfe")}, {"name": "empty", "value": None}],
        "value": {"data": {"sample_message": "hello world"}},
    }
    r = post(gw, records_path(prefix, topic), req)
    assert r.status == 200, r
    rec = gw.read_back(topic, 0, r.json()["offset"], 1)[0]
    assert rec.value == CLASSIC_VALUE, rec
    assert rec.headers == [("bin", b"\x00\xff\x80"), ("a", b"1"), ("bin", b"\xfe"), ("empty", b"")], rec


def test_concatenated_records_get_one_delivery_report_each_in_order(gw):
    """Confluent's streaming mode: several JSON records in one body, a report per record."""
    topic = new_topic(gw)
    reqs = [{"key": {"type": "STRING", "data": "k"}, "value": {"type": "PROTOBUF", "data": {"sample_message": f"s{i}"}}}
            for i in range(5)]
    reqs[3] = {"value": {"data": {"sample_message": 3}}}
    r = post(gw, records_path("/kafka/v3/", topic), b"".join(json.dumps(q).encode() + b"\n" for q in reqs))
    assert r.status == 200, r
    reports = [json.loads(line) for line in r.body.decode().splitlines()]
    assert [x["error_code"] for x in reports] == [200, 200, 200, 42207, 200], reports
    assert "sample_message" in reports[3]["message"], reports[3]
    for i in (0, 1, 2, 4):
        rec = gw.read_back(topic, reports[i]["partition_id"], reports[i]["offset"], 1)[0]
        assert (rec.key, rec.value) == (b"k", value(f"s{i}")), rec


def test_records_batch_answers_successes_and_failures_by_id(gw):
    topic = new_topic(gw)
    entries = [{"id": str(i), "value": {"data": {"sample_message": f"b{i}"}}} for i in range(4)]
    entries[2]["value"] = {"type": "JSON", "data": {"sample_message": "raw JSON"}}
    r = post(gw, records_path("/kafka/v3/", topic) + ":batch", {"entries": entries})
    assert r.status == 207, r
    b = r.json()
    assert sorted(s["id"] for s in b["successes"]) == ["0", "1", "3"], b
    assert [(f["id"], f["error_code"]) for f in b["failures"]] == [("2", 42207)], b
    for s in b["successes"]:
        rec = gw.read_back(topic, s["partition_id"], s["offset"], 1)[0]
        assert rec.value == value(f"b{s['id']}"), rec
    # Confluent's batch constraints: distinct ids, not empty, at most the limit.
    for body, why in [({"entries": [entries[0], entries[0]]}, "not distinct"), ({"entries": []}, "Empty batch"),
                      ({"entries": [{"id": str(i), "value": {"data": {}}} for i in range(V3_MAX_RECORDS + 1)]}, "Too many")]:
        r = post(gw, records_path("/kafka/v3/", topic) + ":batch", body)
        assert r.status == 422 and r.json()["error_code"] == 42208 and why in r.json()["message"], r


def test_error_bodies(gw):
    topic = new_topic(gw)
    # A topic the route does not expose.
    r = post(gw, records_path("/kafka/v3/", "NotExposed"), DOC_REQUEST)
    assert r.status == 404 and r.json() == {"error_code": 40401, "message": "Topic not found."}, r
    # A value that does not fit the schema.
    r = post(gw, records_path("/kafka/v3/", topic), {"value": {"data": {"sample_message": 5}}})
    assert r.status == 422 and r.json()["error_code"] == 42207, r
    assert r.json()["message"].startswith("Error serializing message. ") and "sample_message" in r.json()["message"], r
    # Not a produce request.
    r = post(gw, records_path("/kafka/v3/", topic), b'{"value": ')
    assert r.status == 400 and r.json()["error_code"] == 400, r
    # A header value that is not base64.
    r = post(gw, records_path("/kafka/v3/", topic), {"headers": [{"name": "h", "value": "%%"}],
                                                      "value": {"data": {"sample_message": "x"}}})
    assert r.status == 400 and "headers[0].value" in r.json()["message"], r
    # The broker is down: 503 with Confluent's broker-unavailable code, and Retry-After.
    r = post(gw, records_path("/cv3down/", gw.topic), {"value": {"data": {"sample_message": "x"}}})
    assert r.status == 503 and r.json()["error_code"] == 50302, r
    assert r.headers.get("Retry-After"), r.headers
    assert gw.totals(topic)[topic] in (None, 0)


def test_key_types(gw):
    topic = new_topic(gw)
    cases = [({"type": "STRING", "data": "plain"}, b"plain"), ({"data": "untyped"}, b"untyped"),
             ({"type": "JSON", "data": {"a": 1}}, b'{"a": 1}'),
             ({"type": "BINARY", "data": base64.b64encode(b"\x00\xff").decode()}, b"\x00\xff")]
    for key, want in cases:
        r = post(gw, records_path("/kafka/v3/", topic), {"key": key, "value": {"data": {"sample_message": "k"}}})
        assert r.status == 200, (key, r)
        b = r.json()
        assert gw.read_back(topic, b["partition_id"], b["offset"], 1)[0].key == want, key


def read_reported(gw, topic, reports):
    """The records the reports place, by (partition, offset), read back a partition at a time."""
    got = {}
    for p in {r["partition_id"] for r in reports}:
        offsets = [r["offset"] for r in reports if r["partition_id"] == p]
        for rec in gw.read_back(topic, p, min(offsets), max(offsets) - min(offsets) + 1):
            got[(p, rec.offset)] = rec
    return got


def v3_stream(gw, topic):
    return Stream(gw, records_path("/kafka/v3/", topic), key=None, headers=None,
                  content_type="application/json", accept=None)


def test_a_chunked_records_request_is_streamed_and_each_record_read_back(gw):
    """Confluent's streaming mode, while the body arrives: concatenated requests (with and without
    whitespace between them), each answered by its report in order; a record's error (off the
    schema, invalid UTF-8) is its report and the stream goes on."""
    topic = new_topic(gw)
    s = v3_stream(gw, topic)
    req = lambda i: {"key": {"type": "STRING", "data": f"k{i}"}, "value": {"data": {"sample_message": f"v{i}"}}}
    s.send(json.dumps(req(0)).encode() + json.dumps(req(1)).encode())
    raw = [s.response().readline() for _ in range(2)]  # answered while the request is still open
    assert all(line.endswith(b"}\r\n") for line in raw), raw  # Confluent's report separator
    first = [json.loads(line) for line in raw]
    assert [r["error_code"] for r in first] == [200, 200], first
    bad = {2: b'{"value": {"data": {"sample_message": 7}}}', 3: b'{"value": {"data": {"sample_message": "\xff\xfe"}}}'}
    sent = [req(0), req(1)]
    for start in range(2, 1502, 300):
        chunk = b""
        for i in range(start, start + 300):
            chunk += bad.get(i) or json.dumps(req(i)).encode() + (b"\n" if i % 2 else b"")
            sent.append(None if i in bad else req(i))
        s.send(chunk)
    s.end()
    reports = first + s.rest()
    assert len(reports) == len(sent), (len(reports), reports[-2:])
    assert reports[3]["error_code"] != 200, reports[3]
    assert reports[2]["error_code"] == 42207 and "sample_message" in reports[2]["message"], reports[2]
    for i, (q, r) in enumerate(zip(sent, reports)):
        if q is None:
            continue
        assert r["error_code"] == 200 and r["topic_name"] == topic and r["key"] == {"type": "STRING", "size": len(f"k{i}")}, (i, r)
    ok = [r for r in reports if r["error_code"] == 200]
    assert on_topic(gw, topic) == len(ok), "every record answered 200 is on the topic, once"
    got = read_reported(gw, topic, ok)
    for i, (q, r) in enumerate(zip(sent, reports)):
        if q is not None:
            rec = got[(r["partition_id"], r["offset"])]
            assert (rec.key, rec.value) == (f"k{i}".encode(), value(f"v{i}")), (i, rec)


def test_a_streamed_records_request_ends_at_malformed_json_with_an_error_report(gw):
    topic = new_topic(gw)
    s = v3_stream(gw, topic)
    s.send(b'{"value": {"data": {"sample_message": "before"}}}\n{"value": {"data": nope}}\n'
           b'{"value": {"data": {"sample_message": "after"}}}\n')
    reports = s.lines(2)
    assert reports[0]["error_code"] == 200, reports
    assert reports[1]["error_code"] == 400 and "stopped at record 2" in reports[1]["message"], reports[1]
    s.end()
    assert s.rest() == [], "nothing after the error report"
    assert [r.value for r in read_reported(gw, topic, reports[:1]).values()] == [value("before")]
    assert on_topic(gw, topic) == 1
