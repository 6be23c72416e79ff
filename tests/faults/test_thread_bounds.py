"""Waits inside the core park an OS thread each (a cgo call blocks its thread), and Go aborts a
process at 10,000 threads. These tests load the gateway with far more waiting requests than the
core lets wait, and check the gateway's thread count (from /proc, any host) and every answer:

- the schema registry hangs (accepts connections, never answers) while clients ask for 2,000
  topics nobody has asked for before: at most 128 requests wait for the registry, the others are
  refused at once; every answer is a 503 with Retry-After;
- many more concurrent atomic batches than transactional producers: each waits for a free
  producer until its deadline, then 503; every batch answered 200 is on the topic whole.
"""

import http.client
import json
import os
import socket
import threading
import time
import uuid

from faultkit import file_core, read_topic, status_counts, value_of, wait_for

# The core lets this many requests wait for the registry (rust-core/src/schema_cache.rs); Go's own
# threads (scheduler, netpoller, GC, idle Ms) and librdkafka's come on top of the baseline.
REGISTRY_WAITERS = 128
SLACK = 96


class HungServer:
    """A TCP server on loopback that accepts connections and never answers (a hung registry)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)  # held open, never read or answered

    def close(self):
        self.closed.set()
        self.sock.close()
        for c in self.conns:
            c.close()


class PeakThreads:
    """Samples the gateway's thread count until stopped; keeps the peak."""

    def __init__(self, gw):
        self.gw, self.peak, self.samples = gw, 0, 0
        self.stopped = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, self.gw.proc_status()["Threads"])
            self.samples += 1
            time.sleep(0.02)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.t.join(5)


def run_clients(n_threads, requests, timeout):
    """Runs `requests` (callables returning an outcome) on `n_threads` client threads; all outcomes."""
    outcomes, lock, todo = [], threading.Lock(), list(requests)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                req = todo.pop()
            o = req()
            with lock:
                outcomes.append(o)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"client threads still waiting after {timeout} s: a request hangs"
    return outcomes


def post(port, path, body, content_type, timeout=60):
    """(status, Retry-After, parsed body or text, error) of one POST on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type, "message-key": "k"})
        r = conn.getresponse()
        raw = r.read()
        try:
            b = json.loads(raw)
        except ValueError:
            b = raw[:200].decode(errors="replace")
        return r.status, r.getheader("Retry-After"), b, None
    except Exception as e:
        return None, None, None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def test_a_hung_registry_and_2000_uncached_topics_keep_threads_bounded(servers, gateways, figures):
    hung = HungServer()
    try:
        core = {
            "kafka": {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP"]},
            "registry": {"kind": "glue", "registry_name": "topicgate-hung", "region": "us-east-1",
                         "endpoint_url": f"http://127.0.0.1:{hung.port}", "timeout_ms": 3000},
            "delivery_timeout_ms": 5000,
        }
        gw = gateways([], core, pattern="Hung[0-9a-f]+")
        baseline = gw.proc_status()["Threads"]
        run = uuid.uuid4().hex[:6]
        topics = [f"Hung{run}{i:04x}" for i in range(2000)]
        body = json.dumps({"sample_message": "x"}).encode()
        requests = [lambda t=t: post(gw.port, f"/f/{t}", body, "application/json") for t in topics]
        with PeakThreads(gw) as peak:
            outcomes = run_clients(600, requests, timeout=240)
    finally:
        hung.close()
    statuses = status_counts([type("O", (), {"status": s})() for s, _, _, _ in outcomes])
    figures.update({"requests": len(outcomes), "statuses": statuses, "threads before": baseline,
                    "peak threads": peak.peak, "samples": peak.samples})
    assert len(outcomes) == 2000
    assert [e for _, _, _, e in outcomes if e] == [], "connection errors"
    assert all(s == 503 for s, _, _, _ in outcomes), statuses
    assert all(ra for _, ra, _, _ in outcomes), "a 503 without Retry-After"
    messages = [b.get("message", "") for _, _, b, _ in outcomes]
    assert all("registry" in m for m in messages), [m for m in messages if "registry" not in m][:3]
    refused_at_once = sum("already wait" in m for m in messages)
    figures["refused at once (registry waiters full)"] = refused_at_once
    assert refused_at_once > 0, "600 concurrent clients never filled the registry waiters"
    assert peak.peak <= baseline + REGISTRY_WAITERS + SLACK, (
        f"threads peaked at {peak.peak} (baseline {baseline}): waits for the registry are not bounded")


def test_many_more_atomic_batches_than_producers_are_answered_by_their_deadline(servers, gateways, figures):
    topic = f"FaultTxnThreads{uuid.uuid4().hex[:8]}"
    core = {**file_core(5000), "transactions": {"producers": 2, "timeout_ms": 3000}}
    gw = gateways([topic], core, batch={"atomic": True, "max_records": 50})
    ndjson = "application/x-ndjson"

    def batch(prefix, n=20):
        return "".join(json.dumps({"sample_message": f"{prefix}-{i}"}) + "\n" for i in range(n)).encode()

    wait_for(lambda: post(gw.port, f"/f/{topic}", batch("warm", 1), ndjson)[0] == 200, 60,
             "a first atomic batch", step=0.5)
    baseline = gw.proc_status()["Threads"]
    clients, rounds = 64, 4
    prefixes = [f"b{c}r{r}" for c in range(clients) for r in range(rounds)]
    requests = [lambda p=p: (p, *post(gw.port, f"/f/{topic}", batch(p), ndjson)) for p in prefixes]
    with PeakThreads(gw) as peak:
        outcomes = run_clients(clients, requests, timeout=300)
    statuses = status_counts([type("O", (), {"status": s})() for _, s, _, _, _ in outcomes])
    figures.update({"batches": len(outcomes), "statuses": statuses, "threads before": baseline,
                    "peak threads": peak.peak})
    assert [e for *_, e in outcomes if e] == [], "connection errors"
    assert all(s in (200, 503, 504) for _, s, _, _, _ in outcomes), statuses
    refused = [b["message"] for _, s, _, b, _ in outcomes if s == 503]
    assert all("nothing written" in m for m in refused), refused[:3]
    status = {p: s for p, s, _, _, _ in outcomes}
    ok = {p for p, s in status.items() if s == 200}
    assert len(ok) >= clients, f"only {len(ok)} of {len(outcomes)} batches committed on a healthy broker"
    # read_committed: a batch answered 200 is on the topic whole, one answered 503 not at all, and
    # one answered 504 (commit outcome unknown) whole or not at all.
    on_topic = {}
    for _, _, _, value in read_topic(gw, topic):
        on_topic[value] = on_topic.get(value, 0) + 1
    whole, absent = [1] * 20, [0] * 20
    for p in prefixes:
        counts = [on_topic.get(value_of(f"{p}-{i}"), 0) for i in range(20)]
        allowed = {200: [whole], 503: [absent], 504: [whole, absent]}[status[p]]
        assert counts in allowed, (p, status[p], counts)
    # One thread per waiting batch at most (64 clients), on top of the baseline.
    assert peak.peak <= baseline + clients + SLACK, f"threads peaked at {peak.peak} (baseline {baseline})"
