"""Readiness (`GET /__topicgate/ready`) follows the broker: 200 while a connection is up, 503 naming
the producer without one while the broker is down, 200 again after it returns; the connection gauge
in the metrics says the same, and a record that could not be delivered meanwhile is counted by its
error kind."""

import uuid

from faultkit import file_core, metric, wait_for

READY = "/__topicgate/ready"


def ready(gw):
    r = gw.request("GET", READY)
    return r.status, r.json()


def connections_up(gw):
    return metric(gw.metrics(), "topicgate_producer_broker_connections_up")


def test_readiness_follows_the_broker(servers, gateways, figures):
    topic = f"FaultReady{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], file_core(3000))
    # librdkafka reports its connections once a second: ready within a few.
    figures["ready after start s"] = round(wait_for(lambda: ready(gw)[0] == 200, 60, "ready at start", step=0.2), 2)
    status, body = ready(gw)
    assert body == {"ready": True}, body
    assert connections_up(gw) >= 1
    servers.stop_broker()
    try:
        figures["not ready after stop-broker s"] = round(
            wait_for(lambda: ready(gw)[0] == 503, 60, "503 while the broker is down", step=0.2), 2)
        status, body = ready(gw)
        assert status == 503 and body["ready"] is False, body
        assert any("no broker connection up" in m and gw.bootstrap in m for m in body["missing"]), body
        wait_for(lambda: connections_up(gw) == 0, 30, "the connection gauge at 0", step=0.2)
        # A record sent now is never delivered: 503 after the 3 s delivery timeout, counted by kind.
        r = gw.post(f"/f/{topic}", body=b'{"sample_message":"lost"}', headers={"Content-Type": "application/json"})
        assert r.status == 503, r
        errors = lambda **labels: metric(gw.metrics(), "topicgate_delivery_errors_total", **labels)  # noqa: E731
        assert errors() == 1 and errors(kind="MessageTimedOut", status="503") == 1, gw.metrics()
    finally:
        servers.start_broker()
    figures["ready after start-broker s"] = round(
        wait_for(lambda: ready(gw)[0] == 200, 60, "ready again after the broker is back", step=0.2), 2)
    assert connections_up(gw) >= 1
