"""Confluent REST Proxy v3 values that name their schema (issue #23 item 4): `type` AVRO,
JSONSCHEMA or PROTOBUF with `schema_id`, `schema_version`, `subject` or `subject_name_strategy`,
on a v3 route whose core uses the Confluent-compatible registry (the Apicurio harness at
SCHEMA_REGISTRY_URL). Each record is read back by Kafka's consumer: for Avro and Protobuf it is
byte for byte what confluent-kafka's serializer writes with the same schema; for JSON Schema
Confluent's JSONDeserializer reads it as the value sent. In the single, streaming and
records:batch forms. Errors (an unknown id, a type that is not the schema's, schema_id with
schema_version, a record strategy without an id, a raw schema) are Confluent's error codes and
write nothing. A value sent without `type` is answered with the format the core encoded it with
(the topic's schema: AVRO, JSONSCHEMA or PROTOBUF), in both mountings and per line of a
records:batch, a stream and concatenated requests.
"""

import base64
import copy
import json
import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import test_schema_registry as base
from conftest import Gateway, Stream, client_block, running, v3_endpoint

RUN = uuid.uuid4().hex[:8]
TOPIC = f"V3Sr{RUN}"  # its own subject `<TOPIC>-value` holds Avro v1 and v2
OTHER = f"v3sr.other-{RUN}"  # a subject named by `subject`: JSON Schema
PROTO = f"v3sr.proto-{RUN}"  # a Protobuf subject, used by id
JS_TOPIC = f"V3SrJs{RUN}"  # its `<topic>-value` is JSON Schema
PB_TOPIC = f"V3SrPb{RUN}"  # its `<topic>-value` is Protobuf
PREFIX = "/kafka/v3/"
CLIENT_PREFIX = "/cv3sr/"  # the same core, client mounting
CLUSTER = "local"

AVRO_V1 = {"type": "record", "name": "Reading", "namespace": "tg.v3", "fields": [
    {"name": "sensor", "type": "string"}, {"name": "value", "type": "double"}]}
AVRO_V2 = {**AVRO_V1, "fields": AVRO_V1["fields"] + [{"name": "unit", "type": "string", "default": "C"}]}
JSON_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Ping", "type": "object",
               "properties": {"seq": {"type": "integer"}, "who": {"type": "string"}},
               "required": ["seq"], "additionalProperties": False}


def proto_file(package="tg.v3", run=RUN):
    """A Protobuf file with one message `<package>.Beat` (as a descriptor: no protoc here), and its class."""
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name=f"beat{run}.proto", package=package, syntax="proto3")
    m = f.message_type.add(name="Beat")
    m.field.add(name="n", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    m.field.add(name="tag", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return f, message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Beat"))


class V3SchemaGateway(Gateway):
    """The e2e gateway whose server block is a v3 route at /kafka/v3/ on the Confluent registry."""

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        core = copy.deepcopy(srv["core"])
        core["registry"] = {"kind": "confluent", "url": base.registry_url(), "timeout_ms": 5000}
        core["value_format"] = "confluent"
        srv["core"] = core
        topics = [TOPIC, JS_TOPIC, PB_TOPIC]
        srv["routes"] = [{"path_prefix": PREFIX, "api": "confluent-v3", "topics": topics}]
        template, block = client_block(cfg, core, topics)
        block["api"] = "confluent-v3"
        cfg["endpoints"] = [v3_endpoint(template, CLIENT_PREFIX.rstrip("/"), block)]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def ids():
    out = {"v1": base.register(f"{TOPIC}-value", json.dumps(AVRO_V1)),
           "v2": base.register(f"{TOPIC}-value", json.dumps(AVRO_V2)),
           "json": base.register(OTHER, json.dumps(JSON_SCHEMA), "JSON"),
           "js_topic": base.register(f"{JS_TOPIC}-value", json.dumps(JSON_SCHEMA), "JSON")}
    f, _ = proto_file()
    out["proto"] = base.register(PROTO, base64.b64encode(f.SerializeToString()).decode(), "PROTOBUF")
    out["pb_topic"] = base.register(f"{PB_TOPIC}-value", base64.b64encode(f.SerializeToString()).decode(), "PROTOBUF")
    return out


@pytest.fixture(scope="module")
def vgw(ids):
    yield from running(V3SchemaGateway, "topicgate-e2e-v3sr-")


@pytest.fixture(scope="module")
def sr():
    return SchemaRegistryClient({"url": base.registry_url()})


def path(suffix=""):
    return f"{PREFIX}clusters/{CLUSTER}/topics/{TOPIC}/records{suffix}"


def post(gw, body, suffix=""):
    return gw.request("POST", path(suffix), body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def read(gw, answer):
    [rec] = gw.read_back(TOPIC, answer["partition_id"], answer["offset"], 1)
    return rec.value


CTX = SerializationContext(TOPIC, MessageField.VALUE)
READING = {"sensor": "s1", "value": 21.5}


def avro_reference(sr, schema_id, value):
    """confluent-kafka's Avro serializer's bytes for value with the schema of schema_id."""
    schema = sr.get_schema(schema_id)
    return AvroSerializer(sr, schema.schema_str, conf={"auto.register.schemas": False, "use.schema.id": schema_id})(value, CTX)


def proto_reference(sr, value):
    _, Beat = proto_file()
    msg = Beat(**value)
    ser = ProtobufSerializer(Beat, sr, {"auto.register.schemas": False, "use.latest.version": True,
                                        "subject.name.strategy": lambda ctx, name: PROTO})
    return ser(msg, CTX)


@pytest.mark.parametrize("select", [
    pytest.param({"type": "AVRO", "schema_id": "v1"}, id="schema_id"),
    pytest.param({"schema_version": 1}, id="schema_version"),
    pytest.param({"type": "AVRO", "subject_name_strategy": "TOPIC_NAME", "schema_version": 1}, id="topic_name_strategy"),
    pytest.param({"subject": f"{TOPIC}-value", "schema_version": 1}, id="subject_and_version"),
])
def test_avro_selected_by_id_version_or_subject_is_confluents_bytes(vgw, sr, ids, select):
    select = {k: (ids[v] if k == "schema_id" else v) for k, v in select.items()}
    r = post(vgw, {"value": {**select, "data": READING}})
    assert r.status == 200, r
    a = r.json()
    # Version 1 (not the latest, v2): framed with v1's id, encoded without v2's `unit`.
    data = read(vgw, a)
    assert data == avro_reference(sr, ids["v1"], READING)
    assert data[:5] == b"\x00" + ids["v1"].to_bytes(4, "big")
    assert a["value"]["size"] == len(data)


def test_latest_by_strategy_and_the_topics_schema_without_fields(vgw, sr, ids):
    # TOPIC_NAME alone: the subject's latest (v2), so `unit` takes its default.
    r = post(vgw, {"value": {"subject_name_strategy": "TOPIC_NAME", "type": "avro", "data": READING}})
    assert r.status == 200, r
    assert read(vgw, r.json()) == avro_reference(sr, ids["v2"], READING)
    # No schema fields: the topic's configured schema (latest), as before.
    r = post(vgw, {"value": {"data": READING}})
    assert r.status == 200, r
    assert read(vgw, r.json()) == avro_reference(sr, ids["v2"], READING)


def test_json_schema_by_subject_is_read_by_confluents_deserializer(vgw, sr, ids):
    value = {"seq": 3, "who": "me"}
    r = post(vgw, {"value": {"type": "JSONSCHEMA", "subject": OTHER, "data": value}})
    assert r.status == 200, r
    assert r.json()["value"]["type"] == "JSONSCHEMA"
    data = read(vgw, r.json())
    assert data[:5] == b"\x00" + ids["json"].to_bytes(4, "big")
    assert JSONDeserializer(None, schema_registry_client=sr)(data, CTX) == value


def test_protobuf_by_id_is_confluents_bytes(vgw, sr, ids):
    r = post(vgw, {"value": {"type": "PROTOBUF", "schema_id": ids["proto"], "data": {"n": "9", "tag": "x"}}})
    assert r.status == 200, r
    assert read(vgw, r.json()) == proto_reference(sr, {"n": 9, "tag": "x"})


def test_records_batch_entries_each_use_their_schema(vgw, sr, ids):
    entries = [
        {"id": "a", "value": {"type": "AVRO", "schema_id": ids["v1"], "data": READING}},
        {"id": "p", "value": {"type": "PROTOBUF", "schema_id": ids["proto"], "data": {"n": "1"}}},
        {"id": "bad", "value": {"type": "PROTOBUF", "schema_id": ids["v1"], "data": READING}},
    ]
    r = post(vgw, {"entries": entries}, ":batch")
    assert r.status == 207, r
    doc = r.json()
    ok = {s["id"]: s for s in doc["successes"]}
    assert set(ok) == {"a", "p"}, doc
    assert read(vgw, ok["a"]) == avro_reference(sr, ids["v1"], READING)
    assert read(vgw, ok["p"]) == proto_reference(sr, {"n": 1})
    [f] = doc["failures"]
    assert f["id"] == "bad" and f["error_code"] == 42207 and "value.type PROTOBUF" in f["message"], f


def test_streaming_mode_records_use_their_schemas(vgw, sr, ids):
    s = Stream(vgw, path(), key=None, headers=None, content_type="application/json", accept=None)
    s.send(json.dumps({"value": {"schema_id": ids["v1"], "data": READING}}).encode())
    [first] = s.lines(1)
    s.send(json.dumps({"value": {"type": "JSONSCHEMA", "subject": OTHER, "data": {"seq": 1}}}).encode())
    s.send(json.dumps({"value": {"schema_id": 999999, "data": READING}}).encode())
    s.end()
    second, third = s.rest()
    assert first["error_code"] == 200 and read(vgw, first) == avro_reference(sr, ids["v1"], READING)
    assert second["error_code"] == 200, second
    assert JSONDeserializer(None, schema_registry_client=sr)(read(vgw, second), CTX) == {"seq": 1}
    assert third["error_code"] == 42207 and "schema id 999999" in third["message"], third


@pytest.mark.parametrize("value,status,code,says", [
    ({"schema_id": 999999}, 422, 42207, "schema id 999999"),
    ({"subject": f"nope-{RUN}"}, 422, 42207, f"nope-{RUN}"),
    ({"schema_version": 99}, 422, 42207, "no version 99"),
    ({"type": "JSONSCHEMA", "schema_id": "v1"}, 422, 42207, "value.type JSONSCHEMA does not match the schema, which is AVRO"),
    ({"type": "PROTOBUF"}, 422, 42207, "value.type PROTOBUF"),
    ({"schema_id": "v1", "schema_version": 1}, 400, 400, "Only one of 'schema_id', 'schema_version'"),
    ({"subject": "x", "subject_name_strategy": "TOPIC_NAME"}, 400, 400, "Only one of 'subject_name_strategy' or 'subject'"),
    ({"subject_name_strategy": "RECORD_NAME"}, 400, 400, "RECORD_NAME without schema_id"),
    ({"type": "AVRO", "schema": json.dumps(AVRO_V1)}, 400, 400, "value.schema: raw schemas are not supported"),
    ({"type": "BINARY"}, 422, 42207, "value.type"),
], ids=["unknown_id", "unknown_subject", "unknown_version", "type_mismatch", "type_mismatch_topic_schema",
        "id_and_version", "subject_and_strategy", "record_strategy_without_id", "raw_schema", "schemaless_type"])
def test_errors_are_confluents_codes_and_write_nothing(vgw, ids, value, status, code, says):
    value = {k: (ids[v] if k == "schema_id" and isinstance(v, str) else v) for k, v in value.items()}
    before = vgw.totals(TOPIC)
    r = post(vgw, {"value": {**value, "data": READING}})
    assert r.status == status, r
    doc = r.json()
    assert doc["error_code"] == code and says in doc["message"], doc
    assert vgw.totals(TOPIC) == before


# Each topic's configured schema, a value for it, and the format v3's answer must name.
BY_TOPIC = [(TOPIC, READING, "AVRO"), (JS_TOPIC, {"seq": 4}, "JSONSCHEMA"), (PB_TOPIC, {"n": "5"}, "PROTOBUF")]


def topic_path(prefix, topic, suffix=""):
    return f"{prefix}clusters/{CLUSTER}/topics/{topic}/records{suffix}"


def post_to(gw, prefix, topic, body, suffix=""):
    return gw.request("POST", topic_path(prefix, topic, suffix), body=body, headers={"Content-Type": "application/json"})


def assert_answer_names(gw, topic, answer, fmt):
    """answer is a success naming fmt as its value's type, its size that of the record read back."""
    assert answer.get("error_code") in (None, 200) and answer["value"]["type"] == fmt, answer
    [rec] = gw.read_back(topic, answer["partition_id"], answer["offset"], 1)
    assert answer["value"]["size"] == len(rec.value), (answer, len(rec.value))
    assert "key" not in answer, answer


@pytest.mark.parametrize("prefix", [PREFIX, CLIENT_PREFIX], ids=["server", "client"])
@pytest.mark.parametrize("topic,value,fmt", BY_TOPIC, ids=["avro", "jsonschema", "protobuf"])
def test_untyped_value_is_answered_with_the_format_it_was_encoded_with(vgw, ids, prefix, topic, value, fmt):
    r = post_to(vgw, prefix, topic, json.dumps({"value": {"data": value}}).encode())
    assert r.status == 200, r
    assert_answer_names(vgw, topic, r.json(), fmt)
    # Concatenated requests (read whole): one report per record, each naming the format.
    body = b"".join(json.dumps({"value": {"data": value}}).encode() for _ in range(2))
    r = post_to(vgw, prefix, topic, body)
    assert r.status == 200, r
    reports = [json.loads(line) for line in r.body.split(b"\r\n") if line]
    assert len(reports) == 2, r
    for answer in reports:
        assert_answer_names(vgw, topic, answer, fmt)


@pytest.mark.parametrize("topic,value,fmt", BY_TOPIC, ids=["avro", "jsonschema", "protobuf"])
def test_records_batch_and_stream_lines_name_the_format_they_were_encoded_with(vgw, ids, topic, value, fmt):
    entries = [{"id": str(i), "value": {"data": value}} for i in range(2)]
    r = post_to(vgw, PREFIX, topic, json.dumps({"entries": entries}).encode(), ":batch")
    assert r.status == 207, r
    doc = r.json()
    assert not doc["failures"] and len(doc["successes"]) == 2, doc
    for answer in doc["successes"]:
        assert_answer_names(vgw, topic, answer, fmt)
    s = Stream(vgw, topic_path(PREFIX, topic), key=None, headers=None, content_type="application/json", accept=None)
    for _ in range(2):
        s.send(json.dumps({"value": {"data": value}}).encode())
    s.end()
    reports = s.rest()
    assert len(reports) == 2, reports
    for answer in reports:
        assert answer["error_code"] == 200, answer
        assert_answer_names(vgw, topic, answer, fmt)
