"""Reading topics over HTTP (issue #22, first slice): records written by Kafka's own producer
(confluent-kafka) in raw Protobuf, Avro and JSON read back through the paged GET and the
Server-Sent Events stream, decoded by the topic's schema, with exact keys, headers, partitions and
offsets; Last-Event-ID resumes exactly across a gateway restart while a writer keeps producing.

Its own gateway (route /r/event/ with a read block, /r/write/ without) on the test Kafka.
"""

import base64
import http.client
import io
import json
import socket
import threading
import time
import urllib.parse

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import CLASSIC_PROTO, ROOT, Gateway, metric, running

PARTITIONS = 2
STALL_MS = 1000  # read.max_stall_ms of the test route
AVRO_SCHEMA = fastavro.parse_schema(json.loads((ROOT / "krakend" / "schemas" / "MyAvroTopic.avsc").read_text()))


class ReadGateway(Gateway):
    """The gateway with only the routes these tests use."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.write_only_topic = f"WriteOnly{self.run_id}"

    def write_schemas(self):
        if not self.schema_dir.exists():
            super().write_schemas()

    def routes(self):
        """The server block's routes (the read tests' modules give their own)."""
        readable = [self.topic, self.avro_topic, self.json_topic]
        return [
            {"path_prefix": "/r/event/", "topics": [*readable, self.write_only_topic],
             "read": {"topics": readable, "raw_on_error": True, "keep_alive_ms": 500,
                      "max_stall_ms": STALL_MS}},
            {"path_prefix": "/r/write/", "topics": [self.topic]},
        ]

    def server_settings(self):
        """Settings of the server block beside its routes."""
        return {}

    def write_config(self):
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        srv = base["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"]["kafka"]["bootstrap_servers"] = self.bootstrap
        srv["core"]["registry"] = {"kind": "file", "directory": str(self.schema_dir)}
        srv.update(self.server_settings())
        srv["routes"] = self.routes()
        base["endpoints"] = []
        base["port"] = self.port
        base["listen_ip"] = "127.0.0.1"
        base["plugin"]["folder"] = str(ROOT / "build") + "/"
        self.config_path.write_text(json.dumps(base, indent=2))

    def create_glue_schema(self):
        pass

    def delete_glue_schema(self):
        pass


@pytest.fixture(scope="module")
def rgw():
    yield from running(ReadGateway, "topicgate-read-")


def create_topics(bootstrap, names):
    """Creates `names` with PARTITIONS partitions each and waits (30 s at most) until the broker's
    metadata shows them all: a new topic's metadata reaches the broker's answers a moment later."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in names], operation_timeout=30).values():
        f.result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10).topics
        if all(t in md and len(md[t].partitions) == PARTITIONS and md[t].error is None for t in names):
            return names
        time.sleep(0.2)
    raise AssertionError(f"topics {names} did not appear within 30 s")


def readable_topics(gw, paths):
    """Creates the gateway's three topics and waits (30 s at most) until a page reads on each of
    `paths`: leaders are elected a moment after the metadata names the partitions."""
    names = create_topics(gw.bootstrap, [gw.topic, gw.json_topic, gw.avro_topic])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(get(gw, f"{p}?limit=1").status == 200 for p in paths):
            return names
        time.sleep(0.2)
    raise AssertionError(f"topics {names} did not become readable within 30 s")


@pytest.fixture(scope="module")
def topics(rgw):
    return create_topics(rgw.bootstrap, [rgw.topic, rgw.avro_topic, rgw.json_topic])


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def proto_event(message, count, note):
    """CLASSIC_PROTO's Event by hand: field 1 string, 2 int64, 3 Detail {1 string}."""
    assert "message Event" in CLASSIC_PROTO
    m = message.encode()
    n = note.encode()
    detail = b"\x0a" + varint(len(n)) + n
    return b"\x0a" + varint(len(m)) + m + b"\x10" + varint(count) + b"\x1a" + varint(len(detail)) + detail


def avro_event(value):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, AVRO_SCHEMA, value)
    return buf.getvalue()


def produce(bootstrap, topic, records):
    """Writes records [(partition, key, value bytes, headers)] with Kafka's producer; their
    (partition, offset) in order."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    out = [None] * len(records)

    def done(i):
        def cb(err, msg):
            assert err is None, err
            out[i] = (msg.partition(), msg.offset())
        return cb

    for i, (partition, key, value, headers) in enumerate(records):
        p.produce(topic, value=value, key=key, headers=headers, partition=partition, on_delivery=done(i))
    assert p.flush(30) == 0
    return out


def get(gw, path, headers=None):
    r = gw.request("GET", path, headers=headers)
    return r


def test_paged_get_reads_every_format_back_decoded_with_keys_headers_and_positions(rgw, topics):
    proto_records = [
        (0, b"k0", proto_event("hello", 5, "n0"), [("h", b"v0"), ("h", b"dup")]),
        (1, b"k1", proto_event("world", 7, "n1"), [("trace", b"\xff\x00")]),
        (0, None, b"\xff\xff\xff", []),  # not Protobuf of the schema: an error entry, raw bytes kept
    ]
    placed = produce(rgw.bootstrap, rgw.topic, proto_records)
    # Across all partitions, from the start.
    r = get(rgw, f"/r/event/{rgw.topic}?start=earliest&limit=10")
    assert r.status == 200, r
    page = r.json()
    got = sorted(page["records"], key=lambda e: (e["partition"], e["offset"]))
    assert [(e["partition"], e["offset"]) for e in got] == sorted(placed)
    by_pos = {(e["partition"], e["offset"]): e for e in got}
    e0 = by_pos[placed[0]]
    assert e0["value"] == {"sample_message": "hello", "count": "5", "detail": {"note": "n0"}}
    assert e0["key"] == "k0"
    assert e0["headers"] == [{"name": "h", "value": "v0"}, {"name": "h", "value": "dup"}]
    assert isinstance(e0["timestamp"], int) and e0["timestamp"] > 0
    e1 = by_pos[placed[1]]
    assert e1["value"] == {"sample_message": "world", "count": "7", "detail": {"note": "n1"}}
    assert e1["headers"] == [{"name": "trace", "value_base64": base64.b64encode(b"\xff\x00").decode()}]
    bad = by_pos[placed[2]]
    assert "value" not in bad
    assert f"partition {placed[2][0]} offset {placed[2][1]}" in bad["error"], bad
    assert base64.b64decode(bad["value_base64"]) == b"\xff\xff\xff"
    snap = rgw.metrics()
    assert metric(snap, "topicgate_read_decode_failures_total", topic=rgw.topic) >= 1
    assert metric(snap, "topicgate_read_records_total", topic=rgw.topic) >= 3
    assert metric(snap, "topicgate_read_bytes_total", topic=rgw.topic) > 0
    assert bad["key"] is None
    # The next position names every partition, after its last record.
    ends = {p: max(o for pp, o in placed if pp == p) + 1 for p, _ in placed}
    assert page["next"] == ",".join(f"{p}:{ends.get(p, 0)}" for p in range(PARTITIONS))

    # One partition from an offset, limited: exactly the records asked for, and a next to go on.
    p0 = sorted(o for p, o in placed if p == 0)
    r = get(rgw, f"/r/event/{rgw.topic}?partition=0&offset={p0[0]}&limit=1")
    assert r.status == 200, r
    assert [(e["partition"], e["offset"]) for e in r.json()["records"]] == [(0, p0[0])]
    assert r.json()["next"] == f"0:{p0[0] + 1}"
    r = get(rgw, f"/r/event/{rgw.topic}?position={urllib.parse.quote(r.json()['next'])}&limit=10")
    assert [(e["partition"], e["offset"]) for e in r.json()["records"]] == [(0, o) for o in p0[1:]]

    # Avro and JSON Schema topics: the values as written.
    avro_value = {"sample_message": "a", "event_id": 9007199254740993, "amount": 1.25, "urgent": True,
                  "tags": ["x", "y"], "source": {"system": "s", "instance": 4}, "attributes": {"k": "v"},
                  "level": "LEVEL_HIGH"}
    [apos] = produce(rgw.bootstrap, rgw.avro_topic, [(1, b"ak", avro_event(avro_value), [])])
    r = get(rgw, f"/r/event/{rgw.avro_topic}?partition=1&offset={apos[1]}&limit=5")
    assert r.status == 200, r
    [e] = r.json()["records"]
    assert (e["partition"], e["offset"], e["key"], e["value"]) == (1, apos[1], "ak", avro_value)
    json_value = {"sample_message": "j", "nested": {"list": [1, 2.5, None, "s"]}}
    [jpos] = produce(rgw.bootstrap, rgw.json_topic, [(0, None, json.dumps(json_value).encode(), [("a", b"b")])])
    r = get(rgw, f"/r/event/{rgw.json_topic}?partition=0&offset={jpos[1]}&limit=5")
    [e] = r.json()["records"]
    assert (e["offset"], e["value"], e["headers"]) == (jpos[1], json_value, [{"name": "a", "value": "b"}])


def test_long_poll_waits_for_the_first_record(rgw, topics):
    r = get(rgw, f"/r/event/{rgw.json_topic}?partition=1&limit=1")
    assert r.status == 200, r
    end = r.json()["next"]
    result = {}

    def poll():
        result["r"] = get(rgw, f"/r/event/{rgw.json_topic}?position={urllib.parse.quote(end)}&limit=5&wait=20000")

    t = threading.Thread(target=poll)
    t.start()
    # Written after the poll began (it waits up to 20 s for it).
    time.sleep(0.5)
    [pos] = produce(rgw.bootstrap, rgw.json_topic, [(1, None, b'{"late":true}', [])])
    t.join(30)
    r = result["r"]
    assert r.status == 200, r
    assert [(e["partition"], e["offset"], e["value"]) for e in r.json()["records"]] == [(1, pos[1], {"late": True})]


def test_bad_requests_are_refused_naming_the_field(rgw, topics):
    r = get(rgw, f"/r/event/{rgw.write_only_topic}")
    assert r.status == 404 and "not readable" in r.json()["message"], r
    for query, field in [("limit=0", "limit"), ("limit=5000", "limit"), ("offset=3", "offset"),
                         ("partition=x", "partition"), ("start=yesterday", "start"), ("wait=-1", "wait"),
                         ("position=0:1:2", "position"), ("nope=1", "nope")]:
        r = get(rgw, f"/r/event/{rgw.topic}?{query}")
        assert r.status == 400 and field in r.json()["message"], (query, r)
    r = get(rgw, f"/r/event/{rgw.topic}?partition=7")
    assert r.status == 400 and "partition" in r.json()["message"], r
    r = get(rgw, f"/r/event/{rgw.topic}?partition=0&offset=999999")
    assert r.status == 400 and "offset" in r.json()["message"], r
    for bad in ["garbage", "0:", "0:1,0:2", "-1:4"]:
        r = get(rgw, f"/r/event/{rgw.topic}", headers={"Accept": "text/event-stream", "Last-Event-ID": bad})
        assert r.status == 400 and "Last-Event-ID" in r.json()["message"], (bad, r)


def test_the_write_route_never_answers_a_get_with_data(rgw, topics):
    produce(rgw.bootstrap, rgw.topic, [(0, None, proto_event("secret", 1, "s"), [])])
    for accept in ["application/json", "text/event-stream"]:
        r = get(rgw, f"/r/write/{rgw.topic}?start=earliest", headers={"Accept": accept})
        assert r.status == 405, r
        assert b"secret" not in r.body


class Events:
    """An open event stream, read event by event."""

    def __init__(self, gw, path, last_event_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type") == "text/event-stream"
        self.comments = 0

    def next(self):
        """The next event as (id, event type, data JSON)."""
        fields = {}
        while True:
            line = self.resp.readline()
            assert line, "the stream ended"
            line = line.decode().rstrip("\n")
            if line == "":
                if fields:
                    return fields.get("id"), fields.get("event"), json.loads(fields["data"])
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            k, _, v = line.partition(": ")
            fields[k] = v

    def close(self):
        self.conn.close()


def test_sse_resumes_exactly_after_the_last_event_across_a_gateway_restart(rgw, topics):
    topic = rgw.topic
    r = get(rgw, f"/r/event/{topic}?limit=1")
    assert r.status == 200, r
    start = r.json()["next"]  # the end now: where the stream begins
    first = [(i % PARTITIONS, f"k{i}".encode(), proto_event(f"m{i}", i, "x"), [("i", str(i).encode())])
             for i in range(10)]
    written = dict(zip(produce(rgw.bootstrap, topic, first), first))
    ev = Events(rgw, f"/r/event/{topic}", last_event_id=start)
    got, last_id = [], None
    for _ in range(4):
        last_id, kind, data = ev.next()
        assert kind == "record"
        got.append(data)
    ev.close()
    for d in got:
        _, key, _, _ = written[(d["partition"], d["offset"])]
        assert d["key"] == key.decode()
    # Exactly where the four events leave each partition.
    resume = dict(tuple(map(int, item.split(":"))) for item in last_id.split(","))

    stop = threading.Event()
    more = {}

    def writer():
        i = 100
        while not stop.is_set():
            recs = [(i % PARTITIONS, f"k{i}".encode(), proto_event(f"m{i}", i, "y"), [])]
            more.update(zip(produce(rgw.bootstrap, topic, recs), recs))
            i += 1

    w = threading.Thread(target=writer)
    w.start()
    try:
        rgw.stop()
        rgw.start()
        # The writer keeps producing while the client reconnects.
        time.sleep(0.5)
    finally:
        stop.set()
        w.join(60)
    written.update(more)
    expected = sorted(pos for pos in written if pos[1] >= resume[pos[0]])
    assert len(more) > 0 and len(expected) >= 6 + len(more)
    ev = Events(rgw, f"/r/event/{topic}", last_event_id=last_id)
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < len(expected) and time.monotonic() < deadline:
        _, kind, data = ev.next()
        assert kind == "record", data
        seen.append((data["partition"], data["offset"]))
        _, key, _, headers = written[seen[-1]]
        assert data["key"] == key.decode()
    ev.close()
    assert len(seen) == len(set(seen)), "an event came twice"
    assert sorted(seen) == expected


def test_sse_sends_keep_alive_comments_while_idle(rgw, topics):
    ev = Events(rgw, f"/r/event/{rgw.json_topic}")
    deadline = time.monotonic() + 20
    # The topic is idle past the stream's start (latest): only comments come (keep_alive_ms 500).
    while ev.comments < 2 and time.monotonic() < deadline:
        line = ev.resp.readline()
        assert line, "the stream ended"
        assert not line.startswith(b"data:"), line
        if line.startswith(b":"):
            ev.comments += 1
    ev.close()
    assert ev.comments >= 2


def test_key_and_header_filters_keep_only_matching_records_and_positions_move_on(rgw, topics):
    r = get(rgw, f"/r/event/{rgw.topic}?limit=1")
    assert r.status == 200, r
    start = r.json()["next"]  # both partitions' ends
    p0 = start.split(",")[0]
    recs = [(1, b"fa", proto_event("a1", 1, "x"), [("color", b"red")]),
            (1, b"fb", proto_event("b1", 2, "x"), [("color", b"blue")]),
            (1, b"fa", proto_event("a2", 3, "x"), [("color", b"blue")]),
            (1, b"fb", proto_event("b2", 4, "x"), [])]
    placed = produce(rgw.bootstrap, rgw.topic, recs)
    base_q = f"/r/event/{rgw.topic}?position={urllib.parse.quote(start)}&limit=10"
    r = get(rgw, base_q + "&key=fa")
    assert r.status == 200, r
    assert [e["value"]["sample_message"] for e in r.json()["records"]] == ["a1", "a2"]
    # Past every record read, kept or not.
    assert r.json()["next"] == f"{p0},1:{placed[-1][1] + 1}"
    r = get(rgw, base_q + "&header=" + urllib.parse.quote("color:blue"))
    assert [e["value"]["sample_message"] for e in r.json()["records"]] == ["b1", "a2"]
    r = get(rgw, base_q + "&key=fa&header=" + urllib.parse.quote("color:blue"))
    assert [e["value"]["sample_message"] for e in r.json()["records"]] == ["a2"]
    r = get(rgw, base_q + "&header=nocolon")
    assert r.status == 400 and "header" in r.json()["message"], r
    # The stream: matching events only, each id past the records skipped before it.
    ev = Events(rgw, f"/r/event/{rgw.topic}?key=fb", last_event_id=start)
    got = [ev.next() for _ in range(2)]
    ev.close()
    assert [d["value"]["sample_message"] for _, _, d in got] == ["b1", "b2"]
    assert got[0][0] == f"{p0},1:{placed[1][1] + 1}" and got[1][0] == f"{p0},1:{placed[3][1] + 1}"


def test_a_client_that_takes_no_events_is_cut_not_buffered_for(rgw, topics):
    r = get(rgw, f"/r/event/{rgw.json_topic}?limit=1")
    assert r.status == 200, r
    start = r.json()["next"]
    s = socket.create_connection(("127.0.0.1", rgw.port), timeout=30)
    s.sendall(f"GET /r/event/{rgw.json_topic} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
              f"Last-Event-ID: {start}\r\n\r\n".encode())
    # Far more than the loopback socket buffers hold (a few MB each way): the gateway's writes stall.
    pad = "x" * 10000
    for batch in range(6):
        produce(rgw.bootstrap, rgw.json_topic,
                [(i % PARTITIONS, None, json.dumps({"n": batch * 500 + i, "pad": pad}).encode(), []) for i in range(500)])
    deadline = time.monotonic() + 90
    cut = f'read stream of "{rgw.json_topic}" cut: '
    while cut not in rgw.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    # Cut for taking nothing (read.max_stall_ms) or, sharing the follower, for falling behind
    # (read.max_client_buffer_bytes), whichever comes first.
    assert cut in rgw.log()
    snap = rgw.metrics()
    assert sum(metric(snap, "topicgate_read_stream_cuts_total", reason=r) for r in ("stall", "slow")) >= 1
    # The connection was closed: what was in flight drains, then the end (no more events come).
    got = 0
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    s.close()
    assert 0 < got < 30_000_000, got


@pytest.fixture(scope="module")
def rgw2(rgw):
    """A second gateway replica with the same configuration and topics (its own process and port)."""

    class Replica(ReadGateway):
        def __init__(self, tmp):
            super().__init__(tmp)
            self.topic, self.avro_topic, self.json_topic = rgw.topic, rgw.avro_topic, rgw.json_topic
            self.write_only_topic = rgw.write_only_topic

    yield from running(Replica, "topicgate-read-2-")


def test_another_replica_resumes_a_stream_exactly(rgw, rgw2, topics):
    r = get(rgw, f"/r/event/{rgw.json_topic}?limit=1")
    assert r.status == 200, r
    start = r.json()["next"]
    recs = [(i % PARTITIONS, f"r{i}".encode(), json.dumps({"i": i}).encode(), []) for i in range(12)]
    placed = produce(rgw.bootstrap, rgw.json_topic, recs)
    ev = Events(rgw, f"/r/event/{rgw.json_topic}", last_event_id=start)
    first = [ev.next() for _ in range(5)]
    ev.close()
    last_id = first[-1][0]
    resume = dict(tuple(map(int, item.split(":"))) for item in last_id.split(","))
    expected = sorted(p for p in placed if p[1] >= resume[p[0]])
    # The replica knows nothing of the first stream: the id alone carries the position.
    ev = Events(rgw2, f"/r/event/{rgw.json_topic}", last_event_id=last_id)
    rest = [ev.next() for _ in expected]
    ev.close()
    seen = [(d["partition"], d["offset"]) for _, _, d in rest]
    assert len(set(seen)) == len(seen) and sorted(seen) == expected
    assert sorted({(d["partition"], d["offset"]) for _, _, d in first} | set(seen)) == sorted(placed)
