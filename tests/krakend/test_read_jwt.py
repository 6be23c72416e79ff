"""KrakenD's JWT validation in front of a read route (issue #22): the KrakenD endpoint /k/read/{topic}
validates the token, then its no-op proxy passes the event stream of an internal reader gateway
through. No token or a bad one is 401 and reads nothing; a good token streams the exact records as
Server-Sent Events, and a reconnect with Last-Event-ID through KrakenD resumes exactly after them.

KrakenD copies the backend's body without flushing per event and ends it at the endpoint's
timeout, so these tests read each answer to its end (bounded by that timeout) rather than
event by event; EventSource clients reconnect with the last id by themselves."""

import http.client
import json

from confluent_kafka import Producer

from conftest import WRONG_SECRET, e2e, token

def produce(bootstrap, topic, texts):
    """Kafka's own producer writes CLASSIC_PROTO Events (sample_message = text), key k-<text>;
    their (partition, offset) in order."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    out = [None] * len(texts)

    def done(i):
        def cb(err, msg):
            assert err is None, err
            out[i] = (msg.partition(), msg.offset())
        return cb

    for i, t in enumerate(texts):
        value = b"\x0a" + bytes([len(t)]) + t.encode()
        p.produce(topic, value=value, key=f"k-{t}".encode(), headers=[("n", str(i).encode())], on_delivery=done(i))
    assert p.flush(30) == 0
    return out


def sse(kd, path, headers):
    """One answer of the read endpoint, read to its end: (status, headers, [(id, event, data)])."""
    conn = http.client.HTTPConnection("127.0.0.1", kd.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read().decode()
        if r.status != 200:
            return r.status, r.headers, body
        events = []
        for block in body.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
            if fields:
                events.append((fields.get("id"), fields.get("event"), json.loads(fields["data"])))
        return r.status, r.headers, events
    finally:
        conn.close()


def read_records(kd):
    return e2e.metric(kd.reader.metrics(), "topicgate_read_records_total", topic=kd.read_topic)


def test_the_read_route_behind_jwt_refuses_without_a_token_and_streams_with_one(kd):
    topic = kd.read_topic
    texts = [f"r{i}" for i in range(6)]
    placed = produce(kd.bootstrap, topic, texts)
    path = f"/k/read/{topic}?start=earliest"
    sse_accept = {"Accept": "text/event-stream"}
    refusals = {
        "missing": sse(kd, path, sse_accept),
        "wrong signature": sse(kd, path, {**sse_accept, "Authorization": "Bearer " + token(secret=WRONG_SECRET)}),
        "expired": sse(kd, path, {**sse_accept, "Authorization": "Bearer " + token(exp_in=-120)}),
    }
    assert {k: r[0] for k, r in refusals.items()} == {k: 401 for k in refusals}, refusals
    assert all("record" not in r[2] for r in refusals.values()), refusals
    # None reached the reader.
    assert read_records(kd) == 0

    auth = {**sse_accept, "Authorization": "Bearer " + token()}
    status, headers, events = sse(kd, path, auth)
    assert status == 200, events
    assert headers.get("Content-Type") == "text/event-stream", dict(headers)
    assert [kind for _, kind, _ in events] == ["record"] * len(texts), events
    # Each partition's records in offset order (the auto-created topic may have several partitions).
    got = sorted((d["partition"], d["offset"], d["key"], d["value"], d["headers"]) for _, _, d in events)
    assert got == sorted((p, o, f"k-{t}", {"sample_message": t}, [{"name": "n", "value": str(i)}])
                         for i, ((p, o), t) in enumerate(zip(placed, texts)))
    ends = {p: o + 1 for p, o in sorted(placed)}
    last = dict(tuple(map(int, item.split(":"))) for item in events[-1][0].split(","))
    assert {p: last[p] for p in ends} == ends, events[-1][0]
    assert read_records(kd) == len(texts)

    # A reconnect with the last id (what EventSource does when the answer ends) resumes exactly.
    more = [f"s{i}" for i in range(4)]
    placed_more = produce(kd.bootstrap, topic, more)
    status, _, events = sse(kd, f"/k/read/{topic}", {**auth, "Last-Event-ID": events[-1][0]})
    assert status == 200, events
    assert sorted((d["partition"], d["offset"], d["value"]) for _, _, d in events) == \
        sorted((p, o, {"sample_message": t}) for (p, o), t in zip(placed_more, more))
    # And without a token the resume is refused like any read.
    status, _, body = sse(kd, f"/k/read/{topic}", {**sse_accept, "Last-Event-ID": events[-1][0]})
    assert status == 401, body
