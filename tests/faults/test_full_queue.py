"""Slow or full producer: a tiny producer queue and the broker stopped. Requests beyond the queue
are refused at once with 503 + Retry-After ("producer queue is full"); memory stays bounded; and
after recovery no OS thread, file descriptor or connection is left over. Two identical cycles: the first may grow
pools (Go keeps idle OS threads), the second must not grow them further."""

import uuid

from faultkit import Load, account, file_core, read_topic, status_counts, wait_for

QUEUE = 5  # queue.buffering.max.messages
BURST = 40  # concurrent requests while the broker is down (> QUEUE)
FLOOD = 3000  # further requests while the queue is full
DELIVERY_TIMEOUT_S = 20  # long: queued records stay queued while the refusals are answered
HANG_S = DELIVERY_TIMEOUT_S + 5 + 20


def queue_full(o):
    return o.status == 503 and "producer queue is full" in (o.message or "")


def wait_serving(gw, topic):
    def ok():
        return gw.post(f"/f/{topic}", body=b'{"sample_message":"probe"}',
                       headers={"Content-Type": "application/json"}).status == 200
    return wait_for(ok, 60, "the gateway serves 200 again", step=0.2)


STEADY = 20  # consecutive 200s that show the producer is steady


def wait_steady(gw, topic):
    run = [0]

    def steady():
        status = gw.post(f"/f/{topic}", body=b'{"sample_message":"probe"}',
                         headers={"Content-Type": "application/json"}).status
        run[0] = run[0] + 1 if status == 200 else 0
        return run[0] >= STEADY
    return wait_for(steady, 90, f"{STEADY} consecutive 200s", step=0.05)


def cycle(servers, gw, topic, name):
    """Broker down, a burst then a flood of requests, broker up; returns what was seen."""
    path = f"/f/{topic}"
    servers.stop_broker()
    try:
        burst = Load(gw, path, f"{name}b", threads=BURST, timeout=HANG_S, total=BURST, keep_alive=False).start()
        # The refusals come back while the queued records still wait for the broker.
        wait_for(lambda: burst.count(queue_full) >= BURST - QUEUE, 60, f"{BURST - QUEUE} queue-full refusals")
        flood = Load(gw, path, f"{name}f", threads=4, timeout=HANG_S, total=FLOOD).start()
        flood_outcomes = flood.join(180)
        peak = gw.proc_status()
    finally:
        servers.start_broker()
    burst_outcomes = burst.join(HANG_S + 10)
    recovery = wait_serving(gw, topic)
    return burst_outcomes, flood_outcomes, peak, recovery


def test_full_producer_queue_refuses_quickly_and_leaks_nothing(servers, gateways, figures):
    topic = f"FaultQueue{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], file_core(DELIVERY_TIMEOUT_S * 1000, {"queue.buffering.max.messages": QUEUE}))
    # A broker restarted by an earlier test may still be loading its coordinator: until the
    # idempotent producer has (re-)acquired its PID, records wait in the tiny queue and the
    # warm-up would be refused with "queue is full". A first 200 is not enough (the PID can be
    # re-acquired after it); STEADY 200s in a row are.
    wait_steady(gw, topic)
    # Two clients: a record counts in the queue until its delivery report is handled, which can be
    # just after its client has its 200 and sent the next one; 2 × 2 stays within QUEUE, 4 × 2 not.
    warm = Load(gw, f"/f/{topic}", "w", threads=2, timeout=HANG_S, total=200).start().join(120)
    assert all(o.status == 200 for o in warm), status_counts(warm)
    before = gw.proc_status()
    fds_before = gw.open_fds()
    names_before = gw.thread_names()

    seen = {}
    all_outcomes = list(warm)
    for name in ("c1", "c2"):
        burst, flood, peak, recovery = cycle(servers, gw, topic, name)
        all_outcomes += burst + flood
        refused = [o for o in burst if queue_full(o)]
        queued = [o for o in burst if not queue_full(o)]
        # Beyond the queue: refused with 503 + Retry-After, saying why.
        assert len(queued) <= QUEUE and len(refused) >= BURST - QUEUE, status_counts(burst)
        assert all(o.retry_after == "3" for o in refused), refused[:3]
        # Refused without waiting for the delivery timeout: every refusal was answered before
        # any queued request (those wait for the broker's return or the 20 s timeout).
        if queued:
            assert max(o.t1 for o in refused) < min(o.t1 for o in queued), "a refusal waited behind the queue"
        assert all(o.status in (200, 503, 504) for o in queued), status_counts(queued)
        # The flood while the queue is full: all 503, nothing hangs (join above is bounded).
        assert all(o.status == 503 for o in flood), status_counts(flood)
        # Once the clients are gone: no connection left open, file descriptors back to the baseline
        # (a request stuck in the gateway would hold its connection's socket).
        wait_for(lambda: gw.connections() == 0, 15, "no connection left open", step=0.5)
        wait_for(lambda: gw.open_fds() <= fds_before + 2, 15, "file descriptors back to the baseline", step=0.5)
        after = gw.proc_status()
        seen[name] = {
            "refused queue-full (burst)": len(refused), "queued (burst)": len(queued),
            "queued outcomes": status_counts(queued),
            "flood statuses": status_counts(flood),
            "flood queue-full": sum(queue_full(o) for o in flood),
            "slowest refusal s": round(max(o.t1 - o.t0 for o in refused), 3),
            "first queued answer s": round(min((o.t1 - o.t0 for o in queued), default=0), 1),
            "RSS MiB during flood": round(peak["VmRSS"] / 1024, 1),
            "RSS MiB after": round(after["VmRSS"] / 1024, 1),
            "threads after": after["Threads"],
            "thread names after": gw.thread_names(),
            "open fds after": gw.open_fds(),
            "recovery to 200 after start-broker s": round(recovery, 2),
        }
    figures.update({"before": {"RSS MiB": round(before["VmRSS"] / 1024, 1), "threads": before["Threads"],
                               "open fds": fds_before, "thread names": names_before}, **seen})

    # No leak: the second cycle adds no OS threads and (almost) no memory over the first.
    assert seen["c2"]["threads after"] <= seen["c1"]["threads after"] + 2, seen
    assert seen["c2"]["RSS MiB after"] <= seen["c1"]["RSS MiB after"] * 1.10, seen
    # Memory bounded under refusals: far below what holding thousands of requests would take.
    assert seen["c1"]["RSS MiB during flood"] <= before["VmRSS"] / 1024 + 100, seen

    # Whatever was acknowledged is on the topic, once.
    acc = account([o for o in all_outcomes if o.status is not None], read_topic(gw, topic))
    assert acc["lost"] == [] and acc["duplicates"] == [] and acc["misplaced"] == [], acc
    assert acc["found_after_503"] == [], acc["found_after_503"][:10]
