"""Batches: application/x-ndjson on the publish routes, one record per line (README "Batches").

Each case writes to a topic of its own (with its own .proto), so what is on the topic afterwards
is exactly what the case wrote. Records are read back by Kafka's own consumer (read_committed)
and checked byte for byte against the answer's partitions and offsets.
"""

import json
import socket
import uuid

import pytest

from conftest import ATOMIC_MAX_RECORD, CLASSIC_PROTO, TIGHT_BODY, TIGHT_RECORDS, metric

NDJSON = "application/x-ndjson"


def new_topic(gw):
    """A fresh topic matching the batch routes' pattern, with the classic schema."""
    topic = f"Batch{uuid.uuid4().hex[:12]}"
    (gw.schema_dir / f"{topic}.proto").write_text(CLASSIC_PROTO)
    return topic


def value(text):
    """The classic schema's encoding of {"sample_message": text} (field 1, length-delimited)."""
    raw = text.encode()
    n, length = len(raw), b""
    while True:
        length += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return b"\x0a" + length + raw


def ndjson(texts):
    return "".join(json.dumps({"sample_message": t}) + "\n" for t in texts).encode()


def post_batch(gw, path, body, key="batch-key", headers="h=1", timeout=60):
    h = {"Content-Type": NDJSON}
    if key is not None:
        h["message-key"] = key
    if headers is not None:
        h["message-headers"] = headers
    return gw.request("POST", path, body=body, headers=h, timeout=timeout)


def written(r, n):
    """The (partition, offset) of each of the n records of a 200 batch answer, in order."""
    assert r.status == 200, r
    b = r.json()
    assert b["statusCode"] == "200" and b["message"] == "ok" and len(b["records"]) == n, b
    assert all(e["statusCode"] == "200" for e in b["records"]), b
    return [(e["partition"], e["offset"]) for e in b["records"]]


def read_all(gw, topic, where):
    """The records at `where` (one partition, increasing offsets), read back in one go."""
    partitions = {p for p, _ in where}
    assert len(partitions) == 1, where
    first = where[0][1]
    recs = gw.read_back(topic, where[0][0], first, where[-1][1] - first + 1)
    by_offset = {r.offset: r for r in recs}
    return [by_offset[o] for _, o in where]


def on_topic(gw, topic):
    """Records ever written to topic (0 when it does not exist)."""
    return gw.totals(topic)[topic] or 0


@pytest.mark.parametrize("n,path", [(1, "/v1/batch/"), (100, "/v1/batch/"), (1000, "/v1/batch/"), (100, "/v2/batch/")])
def test_batch_records_are_written_in_order_with_key_and_headers(gw, n, path):
    """1, 100 and the default limit (1000) records, server and client mounting."""
    topic = new_topic(gw)
    texts = [f"r{i}-" + "x" * (i % 7) for i in range(n)]
    where = written(post_batch(gw, path + topic, ndjson(texts)), n)
    offsets = [o for _, o in where]
    assert offsets == list(range(offsets[0], offsets[0] + n)), "one key, one partition: consecutive offsets"
    for rec, text in zip(read_all(gw, topic, where), texts):
        assert rec.value == value(text) and rec.key == b"batch-key", rec
        assert rec.headers == [("h", b"1")], rec


def test_a_batch_counts_once_as_a_request_and_per_record(gw):
    topic = new_topic(gw)
    before = gw.metrics()
    written(post_batch(gw, "/v1/batch/" + topic, ndjson(["a", "b", "c"])), 3)
    after = gw.metrics()
    requests = lambda s: metric(s, "topicgate_requests_total", topic=topic, status="200")  # noqa: E731
    records = lambda s: metric(s, "topicgate_batch_records_total", topic=topic, status="200")  # noqa: E731
    assert (requests(after) - requests(before), records(after) - records(before)) == (1, 3)


@pytest.mark.parametrize("path", ["/v1/batch/", "/v2/batch/"])
def test_a_bad_line_refuses_the_batch_and_writes_nothing(gw, path):
    topic = new_topic(gw)
    lines = ndjson([f"r{i}" for i in range(50)]).splitlines(keepends=True)
    lines[36] = b'{"sample_message": 5}\n'  # line 37
    r = post_batch(gw, path + topic, b"".join(lines))
    assert r.status == 400, r
    b = r.json()
    assert b["message"].startswith("line 37: ") and "sample_message" in b["message"], b
    assert [e["line"] for e in b["errors"]] == [37], b
    assert on_topic(gw, topic) == 0


def test_partial_mode_writes_exactly_the_good_lines(gw):
    topic = new_topic(gw)
    texts = [f"p{i}" for i in range(10)]
    lines = ndjson(texts).splitlines(keepends=True)
    lines[2] = b'{"sample_message": "ok", "nope": 1}\n'  # line 3: unknown field
    lines[6] = b"not json\n"  # line 7
    r = post_batch(gw, "/v1/partial/" + topic, b"".join(lines))
    assert r.status == 207, r
    b = r.json()
    assert b["message"] == "8 of 10 records written", b
    bad = {e["line"]: e for e in b["records"] if e["statusCode"] != "200"}
    assert set(bad) == {3, 7} and all(e["statusCode"] == "400" for e in bad.values()), b
    assert "nope" in bad[3]["message"], bad
    good = [(e["partition"], e["offset"]) for e in b["records"] if e["statusCode"] == "200"]
    recs = read_all(gw, topic, good)
    assert [r.value for r in recs] == [value(t) for i, t in enumerate(texts) if i not in (2, 6)]
    assert on_topic(gw, topic) == 8


def test_envelope_lines_carry_their_own_key_and_headers(gw):
    topic = new_topic(gw)
    lines = [
        {"value": {"sample_message": "own"}, "key": "k1", "headers": {"a": "1", "b": "2"}},
        {"value": {"sample_message": "defaults"}},
        {"value": {"sample_message": "own key"}, "key": "batch-key"},
    ]
    body = "".join(json.dumps(x) + "\n" for x in lines).encode()
    r = post_batch(gw, "/v1/envelope/" + topic, body)
    assert r.status == 200, r
    recs = {}
    for e in r.json()["records"]:
        recs[e["line"]] = gw.read_back(topic, e["partition"], e["offset"], 1)[0]
    assert (recs[1].key, recs[1].headers, recs[1].value) == (b"k1", [("a", b"1"), ("b", b"2")], value("own"))
    assert (recs[2].key, recs[2].headers) == (b"batch-key", [("h", b"1")]), recs[2]
    assert (recs[3].key, recs[3].headers) == (b"batch-key", [("h", b"1")]), recs[3]
    r = post_batch(gw, "/v1/envelope/" + topic, b'{"value":{"sample_message":"x"}}\n{"key":"k"}\n')
    assert r.status == 400 and r.json()["message"].startswith("line 2: envelope: value: missing"), r


def test_limits_are_named(gw):
    topic = new_topic(gw)
    path = "/v1/tight/" + topic
    r = post_batch(gw, path, ndjson(["a"] * (TIGHT_RECORDS + 1)))
    assert r.status == 413 and f"more than {TIGHT_RECORDS} records" in r.json()["message"], r
    r = post_batch(gw, path, b" " * (TIGHT_BODY + 1))
    assert r.status == 413 and f"batch limit of {TIGHT_BODY} bytes" in r.json()["message"], r
    r = post_batch(gw, path, ndjson(["a", "y" * 80]))
    assert r.status == 413 and r.json()["message"].startswith("line 2: the line is 102 bytes"), r
    r = post_batch(gw, path, b"\n\n")
    assert r.status == 400 and "no records" in r.json()["message"], r
    assert on_topic(gw, topic) == 0


@pytest.mark.parametrize("path", ["/v1/atomic/", "/v2/atomic/"])
def test_an_atomic_batch_is_visible_at_once_and_whole(gw, path):
    topic = new_topic(gw)
    texts = [f"t{i}" for i in range(100)]
    where = written(post_batch(gw, path + topic, ndjson(texts)), 100)
    # read_committed: the records are there as soon as the answer is.
    assert [r.value for r in read_all(gw, topic, where)] == [value(t) for t in texts]


def test_an_atomic_batch_that_fails_part_way_leaves_nothing_visible(gw):
    """Record 10 of 20 is larger than the producer may send: the transaction is aborted, and a
    read_committed consumer skips every record of it (the first record it finds is a later one)."""
    topic = new_topic(gw)
    texts = [f"f{i}" for i in range(20)]
    texts[9] = "z" * (ATOMIC_MAX_RECORD + 100)
    r = post_batch(gw, "/v2/atomic/" + topic, ndjson(texts))
    assert r.status == 413, r
    b = r.json()
    assert "aborted, nothing written" in b["message"] and "record 10" in b["message"], b
    assert all(e["statusCode"] == "413" for e in b["records"]), b
    after = written(post_batch(gw, "/v2/atomic/" + topic, ndjson(["after"])), 1)
    first = gw.read_back(topic, after[0][0], 0, 1)[0]
    assert (first.offset, first.value) == (after[0][1], value("after")), first


def test_the_endpoint_deadline_bounds_an_atomic_commit(gw):
    """The broker is unreachable and transactions.timeout_ms is 20 s; the endpoint's timeout is 1 s.
    The plugin hands the request's deadline to the commit, so the answer is topicgate's 503 (nothing
    written) while KrakenD still takes it; before, the commit ran to 20 s and KrakenD, past its own
    timeout, sent a bare 500 with an empty body."""
    r = post_batch(gw, f"/v2/atomiccut/{gw.topic}", ndjson(["a", "b"]))
    assert r.status == 503, r
    b = r.json()
    assert "nothing written" in b["message"], b
    assert all(e["statusCode"] == "503" for e in b["records"]), b
    assert r.headers.get("Retry-After"), r.headers


def test_hostile_batches_are_refused_quickly_and_write_nothing(gw):
    """A 100 MB line, a million tiny lines, invalid UTF-8 in the middle: each refused with its
    reason, nothing written, and the gateway serves on."""
    topic = new_topic(gw)
    path = "/v1/batch/" + topic
    # 100 MB announced, 1 MB of it sent: the answer comes from Content-Length, nothing is buffered.
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {NDJSON}\r\nContent-Length: {100 << 20}\r\n\r\n".encode())
        s.sendall(b'{"sample_message":"' + b"x" * (1 << 20))
        head = b""
        while b"}" not in head and len(head) < 65536:  # the JSON body closes with "}"
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    assert head.startswith(b"HTTP/1.1 413") and b"batch limit of 16777216 bytes" in head, head[:300]
    r = post_batch(gw, path, b"{}\n" * 1_000_000, timeout=120)
    assert r.status == 413 and "more than 1000 records" in r.json()["message"], r
    lines = ndjson([f"u{i}" for i in range(10)]).splitlines(keepends=True)
    lines[4] = b'{"sample_message":"\xff\xfe"}\n'  # line 5
    r = post_batch(gw, path, b"".join(lines))
    assert r.status == 400 and r.json()["message"].startswith("line 5: ") and "UTF-8" in r.json()["message"], r
    assert on_topic(gw, topic) == 0
    written(post_batch(gw, path, ndjson(["still serving"])), 1)
