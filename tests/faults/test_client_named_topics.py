"""Client-named topics (a route's `topic_pattern`) must not grow the gateway without bound: 20,000
distinct names that match the pattern (no schema exists for any of them) get their answer (404),
the metrics keep at most 1,000 client-named topic series plus `other`, and the gateway's RSS stays
flat from the 10,000th name to the 20,000th. (Up to 10,000 the core remembers each "not found"
for `schema.not_found_ttl_ms`, a bounded map: rust-core/src/schema_cache.rs MAX_REMEMBERED.)"""

import http.client
import json
import threading
import uuid

from faultkit import file_core

NAMES = 20_000
HALF = 10_000
TOPIC_CAP = 1_000  # go-plugin/internal/metrics: client-named topics with a series of their own
RSS_GROWTH_KIB = 8 * 1024


def post_all(port, paths, n_threads=8):
    """POSTs one small record to each path on keep-alive connections; {status: count}."""
    statuses, lock, todo = {}, threading.Lock(), list(paths)

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    path = todo.pop()
                try:
                    conn.request("POST", path, body=b'{"sample_message":"x"}',
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    s = r.status
                except (OSError, http.client.HTTPException) as e:
                    s = type(e).__name__
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                with lock:
                    statuses[s] = statuses.get(s, 0) + 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads), "requests still running after 600 s"
    return statuses


def topic_series(snap):
    """Distinct values of the `topic` label in a metrics snapshot."""
    return {dict(labels)["topic"] for (_, labels) in snap if "topic" in dict(labels)}


def test_twenty_thousand_client_named_topics_keep_series_and_memory_bounded(servers, gateways, figures):
    run = uuid.uuid4().hex[:6]
    gw = gateways([], file_core(5000), pattern=f"Named{run}[0-9]+")
    names = [f"Named{run}{i}" for i in range(NAMES)]
    rss_start = gw.proc_status()["VmRSS"]
    first = post_all(gw.port, [f"/f/{n}" for n in names[:HALF]])
    rss_half = gw.proc_status()["VmRSS"]
    rest = post_all(gw.port, [f"/f/{n}" for n in names[HALF:]])
    rss_end = gw.proc_status()["VmRSS"]
    series = topic_series(gw.metrics())
    figures.update({"statuses": {**{f"first {HALF}: {k}": v for k, v in first.items()},
                                 **{f"rest: {k}": v for k, v in rest.items()}},
                    "topic label values": len(series), "RSS KiB at start": rss_start,
                    f"RSS KiB at {HALF} names": rss_half, f"RSS KiB at {NAMES} names": rss_end})
    assert first == {404: HALF} and rest == {404: NAMES - HALF}, (first, rest)
    assert "other" in series, sorted(series)[:5]
    assert len(series) <= TOPIC_CAP + 1, f"{len(series)} topic series for {NAMES} client-named topics"
    assert rss_end - rss_half <= RSS_GROWTH_KIB, (
        f"RSS grew {rss_end - rss_half} KiB from {HALF} to {NAMES} client-named topics")
    # Still serving: the next request is answered as before.
    r = gw.request("POST", f"/f/{names[0]}", body=b'{"sample_message":"x"}',
                   headers={"Content-Type": "application/json"})
    assert r.status == 404 and "schema" in json.loads(r.body)["message"].lower(), r
