"""Idempotency-Key shared by gateway replicas through Kafka (issue #21; docs/design.md
"Idempotency-Key", core option `idempotency`): two gateway processes on different ports, one
intent topic. A key answered by A is replayed by B (same partition and offset, nothing written);
the same key sent to both at once is written once and both answers are equal; a different body
on B is a 422; a restarted gateway reads its keys back from the intent topic. Kafka's own
consumer counts the records on the topic. A replica that appended its intent and went silent
(its intent written here with Kafka's own client, its `until` passed) is searched for: its record
found on the topic is the answer (`found_written`), none found and the key is taken over
(`taken_over`) and written once."""

import collections
import hashlib
import json
import threading
import time
import uuid

from confluent_kafka import Producer

from faultkit import file_core, metric, read_topic, value_of, wait_for

REPLAYED = "Idempotent-Replayed"


def post(gw, topic, msg, key, timeout=60):
    return gw.request("POST", f"/f/{topic}", body=f'{{"sample_message":"{msg}"}}'.encode(),
                      headers={"Content-Type": "application/json", "Idempotency-Key": key}, timeout=timeout)


def shared_core(log_topic):
    return {**file_core(5000), "idempotency": {"topic": log_topic, "window_ms": 600000}}


def start(gateways, topic, log_topic):
    gw = gateways([topic], shared_core(log_topic))
    # The producer is connected and the intent log is created and followed: a keyed request passes.
    wait_for(lambda: post(gw, topic, "warm", f"warm-{uuid.uuid4()}").status == 200, 60, "a first keyed record",
             step=0.5)
    return gw


def where(r):
    assert r.status == 200, r
    return r.json()["partition"], r.json()["offset"]


def on_topic(gw, topic):
    """{message: [(partition, offset)]} of the records on topic, as Kafka's own consumer reads them."""
    out = collections.defaultdict(list)
    for p, o, _, v in read_topic(gw, topic, timeout_s=60):
        out[v].append((p, o))
    return out


def test_two_replicas_share_keys_through_the_intent_topic(gateways):
    topic = f"SharedIdem{uuid.uuid4().hex[:8]}"
    log_topic = f"tg-idem-{uuid.uuid4().hex[:8]}"
    a = start(gateways, topic, log_topic)
    b = start(gateways, topic, log_topic)

    # A then B: B replays A's answer.
    key = str(uuid.uuid4())
    first = post(a, topic, "seq", key)
    again = post(b, topic, "seq", key)
    assert where(again) == where(first) and again.headers.get(REPLAYED) == "true", (first, again.headers)
    assert first.headers.get(REPLAYED) is None
    # A different body on B: 422, nothing written.
    other = post(b, topic, "other", key)
    assert other.status == 422 and b"Idempotency-Key" in other.body, other

    # The same key to A and B at once, for many keys: one record per key, equal answers.
    keys = [f"c-{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]
    answers = collections.defaultdict(list)

    def send(gw, k):
        answers[k].append(post(gw, topic, k, k))

    threads = [threading.Thread(target=send, args=(gw, k)) for k in keys for gw in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for k in keys:
        got = answers[k]
        assert len(got) == 2 and all(r.status == 200 for r in got), (k, got)
        assert where(got[0]) == where(got[1]), (k, got)
        assert sum(r.headers.get(REPLAYED) == "true" for r in got) == 1, (k, [r.headers for r in got])

    # A restarted gateway reads its keys back from the intent topic.
    a.stop()
    a2 = start(gateways, topic, log_topic)
    replay = post(a2, topic, "seq", key)
    assert where(replay) == where(first) and replay.headers.get(REPLAYED) == "true", replay

    seen = on_topic(b, topic)
    assert seen[value_of("seq")] == [where(first)], seen[value_of("seq")]
    assert value_of("other") not in seen
    for k in keys:
        assert seen[value_of(k)] == [where(answers[k][0])], (k, seen[value_of(k)])


def fingerprint(topic, msg):
    """The plugin's fingerprint of post(gw, topic, msg, key) (writePrefix: topic, media type,
    message-key, each as len:part; then the body)."""
    h = hashlib.sha256()
    for part in (topic, "application/json", ""):
        h.update(f"{len(part.encode())}:{part}".encode())
    h.update(f'{{"sample_message":"{msg}"}}'.encode())
    return h.hexdigest()


def produce(bootstrap, topic, key, value, headers=None):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    p.produce(topic, value=value, key=key, headers=headers or [])
    assert p.flush(30) == 0, "not acknowledged"


def silent_intent(gw, log_topic, topic, key, msg):
    """Appends the intent of a replica that went silent: attempted a minute ago, until a second ago."""
    now = int(time.time() * 1000)
    value = {"kind": "intent", "fp": fingerprint(topic, msg), "replica": "gone", "at": now - 60000, "until": now - 1000}
    produce(gw.bootstrap, log_topic, f"/f/\x00{topic}\x00{key}".encode(), json.dumps(value).encode())


def idem(gw, outcome):
    return metric(gw.metrics(), "topicgate_idempotency_total", outcome=outcome)


def test_a_silent_owner_is_searched_for_then_taken_over(gateways):
    topic = f"SharedIdem{uuid.uuid4().hex[:8]}"
    log_topic = f"tg-idem-{uuid.uuid4().hex[:8]}"
    b = start(gateways, topic, log_topic)

    # Its record was written (it carries the key's record header): that is the answer.
    found_key = str(uuid.uuid4())
    produce(b.bootstrap, topic, None, value_of("found"), [("Idempotency-Key", found_key.encode())])
    silent_intent(b, log_topic, topic, found_key, "found")
    before = idem(b, "found_written")
    r = post(b, topic, "found", found_key)
    assert r.status == 200 and r.headers.get(REPLAYED) == "true", (r, r.headers)
    assert idem(b, "found_written") - before == 1

    # Nothing written for it: the key is taken over and written once.
    gone_key = str(uuid.uuid4())
    silent_intent(b, log_topic, topic, gone_key, "gone")
    before = idem(b, "taken_over")
    r = post(b, topic, "gone", gone_key)
    assert r.status == 200 and r.headers.get(REPLAYED) is None, (r, r.headers)
    assert idem(b, "taken_over") - before == 1
    again = post(b, topic, "gone", gone_key)
    assert where(again) == where(r) and again.headers.get(REPLAYED) == "true", again

    seen = on_topic(b, topic)
    assert len(seen[value_of("found")]) == 1 and seen[value_of("gone")] == [where(r)], seen
    assert where(post(b, topic, "found", found_key)) == seen[value_of("found")][0]
