"""Streams: an NDJSON request that accepts an NDJSON answer (README "Streams"). Records are produced
while the body arrives and answered one line each, in order, then a last line says how the stream
ended. Every record is read back by Kafka's own consumer and checked byte for byte.

The long cases (100,000 records across a broker restart, the memory of a 1M-record stream) are in
tests/faults/test_long_stream.py (make test-stream).
"""

import json
import threading
import time

from conftest import STREAM_IDLE_MS, STREAM_LINE, Stream
from test_batch import new_topic, on_topic, read_all, value

NDJSON = "application/x-ndjson"


def ndjson(texts):
    return "".join(json.dumps({"sample_message": t}) + "\n" for t in texts).encode()


def rss_kib(gw):
    with open(f"/proc/{gw.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def ok_where(results):
    assert all(e["statusCode"] == "200" for e in results), [e for e in results if e["statusCode"] != "200"][:3]
    return [(e["partition"], e["offset"]) for e in results]


def test_a_stream_is_produced_while_it_arrives_and_read_back_in_order(gw):
    topic = new_topic(gw)
    texts = [f"s{i}-" + "y" * (i % 5) for i in range(2000)]
    s = Stream(gw, f"/v1/batch/{topic}")
    s.send(ndjson(texts[:10]))
    first = s.lines(10)  # answered while the request is still open
    assert [e["line"] for e in first] == list(range(1, 11)), first
    for i in range(10, 2000, 330):
        s.send(ndjson(texts[i:i + 330]))
    s.end()
    rest = s.rest()
    end = rest.pop()
    assert end == {"statusCode": "200", "message": "ok", "topic": topic, "records": 2000, "written": 2000}, end
    results = first + rest
    assert [e["line"] for e in results] == list(range(1, 2001))
    where = ok_where(results)
    assert [o for _, o in where] == list(range(where[0][1], where[0][1] + 2000)), "not consecutive in order"
    recs = read_all(gw, topic, where)
    assert [r.value for r in recs] == [value(t) for t in texts]
    assert all(r.key == b"stream-key" for r in recs), recs[0]
    assert all(dict(r.headers).get("h") == b"1" for r in recs), recs[0]


def test_a_bad_line_stops_the_stream_and_later_lines_are_not_produced(gw):
    topic = new_topic(gw)
    lines = ndjson([f"b{i}" for i in range(36)]) + b'{"sample_message": 7}\n' + ndjson([f"c{i}" for i in range(13)])
    s = Stream(gw, f"/v1/batch/{topic}")
    s.send(lines)
    s.end()
    out = s.rest()
    end = out.pop()
    assert len(out) == 37 and ok_where(out[:36]), out
    assert out[36]["line"] == 37 and out[36]["statusCode"] == "400", out[36]
    assert out[36]["message"].startswith("line 37: ") and "sample_message" in out[36]["message"], out[36]
    assert end["statusCode"] == "400" and end["stoppedAtLine"] == 37 and end["written"] == 36, end
    assert end["message"].startswith("the stream stopped at line 37: "), end
    assert on_topic(gw, topic) == 36


def test_a_partial_stream_goes_past_bad_lines(gw):
    topic = new_topic(gw)
    texts = [f"p{i}" for i in range(50)]
    body = b"".join(b'{"nope": 1}\n' if i in (9, 19) else ndjson([t]) for i, t in enumerate(texts))
    s = Stream(gw, f"/v1/partial/{topic}")
    s.send(body)
    s.end()
    out = s.rest()
    end = out.pop()
    assert [e["line"] for e in out] == list(range(1, 51))
    assert [e["line"] for e in out if e["statusCode"] != "200"] == [10, 20], out
    assert end["statusCode"] == "207" and end["written"] == 48 and "stoppedAtLine" not in end, end
    good = [e for e in out if e["statusCode"] == "200"]
    recs = read_all(gw, topic, ok_where(good))
    assert [r.value for r in recs] == [value(t) for i, t in enumerate(texts) if i not in (9, 19)]
    assert on_topic(gw, topic) == 48


def test_a_client_that_stops_sending_is_cut_after_the_idle_timeout(gw):
    topic = new_topic(gw)
    s = Stream(gw, f"/v1/stream/{topic}")
    s.send(ndjson(["i0", "i1", "i2"]) + b'{"sample_mess')  # then silence, mid-line
    t0 = time.monotonic()
    out = s.rest()
    waited = time.monotonic() - t0
    end = out.pop()
    assert len(out) == 3 and ok_where(out), out
    assert end["statusCode"] == "408" and end["stoppedAtLine"] == 4 and end["written"] == 3, end
    assert f"sent nothing for {STREAM_IDLE_MS // 1000}s" in end["message"], end
    assert waited >= STREAM_IDLE_MS / 1000 * 0.9, waited
    assert on_topic(gw, topic) == 3


def test_a_stream_that_never_ends_keeps_its_memory_and_is_answered_as_it_goes(gw):
    """A client sends for 8 s without ending its body while reading the answers: they keep
    coming, and the gateway's RSS does not grow with what was sent. Then it falls silent and is
    cut by the idle timeout, every record it sent answered."""
    topic = new_topic(gw)
    s = Stream(gw, f"/v1/stream/{topic}")
    sent, answered, samples = [0], [], []
    stop = threading.Event()

    def sender():
        n = 0
        while not stop.is_set():
            s.send(ndjson([f"n{n + i}-" + "z" * 200 for i in range(200)]))
            n += 200
            sent[0] = n

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    resp_lines = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 8:
        resp_lines.extend(s.lines(100))
        answered.append((time.monotonic() - t0, len(resp_lines)))
        if not samples or time.monotonic() - t0 > len(samples):
            samples.append(rss_kib(gw))
    stop.set()
    t.join(30)
    assert not t.is_alive(), "the sender is stuck"
    out = resp_lines + s.rest()
    end = out.pop()
    assert end["statusCode"] == "408" and end["records"] == sent[0] == len(out), (end, sent[0], len(out))
    ok_where(out)
    per_second = [n for at, n in answered if at > 1]
    assert per_second[-1] - per_second[0] > 1000, answered[-5:]
    # Memory: from its value after the first second to the end, growth stays far below what was sent.
    growth_mib = (max(samples[1:]) - samples[1]) / 1024
    sent_mib = sent[0] * 230 / 2 ** 20
    assert growth_mib < 48, (samples, sent_mib)
    assert on_topic(gw, topic) == sent[0]


def test_hostile_streams_a_100_mb_line_and_invalid_utf8(gw):
    # Over the line limit, validate-all route: answered 413 at once, without reading the line to its end.
    topic = new_topic(gw)
    s = Stream(gw, f"/v1/stream/{topic}")
    s.send(ndjson(["h0"]))
    block = b"x" * (1 << 20)

    def flood():
        try:
            for _ in range(100):
                s.send(block)
        except OSError:
            pass  # the gateway closed the connection: expected once it answered

    before = rss_kib(gw)
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    out = s.rest()
    t.join(60)
    end = out.pop()
    assert len(out) == 2 and out[0]["statusCode"] == "200", out
    assert out[1]["line"] == 2 and out[1]["statusCode"] == "413", out[1]
    assert f"limit of {STREAM_LINE} bytes (batch.max_line_bytes)" in out[1]["message"], out[1]
    assert end["statusCode"] == "413" and end["stoppedAtLine"] == 2, end

    # A partial route reads a 100 MB line to its end without keeping it, and goes on.
    topic = new_topic(gw)
    s = Stream(gw, f"/v1/partial/{topic}")
    s.send(ndjson(["h1"]))
    for _ in range(100):
        s.send(block)
    s.send(b"\n" + ndjson(["h2"]) + b'{"sample_message": "bad \xff\xfe"}\n' + ndjson(["h3"]))
    s.end()
    out = s.rest()
    end = out.pop()
    growth_mib = (rss_kib(gw) - before) / 1024
    assert [e["statusCode"] for e in out] == ["200", "413", "200", "400", "200"], out
    assert out[3]["line"] == 4 and "UTF-8" in out[3]["message"], out[3]
    assert end["statusCode"] == "207" and end["written"] == 3, end
    assert growth_mib < 48, f"RSS grew {growth_mib:.0f} MiB over a 100 MB line"
    assert on_topic(gw, topic) == 3


def test_streams_are_refused_where_they_cannot_be_served(gw):
    h = {"Content-Type": NDJSON, "Accept": NDJSON}
    topic = new_topic(gw)
    body = ndjson(["r0"])
    # Client mounting: KrakenD buffers a backend's whole answer, so no stream.
    r = gw.request("POST", f"/v2/batch/{topic}", body=body, headers=h)
    assert r.status == 406 and "http-server mounting" in r.json()["message"], r
    # All-or-nothing route: whole batches only.
    r = gw.request("POST", f"/v1/atomic/{topic}", body=body, headers=h)
    assert r.status == 406 and "batch.atomic" in r.json()["message"], r
    assert on_topic(gw, topic) == 0
