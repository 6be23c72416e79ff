"""Graceful shutdown: SIGTERM while requests are in flight. Requests the gateway accepted are
answered (delivered, or an error status); none is answered 200 and then lost. A request that
gets no answer failed at the connection and was never processed: its record is not on the topic."""

import signal
import socket
import time
import uuid

from faultkit import Load, account, file_core, read_topic, status_counts, wait_for

DELIVERY_TIMEOUT_S = 3
HANG_S = DELIVERY_TIMEOUT_S + 5 + 20
# KrakenD and kdhost wait for in-flight requests (http.Server.Shutdown), then exit; this bounds it.
EXIT_BOUND_S = 60


def hung(o):
    """No answer because the client gave up waiting (a hang), not because the connection failed."""
    return o.status is None and "timed out" in (o.error or "").lower()


def test_sigterm_under_load_loses_no_acknowledged_record(servers, gateways, figures):
    topic = f"FaultShutdown{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], file_core(DELIVERY_TIMEOUT_S * 1000))
    # A new connection per request: once the listener is closed, new requests are refused.
    load = Load(gw, f"/f/{topic}", "s", threads=8, timeout=HANG_S, keep_alive=False).start()
    try:
        wait_for(lambda: load.count(lambda o: o.status == 200) >= 300, 60, "300 records acknowledged")
        accepted_before = load.count()
        code, t_term, t_exit = gw.terminate_under(load, EXIT_BOUND_S)
    finally:
        outcomes = load.stop(HANG_S + 10)
    assert code == 0, f"exit status {code}:\n{gw.log()}"

    answered = [o for o in outcomes if o.status is not None]
    unanswered = [o for o in outcomes if o.status is None]
    in_flight_at_term = [o for o in answered if o.t0 < t_term < o.t1]
    acc = account(outcomes, read_topic(gw, topic))
    figures.update({
        "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "in flight at SIGTERM and answered": len(in_flight_at_term),
        "SIGTERM to exit s": round(t_exit - t_term, 2),
        "requests before SIGTERM": accepted_before,
    })
    assert all(o.status in (200, 503, 504) for o in answered), status_counts(answered)
    # A request without an answer failed at the connection: refused after the listener closed, reset
    # from its backlog, or closed unread by the shutdown (all seen in CI runs); never a hang. That none
    # of them was processed is what matters: found_without_answer below is empty.
    assert not any(hung(o) for o in unanswered), [o.error for o in unanswered if hung(o)][:5]
    assert acc["lost"] == [], f"answered 200 and lost: {acc['lost'][:10]}"
    assert acc["duplicates"] == [] and acc["misplaced"] == [] and acc["unknown"] == [], acc
    assert acc["found_without_answer"] == [], acc["found_without_answer"][:10]


def test_sigterm_while_records_wait_for_a_dead_broker_answers_them(gateways, figures):
    """The broker is unreachable, so accepted requests are waiting for it when SIGTERM comes:
    each still gets its answer (503, broker unreachable) before the process exits."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    try:
        core = file_core(DELIVERY_TIMEOUT_S * 1000)
        core["kafka"]["bootstrap_servers"] = f"127.0.0.1:{s.getsockname()[1]}"
        topic = f"FaultShutdownDead{uuid.uuid4().hex[:8]}"
        gw = gateways([topic], core)
        c0 = gw.connections()
        load = Load(gw, f"/f/{topic}", "d", threads=8, timeout=HANG_S, total=8, keep_alive=False).start()
        # 8 more established connections on the gateway's port (the kernel's count, any host): the 8
        # requests were accepted. They then wait up to 3 s for the broker; a moment more lets them reach the core.
        wait_for(lambda: gw.connections() >= c0 + 8, 10, "the 8 requests accepted", step=0.05)
        time.sleep(0.3)
        t_term = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        outcomes = load.join(HANG_S + 10)
        code = gw.wait_exit(EXIT_BOUND_S)
    finally:
        s.close()
    figures.update({"statuses": status_counts(outcomes),
                    "answered after SIGTERM": sum(o.t1 > t_term for o in outcomes)})
    assert code == 0, gw.log()
    assert all(o.status == 503 for o in outcomes), [(o.status, o.error, o.message) for o in outcomes]
    assert all("Kafka broker unreachable" in o.message for o in outcomes), [o.message for o in outcomes]
    assert sum(o.t1 > t_term for o in outcomes) > 0, "no request was in flight at SIGTERM: nothing tested"
