"""The example config's server timeouts (krakend/krakend.json, docs/design.md "Server timeouts of the
example config") and KrakenD's health check, on whichever gateway runs the suite.

- 200 connections that send half a request header and then nothing are cut once the gateway's
  read_header_timeout has passed, while a normal request and an NDJSON stream that lasts longer
  than that timeout both succeed and are read back.
- GET /__health answers 200 with KrakenD's body shape; another method 405.
"""

import json
import socket
import time

from conftest import ROOT, Stream
from test_batch import new_topic, read_all, value
from test_stream import ndjson, ok_where

SLOW_CONNECTIONS = 200


def example_timeout(key):
    """A server timeout of krakend/krakend.json in seconds ("5s" -> 5.0)."""
    text = json.loads((ROOT / "krakend" / "krakend.json").read_text())[key]
    assert text.endswith("s") and not text.endswith("ms"), f"{key}: {text} (this test reads whole seconds)"
    return float(text[:-1])


def closed_by_peer(sock):
    """True once the gateway has closed sock (EOF or reset); False while it is still open."""
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (BlockingIOError, socket.timeout):
        return False


def test_slow_header_connections_are_cut_while_requests_and_streams_go_on(gw):
    header_timeout = example_timeout("read_header_timeout")
    assert example_timeout("idle_timeout") > header_timeout
    slow = []
    started = time.monotonic()
    for _ in range(SLOW_CONNECTIONS):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        s.sendall(b"POST /v1/event/" + gw.topic.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        s.setblocking(False)
        slow.append(s)
    try:
        # Still open well before the header timeout: it is that timeout that cuts them below.
        assert time.monotonic() - started < header_timeout - 1, "opening the connections took too long to tell"
        assert not [s for s in slow if closed_by_peer(s)], "a slow-header connection was cut early"
        # A stream that outlasts the header timeout: one line a second (below the route's idle timeout).
        topic = new_topic(gw)
        texts = [f"slow-header-{i}" for i in range(int(header_timeout) + 3)]
        stream = Stream(gw, f"/v1/batch/{topic}")
        for t in texts:
            stream.send(ndjson([t]))
            time.sleep(1)
        # A normal request, sent while the slow connections are still being cut or just were.
        r = gw.post(f"/v1/event/{gw.topic}")
        assert r.status == 200, r
        stream.end()
        out = stream.rest()
        end = out.pop()
        assert end["statusCode"] == "200" and end["written"] == len(texts), end
        recs = read_all(gw, topic, ok_where(out))
        assert [rec.value for rec in recs] == [value(t) for t in texts]
        assert gw.read_back(gw.topic, r.json()["partition"], r.json()["offset"], 1)[0].offset == r.json()["offset"]

        # Every slow connection is cut within a bound.
        open_ = set(range(len(slow)))
        deadline = started + header_timeout + 30
        while open_ and time.monotonic() < deadline:
            for i in list(open_):
                if closed_by_peer(slow[i]):
                    open_.discard(i)
            time.sleep(0.2)
        assert not open_, f"{len(open_)} of {len(slow)} slow-header connections still open {time.monotonic() - started:.0f} s later"
    finally:
        for s in slow:
            s.close()


def test_health_check_answers_as_krakend_does(gw):
    r = gw.request("GET", "/__health")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["status"] == "ok" and isinstance(body["agents"], dict) and isinstance(body["now"], str), body
    assert set(body) == {"agents", "now", "status"}, body
    # Another method on it, as on any known path, is 405 with Allow.
    r = gw.request("POST", "/__health")
    assert r.status == 405 and r.headers["Allow"] == "GET", r
