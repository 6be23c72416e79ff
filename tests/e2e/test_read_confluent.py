"""Reading topics (issue #22) whose records carry Confluent's framing: written by confluent-kafka's
own serializers (Avro, JSON Schema, Protobuf) against the Confluent-compatible registry (the
Apicurio harness at SCHEMA_REGISTRY_URL), read back through the paged GET and an SSE stream
decoded to the values sent, with their keys, partitions and offsets. A value framed with a schema
id of an older version of the topic's subject is decoded with that version's schema (looked up by
its id); one framed with an id the registry does not have is an error entry naming its partition,
offset and the id. With the core's key_schema, keys written by Confluent's serializer for keys are
decoded with the key schema too.
"""

import base64
import json
import struct

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import test_confluent_schemas as confluent_schemas
import test_schema_registry as base
from conftest import running
from test_read import Events, ReadGateway, get, produce

AVRO = {"type": "record", "name": "Reading", "namespace": "tg.read", "fields": [
    {"name": "sensor", "type": "string"}, {"name": "value", "type": "double"},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": ["null", "string"], "default": None}]}
# The topic's latest Avro schema: a field added; records written with AVRO (an older id) still read.
AVRO_V2 = {**AVRO, "fields": AVRO["fields"] + [{"name": "unit", "type": "string", "default": "C"}]}
JSON_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Ping", "type": "object",
               "properties": {"seq": {"type": "integer"}, "who": {"type": "string"}}, "required": ["seq"]}


class ConfluentReadGateway(ReadGateway):
    """The read gateway with its core on the Confluent registry, Confluent framing."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.avro = f"ReadCfAvro{self.run_id}"
        self.json = f"ReadCfJson{self.run_id}"
        self.proto = f"ReadCfProto{self.run_id}"

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"]["registry"] = {"kind": "confluent", "url": base.registry_url(), "timeout_ms": 5000}
        srv["core"]["value_format"] = "confluent"
        readable = [self.avro, self.json, self.proto]
        srv["routes"] = [{"path_prefix": "/rc/", "topics": readable, "read": {"topics": readable, "raw_on_error": True}}]
        self.config_path.write_text(json.dumps(cfg, indent=2))


def proto_file(run):
    """One message `tg.read.Beat` as a descriptor, and its class (test_confluent_schemas' file, another package)."""
    return confluent_schemas.proto_file("tg.read", run)


@pytest.fixture(scope="module")
def cgw():
    yield from running(ConfluentReadGateway, "topicgate-read-cf-")


@pytest.fixture(scope="module")
def ids(cgw):
    f, _ = proto_file(cgw.run_id)
    return {
        "avro_v1": base.register(f"{cgw.avro}-value", json.dumps(AVRO)),
        "avro": base.register(f"{cgw.avro}-value", json.dumps(AVRO_V2)),
        "json": base.register(f"{cgw.json}-value", json.dumps(JSON_SCHEMA), "JSON"),
        "proto": base.register(f"{cgw.proto}-value", base64.b64encode(f.SerializeToString()).decode(), "PROTOBUF"),
    }


def ctx(topic):
    return SerializationContext(topic, MessageField.VALUE)


def test_every_format_written_by_confluents_serializers_reads_back_as_sent(cgw, ids):
    sr = SchemaRegistryClient({"url": base.registry_url()})
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    cases = []
    avro_values = [{"sensor": "s1", "value": 21.5, "tags": ["a"], "note": None, "unit": "K"},
                   {"sensor": "s2", "value": -1.0, "tags": [], "note": "n", "unit": "C"}]
    ser = AvroSerializer(sr, json.dumps(AVRO_V2), conf=conf)
    avro_framed = [ser(v, ctx(cgw.avro)) for v in avro_values]
    # Written with the older version's id: decoded with that version's schema, found by its id.
    old = {"sensor": "old", "value": 1.0, "tags": [], "note": None}
    avro_values.append(old)
    avro_framed.append(AvroSerializer(sr, json.dumps(AVRO), conf={"auto.register.schemas": False,
                                                                  "use.schema.id": ids["avro_v1"]})(old, ctx(cgw.avro)))
    cases.append((cgw.avro, avro_values, avro_framed))
    json_values = [{"seq": 1, "who": "x"}, {"seq": 2}]
    ser = JSONSerializer(json.dumps(JSON_SCHEMA), sr, conf=conf)
    cases.append((cgw.json, json_values, [ser(v, ctx(cgw.json)) for v in json_values]))
    _, Beat = proto_file(cgw.run_id)
    ser = ProtobufSerializer(Beat, sr, {**conf, "use.deprecated.format": False})
    proto_values = [{"n": "9007199254740993", "tag": "t"}, {"tag": "only"}]
    cases.append((cgw.proto, proto_values,
                  [ser(Beat(n=int(v.get("n", 0)), tag=v["tag"]), ctx(cgw.proto)) for v in proto_values]))
    for topic, values, framed in cases:
        assert all(b[0] == 0 and struct.unpack(">I", b[1:5])[0] in (ids[topic_kind(cgw, topic)], ids["avro_v1"])
                   for b in framed)
        # A value framed with an id that is no schema of this topic, after the good ones.
        bad = b"\x00" + struct.pack(">I", 0x7FFFFFF0) + framed[0][5:]
        records = [(0, f"k{i}".encode(), b, []) for i, b in enumerate(framed)] + [(0, b"bad", bad, [])]
        placed = produce(cgw.bootstrap, topic, records)
        r = get(cgw, f"/rc/{topic}?start=earliest&limit=10")
        assert r.status == 200, r
        by_key = {e["key"]: e for e in r.json()["records"]}
        assert len(by_key) == len(records), r.json()
        for i, v in enumerate(values):
            e = by_key[f"k{i}"]
            assert (e["partition"], e["offset"]) == placed[i]
            assert e["value"] == v, (topic, e)
        e = by_key["bad"]
        assert "value" not in e and f"partition {placed[-1][0]} offset {placed[-1][1]}" in e["error"], e
        assert str(0x7FFFFFF0) in e["error"] and base64.b64decode(e["value_base64"]) == bad
        # The same records as events, in order per partition, the bad one an error event.
        ev = Events(cgw, f"/rc/{topic}?start=earliest")
        got = [ev.next() for _ in records]
        ev.close()
        assert [(d["partition"], d["offset"]) for _, _, d in got] == sorted(placed)
        assert [k for _, k, d in got] == ["error" if d["key"] == "bad" else "record" for _, _, d in got]


KEY_AVRO = {"type": "record", "name": "ReadingKey", "namespace": "tg.read",
            "fields": [{"name": "site", "type": "string"}, {"name": "shard", "type": "int"}]}


class KeyedConfluentReadGateway(ConfluentReadGateway):
    """The Confluent read gateway whose core has a key schema (subject <topic>-key)."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.keyed = f"ReadCfKeyed{self.run_id}"

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"]["key_schema"] = {}
        srv["routes"] = [{"path_prefix": "/rk/", "topics": [self.keyed], "read": {"topics": [self.keyed]}}]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def kgw():
    yield from running(KeyedConfluentReadGateway, "topicgate-read-cfk-")


def test_keys_written_by_confluents_key_serializer_read_back_decoded_with_the_key_schema(kgw):
    topic = kgw.keyed
    base.register(f"{topic}-value", json.dumps(AVRO_V2))
    base.register(f"{topic}-key", json.dumps(KEY_AVRO))
    sr = SchemaRegistryClient({"url": base.registry_url()})
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    values = AvroSerializer(sr, json.dumps(AVRO_V2), conf=conf)
    keys = AvroSerializer(sr, json.dumps(KEY_AVRO), conf=conf)
    pairs = [({"site": f"s{i}", "shard": i}, {"sensor": f"x{i}", "value": i / 2, "tags": [], "note": None, "unit": "C"})
             for i in range(3)]
    records = [(0, keys(k, SerializationContext(topic, MessageField.KEY)), values(v, ctx(topic)), [])
               for k, v in pairs]
    placed = produce(kgw.bootstrap, topic, records)
    r = get(kgw, f"/rk/{topic}?start=earliest&limit=10")
    assert r.status == 200, r
    got = [(e["offset"], e["key"], e.get("value"), e.get("key_error")) for e in r.json()["records"]]
    assert got == [(o, k, v, None) for (_, o), (k, v) in zip(placed, pairs)]


def topic_kind(cgw, topic):
    return {cgw.avro: "avro", cgw.json: "json", cgw.proto: "proto"}[topic]
