"""Record keys encoded with a schema (`key_schema` in the core block, issue #23 item 3), through the
gateway and read back by Kafka's consumer:

- a Confluent-compatible registry (the Apicurio harness at SCHEMA_REGISTRY_URL), `value_format
  "confluent"`: the key's subject is `<topic>-key`; a key sent as JSON in `message-key` (single
  record, both mountings), in an envelope line's "key" (NDJSON batch, atomic batch) or in
  `message-key` for every line of a stream is written byte for byte as Confluent's AvroSerializer
  writes it for the key (`MessageField.KEY`), and its AvroDeserializer reads it back;
- a file registry (`raw`): a JSON Schema key (`<topic>-key.json`) written as the compact JSON sent,
  a Protobuf key (`<topic>-key.proto`) that decodes to the message sent;
- a key that is not JSON, does not match the key schema or is missing is a 400 naming the header
  (or the line) and the field, and nothing is written;
- Confluent v3 routes (single, concatenated, records:batch plain and atomic, streaming; server and
  client mountings): `key.data` (with or without `key.type` AVRO) is the key's JSON, written as
  Confluent's AvroSerializer writes the key; the answer's key is `{"type": "AVRO", "size": <bytes
  as produced>}`; a bad key is 42207 naming the key's field, and nothing is written.
"""

import copy
import json
import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from conftest import Gateway, Stream, client, client_block, running, v3_endpoint
from test_schema_registry import framing, register, registry_url

RUN = uuid.uuid4().hex[:8]
AVRO_TOPIC = f"KeyAvro{RUN}"
JSON_KEY_TOPIC, PROTO_KEY_TOPIC = f"KeyJs{RUN}", f"KeyPb{RUN}"

ORDER = {"type": "record", "name": "Order", "namespace": "tg.key",
         "fields": [{"name": "item", "type": "string"}, {"name": "qty", "type": "int"}]}
ORDER_KEY = {"type": "record", "name": "OrderKey", "namespace": "tg.key",
             "fields": [{"name": "id", "type": "long"}, {"name": "region", "type": "string"}]}
VALUE = {"item": "widget", "qty": 2}

VALUE_PROTO = 'syntax = "proto3";\npackage tg.key;\nmessage Order { string item = 1; int32 qty = 2; }\n'
KEY_PROTO = 'syntax = "proto3";\npackage tg.key;\nmessage OrderKey { int64 id = 1; string region = 2; }\n'
KEY_JSON_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "region": {"type": "string"}},
                   "required": ["id"], "additionalProperties": False}


class KeySchemaGateway(Gateway):
    """Server block on the Confluent registry with `key_schema` on (routes `/sk/` plain lines and
    streams, `/ske/` envelopes, `/ska/` atomic envelopes); client endpoints `/v2/sk/{topic}` (the
    same core) and `/v2/skf/{topic}` (a file registry, keys `<topic>-key.json` / `.proto`)."""

    def write_schemas(self):
        super().write_schemas()
        for topic in (JSON_KEY_TOPIC, PROTO_KEY_TOPIC):
            (self.schema_dir / f"{topic}.proto").write_text(VALUE_PROTO)
        (self.schema_dir / f"{JSON_KEY_TOPIC}-key.json").write_text(json.dumps(KEY_JSON_SCHEMA))
        (self.schema_dir / f"{PROTO_KEY_TOPIC}-key.proto").write_text(KEY_PROTO)

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        core = copy.deepcopy(srv["core"])
        file_core = copy.deepcopy(core)
        file_core["registry"] = {"kind": "file", "directory": str(self.schema_dir)}
        file_core["key_schema"] = {"name_template": "{topic}-key"}
        core["registry"] = {"kind": "confluent", "url": registry_url(), "timeout_ms": 5000}
        core["value_format"] = "confluent"
        core["key_schema"] = {}
        srv["core"] = core
        srv["routes"] = [
            {"path_prefix": "/sk/", "topics": [AVRO_TOPIC]},
            {"path_prefix": "/ske/", "topics": [AVRO_TOPIC], "batch": {"envelope": True}},
            {"path_prefix": "/ska/", "topics": [AVRO_TOPIC], "batch": {"envelope": True, "atomic": True}},
            {"path_prefix": "/skv3/", "api": "confluent-v3", "topics": [AVRO_TOPIC]},
            {"path_prefix": "/skv3a/", "api": "confluent-v3", "topics": [AVRO_TOPIC], "batch": {"atomic": True}},
        ]
        template, v3_block = client_block(cfg, core, [AVRO_TOPIC])
        v3_block["api"] = "confluent-v3"

        cfg["endpoints"] = [
            client(cfg, "/v2/sk/{topic}", core, [AVRO_TOPIC]),
            client(cfg, "/v2/skf/{topic}", file_core, [JSON_KEY_TOPIC, PROTO_KEY_TOPIC]),
            v3_endpoint(template, "/v2/skv3", v3_block),
        ]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def ids():
    return {"value": register(f"{AVRO_TOPIC}-value", json.dumps(ORDER)),
            "key": register(f"{AVRO_TOPIC}-key", json.dumps(ORDER_KEY))}


@pytest.fixture(scope="module")
def kgw(ids):
    yield from running(KeySchemaGateway, "topicgate-e2e-keys-")


@pytest.fixture(scope="module")
def serdes():
    sr = SchemaRegistryClient({"url": registry_url()})
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    return AvroSerializer(sr, None, conf=conf), AvroDeserializer(sr)


KEY_CTX = SerializationContext(AVRO_TOPIC, MessageField.KEY)
VALUE_CTX = SerializationContext(AVRO_TOPIC, MessageField.VALUE)


def post(gw, path, body, key=None, content_type="application/json"):
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["message-key"] = key
    return gw.request("POST", path, body=body, headers=headers)


def read_one(gw, r, topic):
    assert r.status == 200, r
    a = r.json()
    [rec] = gw.read_back(topic, a["partition"], a["offset"], 1)
    return rec


def assert_confluent_key(rec, key, ids, serdes):
    serialize, deserialize = serdes
    assert framing(rec.key)[:2] == (0, ids["key"])
    assert rec.key == serialize(key, KEY_CTX)
    assert deserialize(rec.key, KEY_CTX) == key
    assert framing(rec.value)[:2] == (0, ids["value"])


@pytest.mark.parametrize("path", ["/sk/", "/v2/sk/"], ids=["server", "client"])
def test_single_record_avro_key_is_what_confluents_serializer_writes(kgw, ids, serdes, path):
    key = {"id": 7, "region": "eu"}
    rec = read_one(kgw, post(kgw, path + AVRO_TOPIC, json.dumps(VALUE).encode(), key=' {"id": 7, "region": "eu"} '),
                   AVRO_TOPIC)
    assert_confluent_key(rec, key, ids, serdes)
    assert rec.value == serdes[0](VALUE, VALUE_CTX)


@pytest.mark.parametrize("path", ["/ske/", "/ska/"], ids=["batch", "atomic"])
def test_batch_envelope_keys_and_the_request_key(kgw, ids, serdes, path):
    own = [{"id": 1, "region": "eu"}, {"id": 2, "region": "us"}]
    lines = [{"value": VALUE, "key": own[0]}, {"value": VALUE}, {"value": VALUE, "key": own[1]}]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    r = post(kgw, path + AVRO_TOPIC, body, key='{"id": 9, "region": "ap"}', content_type="application/x-ndjson")
    assert r.status == 200, r
    got = []
    for result in r.json()["records"]:
        [rec] = kgw.read_back(AVRO_TOPIC, result["partition"], result["offset"], 1)
        got.append(rec)
    for rec, key in zip(got, [own[0], {"id": 9, "region": "ap"}, own[1]]):
        assert_confluent_key(rec, key, ids, serdes)


def test_stream_lines_take_the_request_key(kgw, ids, serdes):
    s = Stream(kgw, f"/sk/{AVRO_TOPIC}", key='{"id": 11, "region": "eu"}', headers=None)
    s.send(b"\n".join(json.dumps(dict(VALUE, qty=q)).encode() for q in (1, 2)) + b"\n")
    s.end()
    *records, end = s.rest()
    assert end["statusCode"] == "200" and end["written"] == 2, end
    for result in records:
        [rec] = kgw.read_back(AVRO_TOPIC, result["partition"], result["offset"], 1)
        assert_confluent_key(rec, {"id": 11, "region": "eu"}, ids, serdes)


def test_bad_or_missing_keys_are_400_naming_the_header_or_line_and_nothing_is_written(kgw):
    before = kgw.totals(AVRO_TOPIC)
    value = json.dumps(VALUE).encode()
    for path in ("/sk/", "/v2/sk/"):
        for key, said in [("order-17", "message-key: expected value"),
                          ('{"id": "x", "region": "eu"}', "message-key: field `id`"),
                          ('{"id": 7}', "message-key: field `region`"),
                          (None, "message-key: missing")]:
            r = post(kgw, path + AVRO_TOPIC, value, key=key)
            assert r.status == 400 and r.json()["message"].startswith(said), (path, key, r)
    # A batch: the line with a bad key of its own is named with its field; nothing is written.
    lines = [{"value": VALUE, "key": {"id": 1, "region": "eu"}}, {"value": VALUE, "key": {"id": 2, "region": 5}}]
    for path in ("/ske/", "/ska/"):
        r = post(kgw, path + AVRO_TOPIC, "\n".join(map(json.dumps, lines)).encode(), content_type="application/x-ndjson")
        assert r.status == 400, r
        [err] = r.json()["errors"]
        assert err["line"] == 2 and err["message"].startswith("line 2: key: field `region`"), err
    # Plain lines take the request's key: its fault is named as the header's, per line.
    r = post(kgw, f"/sk/{AVRO_TOPIC}", value + b"\n" + value, key="seven", content_type="application/x-ndjson")
    assert r.status == 400 and [e["message"][:25] for e in r.json()["errors"]] == ["line 1: message-key: expe",
                                                                                    "line 2: message-key: expe"], r
    # A stream stops at its first line: the key fails it.
    s = Stream(kgw, f"/sk/{AVRO_TOPIC}", key='{"id": true, "region": "eu"}', headers=None)
    s.send(value + b"\n")
    s.end()
    first, end = s.rest()
    assert first["statusCode"] == "400" and "message-key: field `id`" in first["message"], first
    assert end["statusCode"] == "400" and end["written"] == 0, end
    assert kgw.totals(AVRO_TOPIC) == before


def test_file_registry_json_schema_key_is_the_compact_json_sent(kgw):
    r = post(kgw, f"/v2/skf/{JSON_KEY_TOPIC}", b'{"item": "w", "qty": 1}', key='{ "id" : 7, "region": "eu" }')
    rec = read_one(kgw, r, JSON_KEY_TOPIC)
    assert rec.key == b'{"id":7,"region":"eu"}'
    assert rec.value == b"\x0a\x01w\x10\x01"
    before = kgw.totals(JSON_KEY_TOPIC)
    r = post(kgw, f"/v2/skf/{JSON_KEY_TOPIC}", b'{"item": "w"}', key='{"id": 7, "colour": "red"}')
    assert r.status == 400 and r.json()["message"].startswith("message-key: does not match the JSON Schema"), r
    assert kgw.totals(JSON_KEY_TOPIC) == before


def test_file_registry_protobuf_key_decodes_to_what_was_sent(kgw):
    key = {"id": "12", "region": "eu"}  # int64 in the proto3 JSON mapping: a string
    rec = read_one(kgw, post(kgw, f"/v2/skf/{PROTO_KEY_TOPIC}", b'{"item": "w", "qty": 1}', key=json.dumps(key)),
                   PROTO_KEY_TOPIC)
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="key.proto", package="tg.key", syntax="proto3")
    m = fdp.message_type.add(name="OrderKey")
    m.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    m.field.add(name="region", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    OrderKey = message_factory.GetMessageClass(pool.FindMessageTypeByName("tg.key.OrderKey"))
    decoded = OrderKey.FromString(rec.key)
    assert json_format.MessageToDict(decoded) == key
    r = post(kgw, f"/v2/skf/{PROTO_KEY_TOPIC}", b'{"item": "w"}', key='{"id": 1, "nope": 2}')
    assert r.status == 400 and r.json()["message"].startswith("message-key: unrecognized field name 'nope'"), r


def v3_path(prefix, suffix=""):
    return f"{prefix}clusters/c/topics/{AVRO_TOPIC}/records{suffix}"


def post_v3(gw, prefix, doc, suffix=""):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return gw.request("POST", v3_path(prefix, suffix), body=body, headers={"Content-Type": "application/json"})


def assert_v3_key(gw, answer, key, ids, serdes):
    """answer names the key as AVRO with its size as produced; the record's key is Confluent's bytes."""
    [rec] = gw.read_back(AVRO_TOPIC, answer["partition_id"], answer["offset"], 1)
    assert_confluent_key(rec, key, ids, serdes)
    assert answer["key"] == {"type": "AVRO", "size": len(rec.key)}, answer
    assert answer["value"] == {"type": "AVRO", "size": len(rec.value)}, answer


@pytest.mark.parametrize("prefix", ["/skv3/", "/v2/skv3/"], ids=["server", "client"])
@pytest.mark.parametrize("typed", [False, True], ids=["untyped", "type_avro"])
def test_v3_key_is_what_confluents_serializer_writes(kgw, ids, serdes, prefix, typed):
    key = {"id": 21, "region": "eu"}
    k = {"type": "AVRO", "data": key} if typed else {"data": key}
    r = post_v3(kgw, prefix, {"key": k, "value": {"data": VALUE}})
    assert r.status == 200, r
    assert_v3_key(kgw, r.json(), key, ids, serdes)
    # Concatenated requests: each report names its own key.
    keys = [{"id": 22, "region": "eu"}, {"id": 23, "region": "us"}]
    body = b"".join(json.dumps({"key": {**k, "data": kk}, "value": {"data": VALUE}}).encode() for kk in keys)
    r = post_v3(kgw, prefix, body)
    assert r.status == 200, r
    reports = [json.loads(line) for line in r.body.split(b"\r\n") if line]
    assert len(reports) == 2, r
    for answer, kk in zip(reports, keys):
        assert_v3_key(kgw, answer, kk, ids, serdes)


@pytest.mark.parametrize("prefix", ["/skv3/", "/skv3a/"], ids=["batch", "atomic"])
def test_v3_records_batch_keys_and_a_bad_key_naming_its_field(kgw, ids, serdes, prefix):
    keys = {"a": {"id": 31, "region": "eu"}, "b": {"id": 32, "region": "us"}}
    entries = [{"id": i, "key": {"type": "AVRO", "data": k}, "value": {"data": VALUE}} for i, k in keys.items()]
    entries.append({"id": "bad", "key": {"data": {"id": 33, "region": 5}}, "value": {"data": VALUE}})
    r = post_v3(kgw, prefix, {"entries": entries}, ":batch")
    assert r.status == 207, r
    doc = r.json()
    ok = {a["id"]: a for a in doc["successes"]}
    assert set(ok) == set(keys), doc
    for i, k in keys.items():
        assert_v3_key(kgw, ok[i], k, ids, serdes)
    [f] = doc["failures"]
    assert f["id"] == "bad" and f["error_code"] == 42207 and "key: field `region`" in f["message"], f


def test_v3_stream_lines_name_their_keys(kgw, ids, serdes):
    s = Stream(kgw, v3_path("/skv3/"), key=None, headers=None, content_type="application/json", accept=None)
    keys = [{"id": 41, "region": "eu"}, {"id": 42, "region": "ap"}]
    for k in keys:
        s.send(json.dumps({"key": {"data": k}, "value": {"data": VALUE}}).encode())
    s.end()
    reports = s.rest()
    assert [a["error_code"] for a in reports] == [200, 200], reports
    for answer, k in zip(reports, keys):
        assert_v3_key(kgw, answer, k, ids, serdes)


def test_v3_bad_or_missing_keys_are_42207_naming_the_key_and_nothing_is_written(kgw):
    before = kgw.totals(AVRO_TOPIC)
    for prefix in ("/skv3/", "/v2/skv3/"):
        for key, said in [({"data": {"id": "x", "region": "eu"}}, "key: field `id`"),
                          ({"type": "AVRO", "data": {"id": 7}}, "key: field `region`"),
                          ({"type": "STRING", "data": "order-17"}, "key: expected value"),
                          (None, "key: missing")]:
            doc = {"value": {"data": VALUE}} if key is None else {"key": key, "value": {"data": VALUE}}
            r = post_v3(kgw, prefix, doc)
            assert r.status == 422, (prefix, key, r)
            a = r.json()
            assert a["error_code"] == 42207 and said in a["message"], (prefix, key, a)
    assert kgw.totals(AVRO_TOPIC) == before
