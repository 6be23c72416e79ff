"""Reading across a broker restart (issue #22): a client of the SSE read route is cut after N events;
the broker is stopped and started again while Kafka's own producer keeps writing; the client
reconnects with its Last-Event-ID and gets exactly the records after those N, none lost, none
twice. A stream that ends (`event: end`, or the connection closing) is resumed with the last id
received, as the contract tells clients to do (bounded number of reconnects)."""

import http.client
import json
import os
import threading
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from faultkit import file_core, value_of, wait_for

PARTITIONS = 2
FIRST = 20  # events taken before the cut
OUTAGE_S = 5
MAX_RECONNECTS = 10


class Writer:
    """Kafka's own producer writing numbered records to both partitions until stopped; keeps
    {(partition, offset): message} of every delivered record and every delivery error."""

    def __init__(self, bootstrap, topic):
        # Idempotent, and patient enough to ride out the outage: nothing written twice or dropped.
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                           "message.timeout.ms": 120000, "linger.ms": 5})
        self.topic = topic
        self.delivered = {}
        self.errors = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _cb(self, msg_text):
        def cb(err, msg):
            with self.lock:
                if err is not None:
                    self.errors.append((msg_text, str(err)))
                else:
                    self.delivered[(msg.partition(), msg.offset())] = msg_text
        return cb

    def _run(self):
        i = 0
        while not self.stop_flag.is_set():
            text = f"w{i}"
            try:
                self.p.produce(self.topic, value=value_of(text), key=text.encode(), partition=i % PARTITIONS,
                               on_delivery=self._cb(text))
                i += 1
            except BufferError:  # the local queue is full while the broker is down
                pass
            self.p.poll(0.005)  # paces the writer and serves delivery reports

    def start(self):
        self.thread.start()
        return self

    def count(self):
        with self.lock:
            return len(self.delivered)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(30)
        left = self.p.flush(120)
        assert left == 0, f"{left} records never delivered"
        return dict(self.delivered), list(self.errors)


class Events:
    """One SSE answer of the read route, read event by event: (id, event, data) or None at its end."""

    def __init__(self, gw, path, last_event_id):
        self.conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", "Last-Event-ID": last_event_id})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, (self.resp.status, self.resp.read())
        assert self.resp.getheader("Content-Type") == "text/event-stream"

    def next(self):
        fields = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if fields:
                    return fields.get("id"), fields.get("event"), json.loads(fields["data"])
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(": ")
            fields[k] = v

    def close(self):
        self.conn.close()


def positions(event_id):
    return dict(tuple(map(int, item.split(":"))) for item in event_id.split(","))


def test_sse_resumes_exactly_after_a_broker_restart_while_writers_produce(servers, gateways, figures):
    topic = f"FaultRead{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP"]})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=30).values():
        f.result(timeout=30)
    wait_for(lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == PARTITIONS,
             30, "the topic's partitions in the metadata")
    gw = gateways([topic], file_core(10000), read={"topics": [topic], "keep_alive_ms": 500})
    path = f"/f/{topic}"
    start_id = ",".join(f"{p}:0" for p in range(PARTITIONS))

    writer = Writer(os.environ["KAFKA_BOOTSTRAP"], topic).start()
    try:
        wait_for(lambda: writer.count() >= 2 * FIRST, 60, f"{2 * FIRST} records delivered before the cut")
        ev = Events(gw, path, start_id)
        first = []
        while len(first) < FIRST:
            e = ev.next()
            assert e is not None, "the stream ended before the cut"
            assert e[1] == "record", e
            first.append(e)
        ev.close()  # the client is cut after FIRST events
        last_id = first[-1][0]

        t_stop = time.monotonic()
        servers.stop_broker()
        time.sleep(OUTAGE_S)  # the outage itself; the writer queues meanwhile
        servers.start_broker()
        t_back = time.monotonic()
        n_back = writer.count()
        # Writers go on after the restart: wait for records delivered after it.
        wait_for(lambda: writer.count() >= n_back + 200, 120, "200 records delivered after the restart")
    finally:
        if not servers.broker_running():
            servers.start_broker()
        delivered, errors = writer.stop()

    assert errors == [], f"{len(errors)} delivery errors, e.g. {errors[:3]}"
    resume = positions(last_id)
    taken = {(d["partition"], d["offset"]) for _, _, d in first}
    assert all(o < resume[p] for p, o in taken), (taken, resume)
    expected = sorted(pos for pos in delivered if pos[1] >= resume[pos[0]])
    assert len(expected) >= 200, len(expected)

    # The client reconnects with its last id; a stream that ends is resumed from its own last id.
    seen, reconnects, ends = [], 0, []
    deadline = time.monotonic() + 120
    t_reconnect = time.monotonic()
    while len(seen) < len(expected):
        assert reconnects <= MAX_RECONNECTS, f"{reconnects} reconnects; ends: {ends}"
        assert time.monotonic() < deadline, f"{len(seen)} of {len(expected)} events within 120 s; ends: {ends}"
        ev = Events(gw, path, last_id)
        reconnects += 1
        while len(seen) < len(expected):
            e = ev.next()
            if e is None or e[1] == "end":
                ends.append(e)
                break
            event_id, kind, d = e
            assert kind == "record", e
            pos = (d["partition"], d["offset"])
            assert d["value"] == {"sample_message": delivered.get(pos)}, (pos, d)
            assert d["key"] == delivered[pos]
            seen.append(pos)
            last_id = event_id
        ev.close()
    assert len(seen) == len(set(seen)), "an event came twice"
    assert sorted(seen) == expected
    # The first FIRST events were exactly each partition's records before the id: with the rest,
    # every record delivered was read once.
    assert taken == {pos for pos in delivered if pos[1] < resume[pos[0]]}, (sorted(taken), resume)
    figures.update({
        "records delivered": len(delivered), "events before the cut": FIRST,
        "events after the resume": len(seen), "reconnects": reconnects, "stream ends": len(ends),
        "broker down s": round(t_back - t_stop, 1),
        "resume read s": round(time.monotonic() - t_reconnect, 1),
    })
