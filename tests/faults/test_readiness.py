"""Readiness (`GET /__topicgate/ready`) says whether the gateway can answer publish requests, and
reports the broker. While the broker is down a default gateway stays ready (200: clients keep
getting topicgate's 503 with Retry-After instead of connection errors once every gateway would
leave the load balancer), its answer and topicgate_broker_up say the broker is down and name the
producer; a gateway with `ready_requires_broker` answers 503 instead. After the broker returns
both report it up. A record that could not be delivered meanwhile is answered 503 and counted by
its error kind."""

import uuid

from faultkit import file_core, metric, wait_for

READY = "/__topicgate/ready"


def ready(gw):
    r = gw.request("GET", READY)
    return r.status, r.json()


def broker_up(gw):
    """The readiness answer's broker.up."""
    return ready(gw)[1]["broker"]["up"]


def connections_up(gw):
    return metric(gw.metrics(), "topicgate_producer_broker_connections_up")


def test_readiness_reports_the_broker(servers, gateways, figures):
    topic = f"FaultReady{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], file_core(3000))
    strict = gateways([topic], file_core(3000), server={"ready_requires_broker": True})
    # librdkafka reports its connections once a second: up within a few.
    figures["broker up after start s"] = round(wait_for(lambda: broker_up(gw) and broker_up(strict), 60, "broker up at start", step=0.2), 2)
    for g in (gw, strict):
        assert ready(g) == (200, {"ready": True, "broker": {"up": True}}), ready(g)
        assert connections_up(g) >= 1 and metric(g.metrics(), "topicgate_broker_up") == 1
    servers.stop_broker()
    try:
        figures["broker down after stop-broker s"] = round(
            wait_for(lambda: not broker_up(gw) and ready(strict)[0] == 503, 60, "broker down while it is stopped", step=0.2), 2)
        # Default: still ready, the broker reported down, the producer named.
        status, body = ready(gw)
        assert status == 200 and body["ready"] is True and "missing" not in body, body
        assert any("no broker connection up" in m and gw.bootstrap in m for m in body["broker"]["missing"]), body
        assert gw.request("HEAD", READY).status == 200
        # ready_requires_broker: not ready, naming the producer.
        status, body = ready(strict)
        assert status == 503 and body["ready"] is False and body["broker"]["up"] is False, body
        assert any("no broker connection up" in m and strict.bootstrap in m for m in body["missing"]), body
        assert strict.request("HEAD", READY).status == 503
        for g in (gw, strict):
            wait_for(lambda: connections_up(g) == 0, 30, "the connection gauge at 0", step=0.2)
            assert metric(g.metrics(), "topicgate_broker_up") == 0
        # The ready gateway still answers: a record sent now is never delivered, 503 with
        # Retry-After after the 3 s delivery timeout, counted by kind.
        r = gw.post(f"/f/{topic}", body=b'{"sample_message":"lost"}', headers={"Content-Type": "application/json"})
        assert r.status == 503 and r.headers["Retry-After"] == str(gw.retry_after), r
        errors = lambda **labels: metric(gw.metrics(), "topicgate_delivery_errors_total", **labels)  # noqa: E731
        assert errors() == 1 and errors(kind="MessageTimedOut", status="503") == 1, gw.metrics()
    finally:
        servers.start_broker()
    figures["broker up after start-broker s"] = round(
        wait_for(lambda: broker_up(gw) and ready(strict)[0] == 200, 60, "broker up again after it is back", step=0.2), 2)
    for g in (gw, strict):
        assert ready(g) == (200, {"ready": True, "broker": {"up": True}}), ready(g)
        assert connections_up(g) >= 1 and metric(g.metrics(), "topicgate_broker_up") == 1
