"""Registry outage: with a warm schema cache, the Glue endpoint (moto) is stopped. Publishing keeps
working on the cached schema, a topic never seen before is 503 with Retry-After, and when the
registry returns a new schema version is picked up by the background refresh."""

import os
import time
import uuid

import boto3

from faultkit import CLASSIC_PROTO, metric, read_topic, wait_for

REGISTRY = "topicgate-faults"
REFRESH_MS = 2000
# Version 2 adds a field: a body using it is 400 (unknown field) under version 1, 200 under version 2.
PROTO_V2 = CLASSIC_PROTO.replace("  Detail detail = 3;\n", "  Detail detail = 3;\n  string extra = 4;\n")
assert PROTO_V2 != CLASSIC_PROTO
V2_BODY = b'{"sample_message":"v2","extra":"x"}'
V2_VALUE = b"\x0a\x02v2" + b"\x22\x01x"  # field 1 "v2", field 4 (0x22 = 4<<3|2) "x": worked out by hand
HEADERS = {"Content-Type": "application/json"}


def glue():
    return boto3.client("glue", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL_GLUE"])


def create_schema(name, definition):
    g = glue()
    try:
        g.create_registry(RegistryName=REGISTRY)
    except g.exceptions.AlreadyExistsException:
        pass
    g.create_schema(RegistryId={"RegistryName": REGISTRY}, SchemaName=name, DataFormat="PROTOBUF",
                    Compatibility="NONE", SchemaDefinition=definition)


def classic(msg):
    return f'{{"sample_message":"{msg}"}}'.encode(), b"\x0a" + bytes([len(msg)]) + msg.encode()


def test_registry_outage_serves_cached_schemas_and_picks_up_new_versions(servers, gateways, figures):
    run = uuid.uuid4().hex[:8]
    cached, unseen = f"FaultCached{run}", f"FaultUnseen{run}"
    create_schema(cached, CLASSIC_PROTO)
    core = {
        "kafka": {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP"]},
        "registry": {"kind": "glue", "registry_name": REGISTRY, "region": "us-east-1",
                     "endpoint_url": os.environ["AWS_ENDPOINT_URL_GLUE"], "timeout_ms": 1000},
        "schema": {"refresh_interval_ms": REFRESH_MS},
        "delivery_timeout_ms": 5000,
    }
    gw = gateways([cached, unseen], core, retry_after=4)
    written = []  # (response, expected value)

    def publish(topic, msg=None, raw=None):
        b, v = (raw, None) if raw is not None else classic(msg)
        r = gw.post(f"/f/{topic}", body=b, headers=HEADERS)
        if r.status == 200:
            written.append((r.json(), v if v is not None else V2_VALUE))
        return r

    r = publish(cached, "warm")
    assert r.status == 200, r  # the cache is warm
    before = gw.metrics()
    port = servers.glue_port()
    servers.stop_glue()
    try:
        # Cached schema: still served, across more than one refresh interval (refreshes fail meanwhile).
        for i in range(4):
            r = publish(cached, f"outage-{i}")
            assert r.status == 200, r
            time.sleep(REFRESH_MS / 1000 * 0.75)
        wait_for(lambda: "refresh kept the cached version" in gw.log(), 30,
                 "a failed background refresh logged while the registry is down")
        r = publish(cached, "outage-after-refresh")
        assert r.status == 200, r
        # The metrics say so: stale schemas served, failed registry fetches, the schema's age growing.
        during = gw.metrics()
        stale = metric(during, "topicgate_schema_lookups_total", outcome="stale_served") - \
            metric(before, "topicgate_schema_lookups_total", outcome="stale_served")
        failures = metric(during, "topicgate_schema_registry_fetch_failures_total") - \
            metric(before, "topicgate_schema_registry_fetch_failures_total")
        assert stale >= 1 and failures >= 1, (stale, failures)
        assert metric(during, "topicgate_schema_age_seconds", schema=cached) > REFRESH_MS / 1000, during
        figures.update({"stale schemas served while the registry was down": stale,
                        "failed registry fetches": failures})
        # Never seen: nothing cached, the registry is down: 503, retriable.
        r = publish(unseen, "never-seen")
        assert r.status == 503, r
        assert r.headers.get("Retry-After") == "4", r.headers
        assert "registry" in r.json()["message"], r.json()
        # The new version is not there yet: a body using its field is refused by version 1.
        assert publish(cached, raw=V2_BODY).status == 400
    finally:
        servers.start_glue(port)
    t_back = time.monotonic()
    create_schema(cached, PROTO_V2)  # moto starts empty: the schema's newest text is PROTO_V2
    create_schema(unseen, CLASSIC_PROTO)
    t_created = time.monotonic()
    results = []

    def picked_up():
        results.append(publish(cached, raw=V2_BODY))
        return results[-1].status == 200

    pickup = wait_for(picked_up, 60, "the new schema version served after the registry returned", step=0.1)
    assert all(r.status in (200, 400) for r in results), results  # version 1 or version 2, nothing else
    r = publish(unseen, "after")
    assert r.status == 200, r
    figures.update({
        "registry back (moto up) to new schema created, s": round(t_created - t_back, 2),
        "new schema created to first 200 on it, s (refresh interval 2 s)": round(pickup, 2),
        "published while the registry was down": 6,
    })

    # Everything answered 200 is on its topic with the bytes of the schema version that accepted it.
    for topic in (cached, unseen):
        on_topic = {(p, o): v for p, o, _, v in read_topic(gw, topic)}
        mine = [(b, v) for b, v in written if b["topic"] == topic]
        assert len(on_topic) == len(mine), (topic, len(on_topic), len(mine))
        for b, v in mine:
            assert on_topic.get((b["partition"], b["offset"])) == v, (topic, b)
