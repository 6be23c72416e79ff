"""Confluent-compatible registry outage (issue #23): with a warm schema cache, the Apicurio registry
is stopped. Cached Avro and JSON Schema topics keep publishing (read back by Kafka's consumer), an
unseen topic is 503 with Retry-After naming the registry; when the registry returns, a new version
registered meanwhile is picked up by the background refresh (a body valid only under version 2
goes from 400 to 200 and its record carries version 2's Confluent id). A missing subject is 404;
a registry that refuses the credentials is 503 saying so. The schema metrics carry the registry
kind and the format."""

import json
import os
import struct
import sys
import time
import urllib.request
import uuid

from faultkit import ROOT, metric, read_topic, wait_for

sys.path.insert(0, str(ROOT / "tests" / "registry"))
from authproxy import AuthProxy  # noqa: E402  (the harness's proxy that demands credentials)

REFRESH_MS = 2000
HEADERS = {"Content-Type": "application/json"}
CT = "application/vnd.schemaregistry.v1+json"
AVRO_V1 = {"type": "record", "name": "Fault", "namespace": "tg.faults", "fields": [{"name": "name", "type": "string"}]}
# Version 2 adds a field: a body using it is 400 (unknown field) under version 1, 200 under version 2.
AVRO_V2 = {**AVRO_V1, "fields": AVRO_V1["fields"] + [{"name": "note", "type": "string", "default": ""}]}
JSON_V1 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
           "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
V2_BODY = b'{"name":"v2","note":"x"}'


def register(url, subject, schema, schema_type=None):
    """Registers a schema version through the registry's REST API; returns its global id."""
    body = {"schema": json.dumps(schema), **({"schemaType": schema_type} if schema_type else {})}
    req = urllib.request.Request(f"{url}/subjects/{subject}/versions", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": CT})
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())
    assert isinstance(out.get("id"), int), out
    return out["id"]


def avro_string(s):
    """Avro's encoding of a short string: its length zigzag-encoded (one byte below 64), the bytes."""
    b = s.encode()
    assert len(b) < 64
    return bytes([len(b) * 2]) + b


def framed(schema_id, payload):
    return b"\x00" + struct.pack(">I", schema_id) + payload


def test_confluent_registry_outage_serves_cached_schemas_and_picks_up_new_versions(servers, registry, gateways,
                                                                                   figures):
    url = registry["SCHEMA_REGISTRY_URL"]
    run = uuid.uuid4().hex[:8]
    avro, js, unseen, missing = f"FaultSrAvro{run}", f"FaultSrJson{run}", f"FaultSrUnseen{run}", f"FaultSrMissing{run}"
    ids = {"avro1": register(url, f"{avro}-value", AVRO_V1), "json1": register(url, f"{js}-value", JSON_V1, "JSON")}
    core = {
        "kafka": {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP"]},
        "registry": {"kind": "confluent", "url": url, "timeout_ms": 1000},
        "value_format": "confluent",
        "schema": {"refresh_interval_ms": REFRESH_MS},
        "delivery_timeout_ms": 5000,
    }
    gw = gateways([avro, js, unseen, missing], core, retry_after=4)
    written = []  # (answer, expected record value)

    def publish(topic, name=None, raw=None, expect=None):
        body = raw if raw is not None else json.dumps({"name": name}).encode()
        r = gw.post(f"/f/{topic}", body=body, headers=HEADERS)
        if r.status == 200:
            written.append((r.json(), expect(r) if callable(expect) else expect))
        return r

    def avro_v1(name):
        return publish(avro, name, expect=framed(ids["avro1"], avro_string(name)))

    def json_v1(name):
        return publish(js, name, expect=framed(ids["json1"], json.dumps({"name": name}, separators=(",", ":")).encode()))

    assert avro_v1("warm").status == 200
    assert json_v1("warm").status == 200  # the cache is warm
    # A subject the registry does not have: 404 naming it.
    r = publish(missing, "m")
    assert r.status == 404 and missing in r.json()["message"], r
    before = gw.metrics()
    ports = servers.registry_ports()
    servers.registry_down()
    try:
        # Cached schemas: still served, across more than one refresh interval (refreshes fail meanwhile).
        for i in range(4):
            assert avro_v1(f"outage-{i}").status == 200
            assert json_v1(f"outage-{i}").status == 200
            time.sleep(REFRESH_MS / 1000 * 0.75)
        wait_for(lambda: gw.log().count("refresh kept the cached version") >= 2, 30,
                 "failed background refreshes (Avro and JSON Schema) logged while the registry is down")
        assert avro_v1("outage-after-refresh").status == 200
        assert json_v1("outage-after-refresh").status == 200
        during = gw.metrics()
        d = lambda name, **labels: metric(during, name, **labels) - metric(before, name, **labels)  # noqa: E731
        for fmt in ("avro", "json"):
            stale = d("topicgate_schema_lookups_total", outcome="stale_served", registry="confluent", format=fmt)
            failures = d("topicgate_schema_registry_fetch_failures_total", registry="confluent", format=fmt)
            assert stale >= 1 and failures >= 1, (fmt, stale, failures, during)
            figures[f"{fmt}: stale schemas served / failed refreshes while the registry was down"] = \
                f"{stale}/{failures}"
        assert metric(during, "topicgate_schema_age_seconds", schema=f"{avro}-value", registry="confluent",
                      format="avro") > REFRESH_MS / 1000, during
        # Never seen: nothing cached, the registry is down: 503, retriable, naming the registry.
        r = publish(unseen, "never-seen")
        assert r.status == 503, r
        assert r.headers.get("Retry-After") == "4", r.headers
        assert "registry" in r.json()["message"] and unseen in r.json()["message"], r.json()
        # The new version is not there yet: a body using its field is refused by version 1.
        r = publish(avro, raw=V2_BODY)
        assert r.status == 400 and "note" in r.json()["message"], r
    finally:
        t_down = time.monotonic()
        env = servers.registry_up(ports)  # same ports: the gateway's registry.url does not change
        figures["registry restart (JVM up, API answering), s"] = round(time.monotonic() - t_down, 1)
    assert env["SCHEMA_REGISTRY_URL"] == url, env
    # Apicurio keeps its state in memory: it starts empty. Versions 1 and 2 of the cached subject
    # are registered anew, so that the newest is version 2.
    register(url, f"{avro}-value", AVRO_V1)
    ids["avro2"] = register(url, f"{avro}-value", AVRO_V2)
    ids["unseen"] = register(url, f"{unseen}-value", AVRO_V1)
    t_registered = time.monotonic()
    results = []

    def picked_up():
        results.append(publish(avro, raw=V2_BODY, expect=framed(ids["avro2"], avro_string("v2") + avro_string("x"))))
        return results[-1].status == 200

    pickup = wait_for(picked_up, 60, "version 2 served after the registry returned", step=0.1)
    assert all(r.status in (200, 400) for r in results), results  # version 1 or version 2, nothing else
    r = publish(unseen, "after", expect=framed(ids["unseen"], avro_string("after")))
    assert r.status == 200, r
    figures["version 2 registered to first 200 on it, s (refresh interval 2 s)"] = round(pickup, 2)
    after = gw.metrics()
    assert metric(after, "topicgate_schema_version", schema=f"{avro}-value", registry="confluent", format="avro") == 2

    # Everything answered 200 is on its topic with the framing and bytes of the version that accepted it.
    for topic in (avro, js, unseen):
        on_topic = {(p, o): v for p, o, _, v in read_topic(gw, topic)}
        mine = [(b, v) for b, v in written if b["topic"] == topic]
        assert len(on_topic) == len(mine), (topic, len(on_topic), len(mine))
        for b, v in mine:
            assert on_topic.get((b["partition"], b["offset"])) == v, (topic, b, on_topic.get((b["partition"], b["offset"])))
    figures["records read back (Avro, JSON Schema, unseen)"] = [sum(b["topic"] == t for b, _ in written)
                                                               for t in (avro, js, unseen)]


def test_confluent_registry_refusing_the_credentials_is_503_saying_so(servers, registry, gateways):
    """The harness's auth proxy in front of the real registry, the gateway with wrong credentials:
    the registry answers 401, the client gets 503 naming the refused credentials and the setting."""
    upstream = registry["REGISTRY_BASE_URL"]
    run = uuid.uuid4().hex[:8]
    topic = f"FaultSrAuth{run}"
    register(registry["SCHEMA_REGISTRY_URL"], f"{topic}-value", AVRO_V1)
    with AuthProxy(upstream, basic=("alice", "s3cret")) as proxy:
        core = {
            "kafka": {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP"]},
            "registry": {"kind": "confluent", "url": proxy.url, "timeout_ms": 2000,
                         "basic_auth": {"username": "alice", "password": "wrong"}},
            "value_format": "confluent",
        }
        gw = gateways([topic], core, retry_after=4)
        r = gw.post(f"/f/{topic}", body=b'{"name":"x"}', headers=HEADERS)
        assert r.status == 503, r
        assert r.headers.get("Retry-After") == "4", r.headers
        msg = r.json()["message"]
        assert "refused the credentials" in msg and "401" in msg and "registry.basic_auth" in msg, msg
        assert "wrong" not in msg  # never the password
        assert any(auth and auth.startswith("Basic ") for _, _, auth in proxy.seen), proxy.seen
        snap = gw.metrics()
        assert metric(snap, "topicgate_schema_registry_fetch_failures_total", registry="confluent",
                      format="unknown") >= 1, snap
