"""Idempotency-Key across a hung broker (issue #21, docs/design.md "Idempotency-Key"): a record
sent while the broker is frozen (SIGSTOP) has no known outcome when the gateway answers 504, and the
broker writes it once thawed. A retry with the same key must then answer that record's partition
and offset (Idempotent-Replayed) and write nothing: the key stays in flight until the record's
delivery report (client gone before it), or, after a 504 delivery report, the retry searches the
topic for the record carrying the key first (outcome found_written). Kafka's own consumer counts
the records on the topic."""

import http.client
import socket
import time
import uuid

from faultkit import Response, file_core, metric, read_topic, value_of, wait_for

REPLAYED = "Idempotent-Replayed"
MESSAGE_KEY = "idem"


def headers(key):
    h = {"Content-Type": "application/json", "message-key": MESSAGE_KEY}
    if key:
        h["Idempotency-Key"] = key
    return h


def post(gw, topic, msg, key=None, timeout=60):
    return gw.request("POST", f"/f/{topic}", body=f'{{"sample_message":"{msg}"}}'.encode(), headers=headers(key),
                      timeout=timeout)


def idem(gw, outcome):
    return metric(gw.metrics(), "topicgate_idempotency_total", outcome=outcome)


def start(gateways, topic, delivery_timeout_ms):
    gw = gateways([topic], file_core(delivery_timeout_ms))
    # The producer is connected and knows the topic's partitions: the next record is sent at once.
    wait_for(lambda: post(gw, topic, "warm").status == 200, 60, "a first record", step=0.5)
    return gw


def records_of(gw, topic, msg):
    return [(p, o) for p, o, _, v in read_topic(gw, topic, timeout_s=60) if v == value_of(msg)]


def check_replayed(gw, topic, r, where):
    assert r.status == 200, r
    assert r.headers.get(REPLAYED) == "true", r.headers
    assert (r.json()["partition"], r.json()["offset"]) == where, (r.json(), where)


def test_a_retry_after_a_504_delivery_report_answers_the_record_the_broker_wrote(servers, gateways, figures):
    topic = f"FaultIdem{uuid.uuid4().hex[:8]}"
    gw = start(gateways, topic, 3000)
    key = str(uuid.uuid4())
    servers.freeze_broker()
    try:
        first = post(gw, topic, "frozen", key)  # sent to the frozen broker: 504 at the delivery timeout
    finally:
        servers.thaw_broker()
    figures.update({"first status": first.status, "first message": (first.json().get("message") or "")[:160]})
    assert first.status == 504, first
    # The thawed broker appends the request it had received.
    wait_for(lambda: records_of(gw, topic, "frozen"), 90, "the frozen record on the topic", step=1)
    [where] = records_of(gw, topic, "frozen")
    found_before = idem(gw, "found_written")
    again = post(gw, topic, "frozen", key)
    check_replayed(gw, topic, again, where)
    figures["found_written"] = idem(gw, "found_written") - found_before
    assert figures["found_written"] == 1
    assert records_of(gw, topic, "frozen") == [where]
    # The answer is kept: one more retry is replayed from memory, still one record.
    check_replayed(gw, topic, post(gw, topic, "frozen", key), where)
    # A different request under the key is refused, nothing written.
    assert post(gw, topic, "other", key).status == 422
    assert records_of(gw, topic, "frozen") == [where] and records_of(gw, topic, "other") == []


def test_a_retry_after_the_client_gave_up_answers_the_record_written_late(servers, gateways, figures):
    topic = f"FaultIdemLate{uuid.uuid4().hex[:8]}"
    gw = start(gateways, topic, 30000)
    key = str(uuid.uuid4())
    body = b'{"sample_message":"late"}'
    servers.freeze_broker()
    t_frozen = time.monotonic()
    try:
        # The client gives up (its own 2 s timeout) while the record waits for the frozen broker:
        # the request ends without its outcome.
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=2)
        conn.request("POST", f"/f/{topic}", body=body, headers=headers(key))
        try:
            r = conn.getresponse()
            # The broker's state says which side is wrong: a gateway answering on its own, or a broker
            # that was not stopped (CI saw this 200 once; not reproduced here).
            raise AssertionError(f"answered while the broker is frozen: {Response(r.status, r.headers, r.read())}; "
                                 f"broker pid {servers._broker_pid()} state {servers.broker_state()}, "
                                 f"{time.monotonic() - t_frozen:.2f} s after the freeze")
        except (socket.timeout, TimeoutError):
            pass
        finally:
            conn.close()
    finally:
        servers.thaw_broker()
    again = post(gw, topic, "late", key)
    wait_for(lambda: records_of(gw, topic, "late"), 90, "the late record on the topic", step=1)
    written = records_of(gw, topic, "late")
    assert len(written) == 1, f"written {len(written)} times: {written}; answer {again}"
    [where] = written
    check_replayed(gw, topic, again, where)
    assert records_of(gw, topic, "late") == [where]
    figures["replayed"] = idem(gw, "replayed")
