"""All-or-nothing batches across a broker stop: the broker is stopped while a batch's transaction
is under way. Whatever the answer, a read_committed consumer (Kafka's own) sees the batch whole or
not at all: whole after a 200, nothing after a 503, one or the other after a 504 (commit outcome
unknown); and the next batch, once the broker is back, is written whole."""

import json
import threading
import time
import uuid

from faultkit import file_core, value_of, wait_for

N = 3000  # records of the batch the broker stop falls into
KEY = "atomic"


def batch_body(prefix, n):
    return "".join(json.dumps({"sample_message": f"{prefix}{i}"}) + "\n" for i in range(n)).encode()


def post(gw, topic, body, timeout=60):
    return gw.request("POST", f"/f/{topic}", body=body, timeout=timeout,
                      headers={"Content-Type": "application/x-ndjson", "message-key": KEY})


def test_a_batch_cut_by_a_broker_stop_is_whole_or_absent(servers, gateways, figures):
    topic = f"FaultAtomic{uuid.uuid4().hex[:8]}"
    core = {**file_core(5000), "transactions": {"timeout_ms": 5000}}
    gw = gateways([topic], core, batch={"atomic": True, "max_records": N})
    # The transactional producer is up and the partition for KEY is known.
    wait_for(lambda: post(gw, topic, batch_body("warm", 1)).status == 200, 60, "a first atomic batch", step=0.5)
    first = post(gw, topic, batch_body("warm", 1)).json()["records"][0]
    partition, after_warm = first["partition"], first["offset"] + 1

    answer = {}
    t = threading.Thread(target=lambda: answer.setdefault("r", post(gw, topic, batch_body("cut", N), timeout=90)))
    t0 = time.monotonic()
    t.start()
    time.sleep(0.05)  # the batch is being checked, sent or committed
    servers.stop_broker()
    try:
        t.join(90)
        assert not t.is_alive(), "the cut batch got no answer within 90 s"
    finally:
        servers.start_broker()
    r = answer["r"]
    figures.update({"cut batch status": r.status, "answered after s": round(time.monotonic() - t0, 1),
                    "message": (r.json().get("message") or "")[:200]})
    assert r.status in (200, 503, 504), r

    # Once the broker is back an atomic batch is written whole (a fresh transactional producer
    # fences the cut one and aborts what it left open).
    marker = batch_body("after", 1)
    wait_for(lambda: post(gw, topic, marker).status == 200, 120, "an atomic batch after the broker is back", step=1)

    # read_committed from where the warm-up batches ended: the cut batch whole, or nothing of it.
    head = gw.read_back(topic, partition, after_warm, 1, timeout_ms=60000)[0]
    if head.value == value_of("cut0"):
        recs = gw.read_back(topic, partition, after_warm, N, timeout_ms=60000)
        assert [x.value for x in recs] == [value_of(f"cut{i}") for i in range(N)], "the cut batch is visible in part"
        seen = "whole"
    else:
        assert head.value == value_of("after0"), head
        seen = "absent"
    figures["cut batch on the topic"] = seen
    assert r.status != 200 or seen == "whole", (r, seen)
    assert r.status != 503 or seen == "absent", (r, seen)
