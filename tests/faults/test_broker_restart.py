"""Broker restart under load: a steady stream of uniquely numbered records while the broker is
stopped for a few seconds and started again. Afterwards the whole topic is read back."""

import time
import uuid

from faultkit import FAULT_STATUSES, Load, account, file_core, read_topic, status_counts, wait_for

DELIVERY_TIMEOUT_S = 3
# The core answers within delivery_timeout_ms + 5 s (its own bound on the delivery report);
# a client waiting much longer than that means a hang. Generous: only a real hang trips it.
HANG_S = DELIVERY_TIMEOUT_S + 5 + 20
OUTAGE_S = 5
RECOVERY_BOUND_S = 60


def test_broker_restart_under_load(servers, gateways, figures):
    topic = f"FaultRestart{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], file_core(DELIVERY_TIMEOUT_S * 1000))
    load = Load(gw, f"/f/{topic}", "r", threads=6, timeout=HANG_S).start()
    try:
        wait_for(lambda: load.count(lambda o: o.status == 200) >= 300, 60, "300 records acknowledged before the outage")
        t_stop = time.monotonic()
        servers.stop_broker()
        t_down = time.monotonic()
        time.sleep(OUTAGE_S)
        servers.start_broker()
        t_back = time.monotonic()
        # The gateway serves 200 again: a request sent after the broker is back is acknowledged.
        recovery = wait_for(lambda: load.count(lambda o: o.status == 200 and o.t0 >= t_back) > 0,
                            RECOVERY_BOUND_S, "first 200 after the broker came back")
        wait_for(lambda: load.count(lambda o: o.t0 >= t_back + recovery) >= 300, 60, "300 more records after recovery")
    finally:
        if not servers.broker_running():
            servers.start_broker()
        outcomes = load.stop(HANG_S + 10)

    during = [o for o in outcomes if o.t1 >= t_stop and o.t0 <= t_back]
    failures = [o for o in outcomes if o.status != 200]
    acc = account(outcomes, read_topic(gw, topic))
    first_failure = min((o.t1 for o in failures), default=None)
    figures.update({
        "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "broker stop took s": round(t_down - t_stop, 1),
        "broker down s (stop-broker done to start-broker done)": round(t_back - t_down, 1),
        "first 200 after start-broker returned, s": round(recovery, 2),
        "first failure after stop began, s": None if first_failure is None else round(first_failure - t_stop, 2),
        "max request time s": round(max(o.t1 - o.t0 for o in outcomes), 2),
        "504 found on topic / 504 total": f"{len(acc['found_after_504'])}/{sum(o.status == 504 for o in outcomes)}",
        # librdkafka reports "not persisted" for a record the stopping leader appended and then
        # refused with NOT_LEADER; the contract allows it (503 = retriable), so it is counted, not failed.
        "503 found on topic / 503 total": f"{len(acc['found_after_503'])}/{sum(o.status == 503 for o in outcomes)}",
    })

    # Failures were retriable 503 or 504, never 500 or a hang (client timeout / no answer).
    bad = [o for o in outcomes if o.status not in FAULT_STATUSES]
    assert not bad, f"{len(bad)} answers outside 200/503/504, e.g. {bad[:5]}"
    assert [o for o in failures if o.status == 503 and o.retry_after is None] == [], "503 without Retry-After"
    assert any(o.status != 200 for o in during), "the outage caused no failure: the test did not test anything"
    # Every 200 is on the topic exactly once, where the answer said; nothing else is there.
    assert acc["lost"] == [], f"{len(acc['lost'])} records answered 200 are not on the topic: {acc['lost'][:10]}"
    assert acc["duplicates"] == [], f"{len(acc['duplicates'])} records are on the topic more than once: {acc['duplicates'][:10]}"
    assert acc["misplaced"] == [], f"200 answers naming the wrong partition/offset: {acc['misplaced'][:10]}"
    assert acc["unknown"] == [], f"records on the topic nobody sent: {acc['unknown'][:5]}"
