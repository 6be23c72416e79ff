"""The gateway stopped (SIGTERM) during a rolling restart (issue #21): a broker is stopped under
load and, while it is down and leadership has moved, the gateway gets SIGTERM. Every request it
accepted is answered (200, 503 or 504; none hangs); it exits 0 within the bound; afterwards Kafka's
own consumer finds every record answered 200 once, and none that got no answer."""

import os
import time
import uuid

from faultkit import Load, account, read_topic, status_counts, wait_for
from test_rolling_restart import CLIENTS, HANG_S, core_under_test

EXIT_BOUND_S = 60


def test_sigterm_while_a_broker_is_down_answers_what_was_accepted(cluster, gateways, figures):
    topic = f"ClusterStop{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], core_under_test())
    # A new connection per request: once the listener closes, new requests are refused, not half-answered.
    load = Load(gw, f"/f/{topic}", "term", threads=CLIENTS, timeout=HANG_S, keep_alive=False).start()
    victim = 2
    try:
        load.wait_acknowledged(500, "")
        cluster.stop_broker(victim)
        t_down = time.monotonic()
        wait_for(lambda: load.count(lambda o: o.status == 200 and o.t0 >= t_down) >= 200, 90,
                 "200 records acknowledged with the broker down")
        code, t_term, t_exit = gw.terminate_under(load, EXIT_BOUND_S)
    finally:
        outcomes = load.stop(HANG_S + 10)
        if not cluster.running(victim):
            cluster.start_broker(victim)
    cluster.wait_healthy()
    assert code == 0, f"exit status {code}:\n{gw.log()}"

    answered = [o for o in outcomes if o.status is not None]
    unanswered = [o for o in outcomes if o.status is None]
    acc = account(outcomes, read_topic(gw, topic))
    figures.update({
        "gateway": os.path.basename(gw.bin),
        "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "in flight at SIGTERM and answered": len([o for o in answered if o.t0 < t_term < o.t1]),
        "SIGTERM to exit s": round(t_exit - t_term, 2),
    })
    assert all(o.status in (200, 503, 504) for o in answered), status_counts(answered)
    hung = [o for o in unanswered if "timed out" in (o.error or "").lower()]
    assert not hung, [o.error for o in hung][:5]
    assert acc["lost"] == [], f"answered 200 and lost: {acc['lost'][:10]}"
    assert acc["duplicates"] == [] and acc["misplaced"] == [] and acc["unknown"] == [], acc
    assert acc["found_without_answer"] == [], acc["found_without_answer"][:10]
