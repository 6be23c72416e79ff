"""Rolling restart of a three-broker cluster under sustained load, as MSK patching does it: each
broker in turn gets SIGTERM (controlled shutdown), is started again, and the next one waits until
the cluster is healthy (all up, nothing under-replicated). Several clients post keyed records
through the gateway with the core's default settings the whole time; afterwards Kafka's own
consumer reads every partition back.

TG_CLUSTER_PROPERTIES (JSON object of librdkafka properties) and TG_CLUSTER_DELIVERY_TIMEOUT_MS
override the defaults, to find settings that avoid failures during the roll."""

import json
import os
import time
import uuid

from faultkit import (FAULT_STATUSES, Cluster, Load, account, default_core, delivery_errors, failure_reasons,
                      read_topic, status_counts, wait_for)

# The core answers within delivery_timeout_ms (default 5 s) + 5 s; much longer means a hang.
HANG_S = 40
CLIENTS = 6


def core_under_test():
    extra = {}
    if os.environ.get("TG_CLUSTER_DELIVERY_TIMEOUT_MS"):
        extra["delivery_timeout_ms"] = int(os.environ["TG_CLUSTER_DELIVERY_TIMEOUT_MS"])
    return default_core(json.loads(os.environ.get("TG_CLUSTER_PROPERTIES", "{}")), **extra)


def test_rolling_restart_under_load(cluster, gateways, figures):
    topic = f"ClusterRoll{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], core_under_test())
    load = Load(gw, f"/f/{topic}", "roll", threads=CLIENTS, timeout=HANG_S).start()
    windows = []  # (node, stop began, start done, healthy again)
    led_before_stop = {}
    try:
        load.wait_acknowledged(500, "before the roll")
        # The topic is auto-created by the first record: RF 3 on every partition.
        parts = cluster.partitions(topic)
        assert parts and all(len(p["replicas"]) == 3 for p in parts), f"topic is not RF 3: {parts}"
        for n in Cluster.NODES:
            led_before_stop[n] = sum(p["leader"] == n for p in cluster.partitions(topic))
            t_stop = time.monotonic()
            cluster.stop_broker(n)
            t_down = time.monotonic()
            # Serve with this broker down for a while (not only through the stop and start).
            wait_for(lambda: load.count(lambda o: o.status == 200 and o.t0 >= t_down) >= 300, 90,
                     f"300 records acknowledged while broker {n} is down")
            cluster.start_broker(n)
            t_back = time.monotonic()
            cluster.wait_healthy()
            windows.append((n, t_stop, t_down, t_back, time.monotonic()))
        t_end = time.monotonic()
        wait_for(lambda: load.count(lambda o: o.t0 >= t_end) >= 300, 60, "300 more records after the roll")
    finally:
        outcomes = load.stop(HANG_S + 10)

    acc = account(outcomes, read_topic(gw, topic))
    failures = [o for o in outcomes if o.status != 200]
    by_reason = failure_reasons(outcomes)
    figures.update({
        "gateway": os.path.basename(gw.bin),
        "clients": CLIENTS, "partitions": len(parts),
        "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "producer errors by kind and status (metrics)": delivery_errors(gw),
        "non-200 by status and message": by_reason,
        "non-200 per broker stop": {n: sum(1 for o in failures if t0 <= o.t1 <= t3) for n, t0, _, _, t3 in windows},
        "leaders on the broker before its stop": led_before_stop,
        "stop s / down s / healthy after start s per broker": {
            n: [round(t1 - t0, 1), round(t2 - t1, 1), round(t3 - t2, 1)] for n, t0, t1, t2, t3 in windows},
        "roll s": round(windows[-1][4] - windows[0][1], 1),
        "max request time s": round(max(o.t1 - o.t0 for o in outcomes), 2),
        "answered failed but written (503/504/no answer found on topic)":
            [len(acc["found_after_503"]), len(acc["found_after_504"]), len(acc["found_without_answer"])],
        "core (properties, delivery_timeout_ms)": [core_under_test()["kafka"]["properties"] or "defaults",
                                                   core_under_test().get("delivery_timeout_ms", "default 5000")],
    })

    # The roll moved leadership: each broker led partitions when it was stopped.
    assert all(led_before_stop[n] > 0 for n in Cluster.NODES), f"a broker led nothing when stopped: {led_before_stop}"
    # Failures, if any, are retriable 503 (with Retry-After) or 504: never 500 or a hang.
    bad = [o for o in outcomes if o.status not in FAULT_STATUSES]
    assert not bad, f"{len(bad)} answers outside 200/503/504, e.g. {bad[:5]}"
    assert [o for o in failures if o.status == 503 and o.retry_after is None] == [], "503 without Retry-After"
    # Every 200 is on the topic exactly once, where the answer said; nothing else is there.
    assert acc["lost"] == [], f"{len(acc['lost'])} records answered 200 are not on the topic: {acc['lost'][:10]}"
    assert acc["duplicates"] == [], f"{len(acc['duplicates'])} records on the topic more than once: {acc['duplicates'][:10]}"
    assert acc["misplaced"] == [], f"200 answers naming the wrong partition/offset: {acc['misplaced'][:10]}"
    assert acc["unknown"] == [], f"records on the topic nobody sent: {acc['unknown'][:5]}"
