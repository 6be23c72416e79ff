"""SIGKILL of a partition's leader under load: the broker crashes (no controlled shutdown), the
controller moves leadership after its session times out, the producer finds the new leader. Several
clients post keyed records through the gateway with the core's default settings; afterwards Kafka's
own consumer reads every partition back.

Overrides for experiments as in test_rolling_restart.py (TG_CLUSTER_PROPERTIES, TG_CLUSTER_DELIVERY_TIMEOUT_MS)."""

import os
import time
import uuid

from faultkit import (FAULT_STATUSES, Load, account, delivery_errors, failure_reasons, read_topic, status_counts,
                      wait_for)
from test_rolling_restart import CLIENTS, HANG_S, core_under_test

PARTITION = 0
# The documented answer bound: delivery_timeout_ms, then up to 5 s more for the delivery report
# (docs/design.md, delivery_timeout_ms); plus 2 s for HTTP and scheduling on a loaded test machine.
TAIL_S = 5 + 2


def test_leader_sigkill_under_load(cluster, gateways, figures):
    topic = f"ClusterKill{uuid.uuid4().hex[:8]}"
    core = core_under_test()
    delivery_s = core.get("delivery_timeout_ms", 5000) / 1000
    gw = gateways([topic], core)
    load = Load(gw, f"/f/{topic}", "kill", threads=CLIENTS, timeout=HANG_S).start()
    victim = new_leader = None
    try:
        load.wait_acknowledged(500, "before the kill")
        victim = cluster.leader(topic, PARTITION)
        assert victim in (1, 2, 3), f"{topic}/{PARTITION} has no leader before the kill"
        cluster.kill_broker(victim)
        t_kill = time.monotonic()  # the process is gone: nothing sent from now on reaches it
        # The controller moves leadership once the dead broker's session expires.
        leaders = []
        elected = wait_for(lambda: leaders.append(cluster.leader(topic, PARTITION)) or leaders[-1] not in (victim, -1),
                           90, f"a new leader of {topic}/{PARTITION} after broker {victim} was killed", step=0.5)
        new_leader = leaders[-1]
        t_elected = time.monotonic()
        # The partition is served again by it: a record sent after the election is acknowledged there.
        moved = wait_for(lambda: load.count(lambda o: o.status == 200 and o.partition == PARTITION and o.t0 >= t_elected) > 0,
                         60, f"first 200 on partition {PARTITION} after the new leader was elected")
        wait_for(lambda: load.count(lambda o: o.status == 200 and o.t0 >= t_elected) >= 300, 90,
                 "300 records acknowledged with the broker dead")
        cluster.start_broker(victim)
        cluster.wait_healthy()
        t_end = time.monotonic()
        wait_for(lambda: load.count(lambda o: o.t0 >= t_end) >= 300, 60, "300 more records after the broker is back")
    finally:
        if victim is not None and not cluster.running(victim):
            cluster.start_broker(victim)
        outcomes = load.stop(HANG_S + 10)

    acc = account(outcomes, read_topic(gw, topic))
    failures = [o for o in outcomes if o.status != 200]
    by_reason = failure_reasons(outcomes)
    slowest = max(o.t1 - o.t0 for o in outcomes)
    figures.update({
        "gateway": os.path.basename(gw.bin),
        "killed broker (leader of partition 0)": victim, "new leader": new_leader,
        "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "producer errors by kind and status (metrics)": delivery_errors(gw),
        "non-200 by status and message": by_reason,
        "kill to new leader seen in metadata, s (each poll starts a JVM: a few s late)": round(elected, 1),
        "new leader to first 200 on the partition, s": round(moved, 2),
        "non-200 answered after the kill": sum(1 for o in failures if o.t1 >= t_kill),
        "max request time s": round(slowest, 2),
        "answered failed but written (503/504/no answer found on topic)":
            [len(acc["found_after_503"]), len(acc["found_after_504"]), len(acc["found_without_answer"])],
        "core (properties, delivery_timeout_ms)": [core["kafka"]["properties"] or "defaults",
                                                   core.get("delivery_timeout_ms", "default 5000")],
    })

    bad = [o for o in outcomes if o.status not in FAULT_STATUSES]
    assert not bad, f"{len(bad)} answers outside 200/503/504, e.g. {bad[:5]}"
    assert [o for o in failures if o.status == 503 and o.retry_after is None] == [], "503 without Retry-After"
    late = [o for o in outcomes if o.t1 - o.t0 > delivery_s + TAIL_S]
    assert not late, f"{len(late)} answers later than delivery_timeout_ms + {TAIL_S} s, e.g. {late[:3]}"
    assert acc["lost"] == [], f"{len(acc['lost'])} records answered 200 are not on the topic: {acc['lost'][:10]}"
    assert acc["duplicates"] == [], f"{len(acc['duplicates'])} records on the topic more than once: {acc['duplicates'][:10]}"
    assert acc["misplaced"] == [], f"200 answers naming the wrong partition/offset: {acc['misplaced'][:10]}"
    assert acc["unknown"] == [], f"records on the topic nobody sent: {acc['unknown'][:5]}"
