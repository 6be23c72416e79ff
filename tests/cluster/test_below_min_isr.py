"""Two brokers of three down, below min.insync.replicas=2, under load: one broker is stopped
(SIGTERM) and a second killed (SIGKILL), so that no partition can have two in-sync replicas and the
controller quorum is lost too. No record may be acknowledged while only one broker runs (with
acks=all nothing is durable there); every answer in that time is a 503 (with Retry-After) or 504
within the documented bound; when one broker returns, records are acknowledged again; afterwards
Kafka's own consumer finds every record answered 200, once."""

import os
import time
import uuid

from faultkit import (FAULT_STATUSES, Load, account, delivery_errors, failure_reasons, read_topic, status_counts,
                      wait_for)
from test_leader_kill import TAIL_S
from test_rolling_restart import CLIENTS, HANG_S, core_under_test


def test_two_brokers_down_acknowledge_nothing_and_recover(cluster, gateways, figures):
    topic = f"ClusterMinIsr{uuid.uuid4().hex[:8]}"
    core = core_under_test()
    delivery_s = core.get("delivery_timeout_ms", 5000) / 1000
    gw = gateways([topic], core)
    load = Load(gw, f"/f/{topic}", "isr", threads=CLIENTS, timeout=HANG_S).start()
    stopped, killed = 3, 2
    t_down = t_back = None
    try:
        load.wait_acknowledged(500, "before the outage")
        cluster.stop_broker(stopped)
        cluster.kill_broker(killed)
        t_down = time.monotonic()
        # Serve through the outage for a while: several delivery timeouts' worth of answers.
        wait_for(lambda: load.count(lambda o: o.t0 >= t_down + delivery_s + TAIL_S) >= CLIENTS, 120,
                 "answers to records sent well after the second broker went down")
        t_restart = time.monotonic()
        cluster.start_broker(killed)
        t_back = time.monotonic()
        recovered = wait_for(lambda: load.count(lambda o: o.status == 200 and o.t0 >= t_back) >= 100, 120,
                             "100 records acknowledged once a second broker is back")
        cluster.start_broker(stopped)
        cluster.wait_healthy()
        t_end = time.monotonic()
        wait_for(lambda: load.count(lambda o: o.t0 >= t_end) >= 300, 60, "300 more records once healthy")
    finally:
        for n in (killed, stopped):
            if not cluster.running(n):
                cluster.start_broker(n)
        outcomes = load.stop(HANG_S + 10)

    acc = account(outcomes, read_topic(gw, topic))
    # Acknowledged while only one broker ran: answered between the second broker's death (plus a
    # second for an acknowledgement already on its way) and the first broker's return.
    acked_alone = [o for o in outcomes if o.status == 200 and t_down + 1 < o.t1 < t_restart]
    during = [o for o in outcomes if t_down <= o.t0 < t_restart]
    failures = [o for o in outcomes if o.status != 200]
    figures.update({
        "gateway": os.path.basename(gw.bin),
        "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "producer errors by kind and status (metrics)": delivery_errors(gw),
        "sent during the outage, by status": status_counts(during),
        "non-200 by status and message": failure_reasons(outcomes),
        "acknowledged with one broker up": len(acked_alone),
        "broker back to 100 acknowledged, s": round(recovered, 1),
        "max request time s": round(max(o.t1 - o.t0 for o in outcomes), 2),
        "answered failed but written (503/504/no answer found on topic)":
            [len(acc["found_after_503"]), len(acc["found_after_504"]), len(acc["found_without_answer"])],
    })

    bad = [o for o in outcomes if o.status not in FAULT_STATUSES]
    assert not bad, f"{len(bad)} answers outside 200/503/504, e.g. {bad[:5]}"
    assert acked_alone == [], f"{len(acked_alone)} records acknowledged while one broker ran: {acked_alone[:5]}"
    assert during and all(o.status in (503, 504) for o in during if o.t0 > t_down + 1 and o.t1 < t_restart), \
        "a record sent during the outage got another answer"
    assert [o for o in failures if o.status == 503 and o.retry_after is None] == [], "503 without Retry-After"
    late = [o for o in outcomes if o.t1 - o.t0 > delivery_s + TAIL_S]
    assert not late, f"{len(late)} answers later than delivery_timeout_ms + {TAIL_S} s, e.g. {late[:3]}"
    assert acc["lost"] == [], f"{len(acc['lost'])} records answered 200 are not on the topic: {acc['lost'][:10]}"
    assert acc["duplicates"] == [], f"{len(acc['duplicates'])} records on the topic more than once: {acc['duplicates'][:10]}"
    assert acc["misplaced"] == [] and acc["unknown"] == [], (acc["misplaced"][:5], acc["unknown"][:5])
