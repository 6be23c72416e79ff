"""The gateway-wide reader bound (issue #22, max_gateway_readers): event streams and pages of all
routes count against one limit, checked before the routes' and topics' own; past it `503` with
`Retry-After` naming the setting. Every slot comes back: when a stream's client goes away, and
when a reader is refused by a later bound after taking the gateway's slot.

Its own gateway (max_gateway_readers 3; routes /l/a/ and /l/b/, whose topic allows one reader) on
the test Kafka.
"""

import socket
import time

import pytest

from conftest import metric, running
from test_read import ReadGateway, get, readable_topics

GATEWAY_READERS = 3  # max_gateway_readers of this gateway
SSE = {"Accept": "text/event-stream"}


class LimitsGateway(ReadGateway):
    """The gateway with two read routes and a small gateway-wide reader bound."""

    def server_settings(self):
        return {"max_gateway_readers": GATEWAY_READERS}

    def routes(self):
        # Each route alone would admit more readers than the gateway does.
        return [
            {"path_prefix": "/l/a/", "read": {"topics": [self.topic, self.json_topic], "keep_alive_ms": 500}},
            {"path_prefix": "/l/b/", "read": {"topics": [self.avro_topic], "max_readers_per_topic": 1,
                                              "keep_alive_ms": 500}},
        ]


@pytest.fixture(scope="module")
def lgw():
    yield from running(LimitsGateway, "topicgate-limits-")


@pytest.fixture(scope="module")
def ltopics(lgw):
    return readable_topics(lgw, [f"/l/a/{lgw.topic}", f"/l/a/{lgw.json_topic}", f"/l/b/{lgw.avro_topic}"])


def open_stream(gw, path):
    """An event stream on its own socket, held open (its status read: 200)."""
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"{path}: the connection ended before a status line"
        head += chunk
    if b" 200 " not in head.split(b"\r\n")[0]:
        s.close()
        raise AssertionError(f"{path}: {head[:300]!r}")
    return s


def sse_readers(gw):
    return metric(gw.metrics(), "topicgate_read_readers", mode="sse")


def wait_for_readers(gw, n):
    """Waits (30 s at most) until the gateway counts n open event streams."""
    deadline = time.monotonic() + 30
    while sse_readers(gw) != n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sse_readers(gw) == n, f"{sse_readers(gw)} event streams open, want {n}"


def refused_by_gateway(r):
    assert r.status == 503, r
    assert r.headers.get("Retry-After"), r
    msg = r.json()["message"]
    assert msg == f"{GATEWAY_READERS} readers already read on this gateway (max_gateway_readers); retry later", msg


def test_readers_of_all_routes_share_the_gateways_bound_and_a_closed_stream_frees_its_slot(lgw, ltopics):
    wait_for_readers(lgw, 0)
    a, a2, b = f"/l/a/{lgw.topic}", f"/l/a/{lgw.json_topic}", f"/l/b/{lgw.avro_topic}"
    held = []
    try:
        # Three streams over two routes fill the gateway, though each route's bound is 64.
        held += [open_stream(lgw, a), open_stream(lgw, a2), open_stream(lgw, b)]
        wait_for_readers(lgw, GATEWAY_READERS)
        # The next reader is refused on either route, a stream as a page.
        refused_by_gateway(get(lgw, f"{a}?limit=1"))
        refused_by_gateway(get(lgw, a2, headers=SSE))
        refused_by_gateway(get(lgw, b, headers=SSE))
        # One stream's client goes away: its slot comes back (bounded wait for its handler to
        # end), and a reader on the other route takes it.
        held.pop(0).close()
        deadline = time.monotonic() + 30
        while get(lgw, f"/l/a/{lgw.json_topic}?limit=1").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        held.append(open_stream(lgw, a))
        wait_for_readers(lgw, GATEWAY_READERS)
        # Exactly one came back: full again.
        refused_by_gateway(get(lgw, b, headers=SSE))
    finally:
        for s in held:
            s.close()
    wait_for_readers(lgw, 0)
    # All gone: the whole bound is free again.
    held = []
    try:
        held += [open_stream(lgw, a), open_stream(lgw, a), open_stream(lgw, a2)]
        refused_by_gateway(get(lgw, f"{a2}?limit=1"))
    finally:
        for s in held:
            s.close()
    wait_for_readers(lgw, 0)


def test_a_reader_refused_by_a_later_bound_gives_the_gateways_slot_back(lgw, ltopics):
    wait_for_readers(lgw, 0)
    a, b = f"/l/a/{lgw.topic}", f"/l/b/{lgw.avro_topic}"
    held = []
    try:
        held.append(open_stream(lgw, b))
        # The topic of /l/b/ takes one reader: more are refused by read.max_readers_per_topic,
        # each after it took a gateway slot (the gateway's bound is checked first).
        for _ in range(GATEWAY_READERS + 2):
            for headers in (None, SSE):
                r = get(lgw, b if headers else f"{b}?limit=1", headers=headers)
                assert r.status == 503, r
                assert r.headers.get("Retry-After"), r
                assert "(read.max_readers_per_topic)" in r.json()["message"], r.json()
        # Had any of those kept its gateway slot, these would be refused.
        for _ in range(GATEWAY_READERS - 1):
            held.append(open_stream(lgw, a))
        wait_for_readers(lgw, GATEWAY_READERS)
        # The gateway's bound is checked before the topic's: a full gateway names itself.
        refused_by_gateway(get(lgw, b, headers=SSE))
    finally:
        for s in held:
            s.close()
    wait_for_readers(lgw, 0)
