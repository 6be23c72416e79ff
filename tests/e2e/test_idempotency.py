"""Idempotency-Key (issue #21 item 3; README "Retries and Idempotency-Key"): a retry with the same
key gets the first answer, same partition and offset, and nothing is written again; the key is in
each record's headers; a different request with the same key is a 422. Both mountings; records are
counted and read back by Kafka's own consumer."""

import json
import uuid

import pytest

from conftest import CLASSIC_HEADERS, metric
from test_batch import NDJSON, new_topic, ndjson, on_topic, read_all, written
from test_publish import check_ok

REPLAYED = "Idempotent-Replayed"


def post(gw, path, body, key, content_type="application/json"):
    return gw.request("POST", path, body=body,
                      headers={**CLASSIC_HEADERS, "Content-Type": content_type, "Idempotency-Key": key})


def idem_total(snapshot, outcome):
    return metric(snapshot, "topicgate_idempotency_total", outcome=outcome)


@pytest.mark.parametrize("path", ["/v1/batch/", "/v2/batch/"])
def test_a_retried_record_is_answered_with_the_first_offset_and_written_once(gw, path):
    topic = new_topic(gw)
    key = str(uuid.uuid4())
    before = gw.metrics()
    first = post(gw, path + topic, b'{"sample_message":"once"}', key)
    again = post(gw, path + topic, b'{"sample_message":"once"}', f'"{key}"')  # the draft's quoted form
    where = check_ok(first, topic)
    assert check_ok(again, topic) == where and again.json() == first.json(), (first, again)
    assert again.headers.get(REPLAYED) == "true" and first.headers.get(REPLAYED) is None, again.headers
    assert on_topic(gw, topic) == 1
    rec = gw.read_back(topic, where[0], where[1], 1)[0]
    assert ("Idempotency-Key", key.encode()) in rec.headers, rec
    assert idem_total(gw.metrics(), "replayed") - idem_total(before, "replayed") == 1


@pytest.mark.parametrize("path", ["/v1/batch/", "/v2/batch/"])
def test_a_retried_batch_is_answered_as_first_and_each_line_carries_key_and_line(gw, path):
    topic = new_topic(gw)
    key = f"batch-{uuid.uuid4()}"
    body = ndjson([f"b{i}" for i in range(4)])
    first = post(gw, path + topic, body, key, NDJSON)
    where = written(first, 4)
    again = post(gw, path + topic, body, key, NDJSON)
    assert written(again, 4) == where and again.headers.get(REPLAYED) == "true", again
    assert on_topic(gw, topic) == 4
    recs = read_all(gw, topic, where)
    assert [dict(r.headers)["Idempotency-Key"] for r in recs] == [f"{key}/{n}".encode() for n in range(1, 5)]


def test_the_same_key_with_another_body_is_422_and_writes_nothing(gw):
    topic = new_topic(gw)
    key = str(uuid.uuid4())
    check_ok(post(gw, "/v1/batch/" + topic, b'{"sample_message":"a"}', key), topic)
    r = post(gw, "/v1/batch/" + topic, b'{"sample_message":"b"}', key)
    assert r.status == 422, r
    assert "Idempotency-Key" in r.json()["message"] and "different request" in r.json()["message"], r
    assert on_topic(gw, topic) == 1
    # Another key, or none, writes.
    check_ok(post(gw, "/v1/batch/" + topic, b'{"sample_message":"b"}', key + "-2"), topic)
    assert on_topic(gw, topic) == 2


def test_a_refused_request_is_not_kept_and_bad_keys_are_400s(gw):
    topic = new_topic(gw)
    key = str(uuid.uuid4())
    r = post(gw, "/v1/batch/" + topic, b'{"sample_message": 5}', key)
    assert r.status == 400 and r.headers.get(REPLAYED) is None, r
    check_ok(post(gw, "/v1/batch/" + topic, b'{"sample_message":"fixed"}', key), topic)  # the key was free
    for bad in ["a b", "x" * 256, '""']:
        r = post(gw, "/v1/batch/" + topic, b'{"sample_message":"z"}', bad)
        assert r.status == 400 and "Idempotency-Key" in r.json()["message"], (bad, r)
    assert on_topic(gw, topic) == 1


def test_a_stream_with_a_key_is_refused(gw):
    topic = new_topic(gw)
    r = gw.request("POST", "/v1/batch/" + topic, body=ndjson(["s"]),
                   headers={"Content-Type": NDJSON, "Accept": NDJSON, "Idempotency-Key": "k"})
    assert r.status == 400 and "streams" in r.json()["message"], r
    assert on_topic(gw, topic) == 0
