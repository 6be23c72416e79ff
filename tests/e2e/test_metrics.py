"""The plugin's metrics (Prometheus text, OpenMetrics on request) and readiness, on the gateway's own
port, parsed by an independent parser (prometheus_client's)."""

import time

from conftest import CLASSIC_BODY, CLASSIC_VALUE, metric

METRICS = "/__topicgate/metrics"
READY = "/__topicgate/ready"


def scrape(gw, accept=None):
    r = gw.request("GET", METRICS, headers={"Accept": accept} if accept else {})
    assert r.status == 200, r
    return r


def test_counters_move_by_exactly_what_was_answered(gw):
    before = gw.metrics()
    ok, bad = 5, 3
    for _ in range(ok):
        assert gw.post(f"/v1/event/{gw.topic}").status == 200
    bad_body = b'{"no_such_field":1}'
    for _ in range(bad):
        assert gw.post(f"/v1/event/{gw.topic}", body=bad_body).status == 400
    assert gw.post(f"/v2/event/{gw.topic}").status == 200  # the client mounting counts in the same registry
    after = gw.metrics()
    d = lambda name, **labels: metric(after, name, **labels) - metric(before, name, **labels)
    assert d("topicgate_requests_total", topic=gw.topic, status="200") == ok + 1
    assert d("topicgate_requests_total", topic=gw.topic, status="400") == bad
    assert d("topicgate_request_duration_seconds_count", topic=gw.topic) == ok + 1 + bad
    assert d("topicgate_broker_ack_duration_seconds_count", topic=gw.topic) == ok + 1
    assert d("topicgate_request_body_bytes_total", topic=gw.topic) == (ok + 1) * len(CLASSIC_BODY) + bad * len(bad_body)
    assert d("topicgate_produced_bytes_total", topic=gw.topic) == (ok + 1) * len(CLASSIC_VALUE)
    # Buckets are cumulative and end with +Inf = count.
    assert metric(after, "topicgate_request_duration_seconds_bucket", topic=gw.topic, le="+Inf") == \
        metric(after, "topicgate_request_duration_seconds_count", topic=gw.topic)
    assert metric(after, "topicgate_schema_lookups_total", outcome="hit") > metric(before, "topicgate_schema_lookups_total", outcome="hit")
    # Process and runtime facts, prefixed.
    assert metric(after, "topicgate_go_goroutines") > 0
    assert metric(after, "topicgate_process_resident_memory_bytes") > 1 << 20


def test_schema_metrics_carry_the_registry_kind_and_format(gw):
    """Each format of the file registry moves its own series; cached schemas carry the labels; the
    label values are the bounded sets (no topic or schema name in them)."""
    bodies = {"protobuf": (gw.topic, CLASSIC_BODY), "avro": (gw.avro_topic, b'{"sample_message":"m"}'),
              "json": (gw.json_topic, b'{"sample_message":"m"}')}
    for topic, body in bodies.values():  # cached (a miss at most once), so the next ones are hits
        assert gw.post(f"/v1/event/{topic}", body=body).status == 200
    before = gw.metrics()
    for fmt, (topic, body) in bodies.items():
        for _ in range({"protobuf": 2, "avro": 3, "json": 4}[fmt]):
            assert gw.post(f"/v1/event/{topic}", body=body).status == 200
    after = gw.metrics()
    lookups = lambda s, fmt: sum(metric(s, "topicgate_schema_lookups_total", outcome=o, registry="file", format=fmt)  # noqa: E731
                                 for o in ("hit", "stale_served"))
    assert {fmt: lookups(after, fmt) - lookups(before, fmt) for fmt in bodies} == {"protobuf": 2, "avro": 3, "json": 4}
    for fmt, (topic, _) in bodies.items():
        assert metric(after, "topicgate_schema_age_seconds", schema=topic, registry="file", format=fmt) >= 0
        assert (("topicgate_schema_version", frozenset({"schema": topic, "registry": "file", "format": fmt}.items()))
                in after), (fmt, sorted(k for k in after if k[0] == "topicgate_schema_version"))
    for (name, labels), _ in after.items():
        if name.startswith("topicgate_schema_"):
            ls = dict(labels)
            assert ls.get("registry") in ("glue", "file", "confluent"), (name, ls)
            assert ls.get("format") in ("protobuf", "avro", "json", "unknown"), (name, ls)
            assert set(ls) <= {"outcome", "registry", "format", "schema"}, (name, ls)


def test_unknown_topics_add_no_series(gw):
    before = gw.metrics()
    for i in range(1000):
        r = gw.post(f"/v1/event/NoSuchTopic{i}")
        assert r.status == 404, r
    after = gw.metrics()
    new = {k for k in after if k not in before}
    # All 1000 go to the one topic="" series of status 404 (and its histogram, if it is new).
    assert all(dict(labels).get("topic", "") == "" for _, labels in new), sorted(new)[:5]
    assert metric(after, "topicgate_requests_total", topic="", status="404") - \
        metric(before, "topicgate_requests_total", topic="", status="404") == 1000
    assert not any("NoSuchTopic" in v for _, labels in after for _, v in labels)


def test_openmetrics_on_request(gw):
    r = scrape(gw, accept="application/openmetrics-text; version=1.0.0")
    assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers
    assert r.body.rstrip().endswith(b"# EOF")
    r = scrape(gw)
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers


def test_readiness_reports_the_producer_without_a_broker(gw):
    """The e2e gateway has producers for the test broker and for a closed port (/v3/down). It can
    still answer publish requests (the dead producer's are 503 + Retry-After), so it is ready (200);
    the answer's "broker" names the dead producer only, and topicgate_broker_up is 0."""
    deadline = time.monotonic() + 20
    while True:
        r = gw.request("GET", READY)
        body = r.json()
        if any("no broker connection up" in m for m in body.get("broker", {}).get("missing", [])):
            break
        assert time.monotonic() < deadline, r
        time.sleep(0.2)
    assert r.status == 200 and body["ready"] is True and "missing" not in body, r
    assert body["broker"]["up"] is False, body
    assert all(gw.bootstrap not in m for m in body["broker"]["missing"]), body
    assert gw.request("HEAD", READY).status == 200
    snap = gw.metrics()
    assert metric(snap, "topicgate_broker_up") == 0, snap
    assert any(name == "topicgate_producer_broker_connections_up" and dict(labels).get("bootstrap") == gw.bootstrap and v >= 1
               for (name, labels), v in snap.items()), snap
