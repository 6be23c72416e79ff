"""The gateway-wide budget of buffered request bodies (`max_buffered_body_bytes`, docs/design.md
"Rules every style shares"), on a gateway of its own with a budget of BUDGET bytes:

- slow uploads that announced their length and sent part of it hold the budget (the
  topicgate_buffered_body_bytes gauge shows it);
- meanwhile a request on either mounting (single record, batch, Confluent v3) gets 503 with
  Retry-After naming the limit, and a body larger than the whole budget 413; none writes anything;
- once the uploads finish (200, on the topic) the budget is free again and a request gets 200.
"""

import http.client
import json
import socket
import time

import pytest

from conftest import CLASSIC_BODY, CLASSIC_HEADERS, CLASSIC_VALUE, Gateway, metric, running

BUDGET = 4096  # max_buffered_body_bytes of this gateway
HOLDERS = 2  # slow uploads of BUDGET // HOLDERS bytes each: together, the whole budget
IN_USE = "topicgate_buffered_body_bytes"


class BudgetGateway(Gateway):
    """The e2e gateway (krakend.json's server routes and client endpoints) with a small body budget."""

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        cfg["extra_config"]["plugin/http-server"]["topicgate"]["max_buffered_body_bytes"] = BUDGET
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def bgw():
    yield from running(BudgetGateway, "topicgate-e2e-budget-")


def record_body(text, size):
    """A JSON record of the classic schema, padded to exactly size bytes."""
    head = b'{"sample_message":"' + text.encode() + b"-"
    return head + b"x" * (size - len(head) - 2) + b'"}'


class SlowUpload:
    """A POST that announces its Content-Length, sends part of the body, and waits to send the rest."""

    def __init__(self, gw, path, body, first):
        self.body, self.first = body, first
        self.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in CLASSIC_HEADERS.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:first])

    def finish(self):
        self.sock.sendall(self.body[self.first:])
        resp = http.client.HTTPResponse(self.sock)
        resp.begin()
        out = resp.status, resp.read()
        self.sock.close()
        return out


def wait_for_in_use(gw, want, what):
    """Waits (bounded: 200 scrapes, about 20 s) until the budget in use is `want` bytes."""
    for _ in range(200):
        seen = metric(gw.metrics(), IN_USE)
        if seen == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: {IN_USE} is {seen}, want {want}")


def test_slow_uploads_hold_the_budget_then_503_then_200(bgw):
    gw = bgw
    assert len(CLASSIC_BODY) < BUDGET // HOLDERS  # the 503s below are the budget's, not the size's
    assert metric(gw.metrics(), "topicgate_buffered_body_bytes_limit") == BUDGET
    wait_for_in_use(gw, 0, "at start")
    size = BUDGET // HOLDERS
    holders = [SlowUpload(gw, f"/v1/event/{gw.topic}", record_body(f"holder-{i}", size), 100) for i in range(HOLDERS)]
    try:
        wait_for_in_use(gw, BUDGET, "while the uploads hold the budget")
        # Both mountings share the one budget: a small request does not fit now.
        for path in (f"/v1/event/{gw.topic}", f"/v2/event/{gw.topic}"):
            r = gw.post(path)
            assert r.status == 503, (path, r)
            assert "max_buffered_body_bytes" in r.json()["message"] and str(BUDGET) in r.json()["message"], (path, r)
            assert r.headers["Retry-After"], (path, r.headers)
        # A batch too.
        r = gw.post(f"/v1/batch/Batch{gw.run_id}ab", body=b'{"sample_message":"b"}\n',
                    headers={"Content-Type": "application/x-ndjson"})
        assert r.status == 503 and "max_buffered_body_bytes" in r.json()["message"], r
        # And a Confluent v3 request: its own error body, code 503.
        r = gw.request("POST", f"/kafka/v3/clusters/c1/topics/Batch{gw.run_id}cd/records",
                       body=b'{"value":{"data":{"sample_message":"v3"}}}', headers={"Content-Type": "application/json"})
        assert r.status == 503 and r.json()["error_code"] == 503, r
        assert "max_buffered_body_bytes" in r.json()["message"] and r.headers["Retry-After"], r
        # A body larger than the whole budget would never fit: 413, not 503.
        r = gw.post(f"/v1/event/{gw.topic}", body=record_body("too-large", BUDGET + 1))
        assert r.status == 413, r
        assert "max_buffered_body_bytes" in r.json()["message"] and str(BUDGET) in r.json()["message"], r
        assert "Retry-After" not in r.headers, r.headers
        answers = [h.finish() for h in holders]
    finally:
        for h in holders:
            h.sock.close()
    for status, body in answers:
        assert status == 200, body
    wait_for_in_use(gw, 0, "after the uploads")
    r = gw.post(f"/v1/event/{gw.topic}")
    assert r.status == 200, r
    ok = r.json()
    [rec] = gw.read_back(gw.topic, ok["partition"], ok["offset"], 1)
    assert rec.value == CLASSIC_VALUE
    # On the topic: the two uploads and the last request; nothing of the refused ones.
    assert gw.totals(gw.topic) == {gw.topic: HOLDERS + 1}
