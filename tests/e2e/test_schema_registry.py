"""A Confluent-compatible Schema Registry (the Apicurio harness at SCHEMA_REGISTRY_URL) behind the
gateway: `registry.kind "confluent"`, `value_format "confluent"`. For Avro, JSON Schema and Protobuf,
a record published through the gateway (server route `/sr/`, client endpoints `/v2/sr…/{topic}`) is
read back by Kafka's consumer and

- for Avro and Protobuf is byte for byte what Confluent's own serializer (confluent-kafka) writes
  for the same value against the same registry;
- for JSON Schema carries the same framing and a body Confluent's deserializer reads as the value
  (byte identity is not expected: Confluent's Python serializer writes `json.dumps` text, with
  blanks, where topicgate writes the body compact, as Confluent's Java serializer does);
- is decoded by Confluent's deserializer to the value sent.

Also: references (an Avro named type from another subject, a Protobuf import), a message other than
the file's first (message-index path [1]), a pinned version, a missing subject (404), an off-schema
body (400 naming the field, nothing written), and a registry that demands credentials over TLS
with a private CA (the harness's auth proxy in front of the real registry, `registry.ca_file`):
basic auth and a bearer token get 200, no credentials a 503 naming them.
"""

import base64
import copy
import json
import os
import struct
import sys
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from conftest import ROOT, Gateway, client, running

sys.path.insert(0, str(ROOT / "tests" / "registry"))
from authproxy import AuthProxy  # noqa: E402  (the harness's proxy that demands credentials)

CT = "application/vnd.schemaregistry.v1+json"
RUN = uuid.uuid4().hex[:8]
AVRO_TOPIC, JSON_TOPIC, PROTO_TOPIC = f"SrAvro{RUN}", f"SrJson{RUN}", f"SrProto{RUN}"
PINNED_TOPIC, MISSING_TOPIC = f"SrPinned{RUN}", f"SrMissing{RUN}"

ADDRESS = {"type": "record", "name": "Address", "namespace": "tg.sr",
           "fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "string"], "default": None}]}
ORDER = {"type": "record", "name": "Order", "namespace": "tg.sr", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "price", "type": "double"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    {"name": "ship_to", "type": "tg.sr.Address"},
    {"name": "note", "type": ["null", "string"], "default": None},
]}
JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Event", "type": "object",
    "properties": {"name": {"type": "string"}, "count": {"type": "integer"},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "count"], "additionalProperties": False,
}


def registry_url():
    url = os.environ.get("SCHEMA_REGISTRY_URL")
    assert url, "SCHEMA_REGISTRY_URL is not set: run `make registry-up` and source .run/registry.env (make test-e2e does)"
    return url.rstrip("/")


def register(subject, schema, schema_type=None, references=None):
    """Registers a schema version through the registry's own REST API; returns its id."""
    body = {"schema": schema, **({"schemaType": schema_type} if schema_type else {}),
            **({"references": references} if references else {})}
    req = urllib.request.Request(f"{registry_url()}/subjects/{subject}/versions", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": CT})
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())
    assert isinstance(out.get("id"), int), out
    return out["id"]


def protobuf_files():
    """dep.proto (`Money`) and order.proto (`Note`, then `Order`, which imports `Money`) as
    descriptors, and the message classes built from them (no protoc here)."""
    F = descriptor_pb2.FieldDescriptorProto
    dep = descriptor_pb2.FileDescriptorProto(name=f"tg/sr{RUN}/money.proto", package="tg.sr", syntax="proto3")
    m = dep.message_type.add(name="Money")
    m.field.add(name="units", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    m.field.add(name="currency", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    top = descriptor_pb2.FileDescriptorProto(name="order.proto", package="tg.sr", syntax="proto3", dependency=[dep.name])
    n = top.message_type.add(name="Note")
    n.field.add(name="text", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    o = top.message_type.add(name="Order")
    o.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    o.field.add(name="price", number=2, type=F.TYPE_MESSAGE, type_name=".tg.sr.Money", label=F.LABEL_OPTIONAL)
    o.field.add(name="tags", number=3, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(dep)
    pool.Add(top)
    return dep, top, message_factory.GetMessageClass(pool.FindMessageTypeByName("tg.sr.Order"))


AUTH = {}  # the auth proxy's URL, set by the `proxy` fixture before the gateway writes its config


def ca_file():
    ca = os.environ.get("SCHEMA_REGISTRY_CA")
    assert ca, "SCHEMA_REGISTRY_CA is not set: source .run/registry.env (make test-e2e does)"
    return ca


class SchemaRegistryGateway(Gateway):
    """The e2e gateway with its server block on the Confluent registry (route `/sr/`) and client
    endpoints of their own cores (a server block has one core: the Protobuf message and the pinned
    version need others)."""

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        core = copy.deepcopy(srv["core"])
        core["registry"] = {"kind": "confluent", "url": registry_url(), "timeout_ms": 5000}
        core["value_format"] = "confluent"
        srv["core"] = core
        srv["routes"] = [{"path_prefix": "/sr/", "topics": [AVRO_TOPIC, JSON_TOPIC, MISSING_TOPIC]}]
        proto_core = copy.deepcopy(core)
        proto_core["schema"] = {**proto_core.get("schema", {}), "message_type": "tg.sr.Order"}
        pinned_core = copy.deepcopy(core)
        pinned_core["schema"] = {**pinned_core.get("schema", {}), "version": 1}

        def behind_proxy(**credentials):
            c = copy.deepcopy(core)
            c["registry"] = {**c["registry"], "url": AUTH["url"], "ca_file": ca_file(), **credentials}
            return c

        cfg["endpoints"] = [
            client(cfg, "/v2/srbasic/{topic}", behind_proxy(basic_auth={"username": "alice", "password": "s3cret"}), [AVRO_TOPIC]),
            client(cfg, "/v2/srbearer/{topic}", behind_proxy(bearer_token="tok-123"), [AVRO_TOPIC]),
            client(cfg, "/v2/srnone/{topic}", behind_proxy(), [AVRO_TOPIC]),
            client(cfg, "/v2/sr/{topic}", core, [AVRO_TOPIC, JSON_TOPIC]),
            client(cfg, "/v2/srproto/{topic}", proto_core, [PROTO_TOPIC]),
            client(cfg, "/v2/srpinned/{topic}", pinned_core, [PINNED_TOPIC]),
        ]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def ids():
    """Registers every subject of this module before the gateway asks for any."""
    out = {}
    out["address"] = register(f"tg.sr.Address-{RUN}", json.dumps(ADDRESS))
    refs = [{"name": "tg.sr.Address", "subject": f"tg.sr.Address-{RUN}", "version": 1}]
    out["avro"] = register(f"{AVRO_TOPIC}-value", json.dumps(ORDER), references=refs)
    out["json"] = register(f"{JSON_TOPIC}-value", json.dumps(JSON_SCHEMA), "JSON")
    dep, top, _ = protobuf_files()
    b64 = lambda fdp: base64.b64encode(fdp.SerializeToString()).decode()  # noqa: E731
    # The descriptor form Confluent's clients register (and Apicurio serves back as stored).
    # The import path (the reference's name) has slashes; the subject holding it need not.
    register(f"tg.sr.money-{RUN}", b64(dep), "PROTOBUF")
    out["proto"] = register(f"{PROTO_TOPIC}-value", b64(top), "PROTOBUF",
                            [{"name": dep.name, "subject": f"tg.sr.money-{RUN}", "version": 1}])
    out["pinned1"] = register(f"{PINNED_TOPIC}-value", json.dumps({"type": "record", "name": "P", "fields": [
        {"name": "a", "type": "string"}]}))
    out["pinned2"] = register(f"{PINNED_TOPIC}-value", json.dumps({"type": "record", "name": "P", "fields": [
        {"name": "a", "type": "string"}, {"name": "b", "type": "long", "default": 7}]}))
    return out


@pytest.fixture(scope="module")
def proxy():
    """The harness's TLS proxy (the test CA's certificate) in front of the real registry, accepting
    alice:s3cret (basic) and the token tok-123 (bearer)."""
    pki = os.path.dirname(ca_file())
    upstream = registry_url().rsplit("/apis/", 1)[0]
    with AuthProxy(upstream, basic=("alice", "s3cret"), bearer="tok-123",
                   tls=(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))) as p:
        AUTH["url"] = p.url
        yield p


@pytest.fixture(scope="module")
def sgw(ids, proxy):
    yield from running(SchemaRegistryGateway, "topicgate-e2e-sr-")


@pytest.fixture(scope="module")
def sr():
    return SchemaRegistryClient({"url": registry_url()})


def post(gw, path, value):
    return gw.request("POST", path, body=json.dumps(value).encode(), headers={"Content-Type": "application/json"})


def written(gw, r, topic):
    """The record value a 200 answer points at, read back by Kafka's consumer."""
    assert r.status == 200, r
    a = r.json()
    [rec] = gw.read_back(topic, a["partition"], a["offset"], 1)
    return rec.value


def framing(data):
    return data[0], struct.unpack(">I", data[1:5])[0], data[5:]


ORDER_VALUE = {"id": 42, "item": "widget", "tags": ["a", "b"], "price": 9.5, "status": "PAID",
               "ship_to": {"city": "Lyon", "zip": "69001"}, "note": None}


@pytest.mark.parametrize("path", ["/sr/", "/v2/sr/"], ids=["server", "client"])
def test_avro_with_a_reference_is_what_confluents_serializer_writes(sgw, sr, ids, path):
    # The body in plain JSON: the ["null", string] union takes a bare value.
    data = written(sgw, post(sgw, path + AVRO_TOPIC, ORDER_VALUE), AVRO_TOPIC)
    assert framing(data)[:2] == (0, ids["avro"])
    ctx = SerializationContext(AVRO_TOPIC, MessageField.VALUE)
    reference = AvroSerializer(sr, None, conf={"auto.register.schemas": False, "use.latest.version": True})
    assert data == reference(ORDER_VALUE, ctx)
    assert AvroDeserializer(sr)(data, ctx) == ORDER_VALUE


@pytest.mark.parametrize("path", ["/sr/", "/v2/sr/"], ids=["server", "client"])
def test_json_schema_is_read_by_confluents_deserializer(sgw, sr, ids, path):
    value = {"name": "hello", "count": 3, "tags": ["x"]}
    data = written(sgw, post(sgw, path + JSON_TOPIC, value), JSON_TOPIC)
    magic, schema_id, body = framing(data)
    assert (magic, schema_id) == (0, ids["json"])
    assert body == b'{"name":"hello","count":3,"tags":["x"]}'
    ctx = SerializationContext(JSON_TOPIC, MessageField.VALUE)
    assert JSONDeserializer(None, schema_registry_client=sr)(data, ctx) == value


def test_protobuf_second_message_with_an_import_is_what_confluents_serializer_writes(sgw, sr, ids):
    path = "/v2/srproto/"
    _, _, Order = protobuf_files()
    body = {"id": "7", "price": {"units": "12", "currency": "EUR"}, "tags": ["p"]}
    data = written(sgw, post(sgw, path + PROTO_TOPIC, body), PROTO_TOPIC)
    msg = Order(id=7, tags=["p"])
    msg.price.units, msg.price.currency = 12, "EUR"
    ctx = SerializationContext(PROTO_TOPIC, MessageField.VALUE)
    reference = ProtobufSerializer(Order, sr, {"auto.register.schemas": False, "use.latest.version": True})
    want = reference(msg, ctx)
    # Order is the file's second message: its index path [1] is written as 02 02.
    assert framing(want)[:2] == (0, ids["proto"]) and want[5:7] == b"\x02\x02"
    assert data == want
    assert ProtobufDeserializer(Order, {}, sr)(data, ctx) == msg


def test_a_pinned_version_is_used_not_the_latest(sgw, ids):
    # Version 1 has only `a`; version 2 (latest) adds `b` with a default.
    data = written(sgw, post(sgw, f"/v2/srpinned/{PINNED_TOPIC}", {"a": "x"}), PINNED_TOPIC)
    assert framing(data)[:2] == (0, ids["pinned1"])
    assert data[5:] == b"\x02x"  # the string "x" alone: no `b`
    r = post(sgw, f"/v2/srpinned/{PINNED_TOPIC}", {"a": "x", "b": 1})
    assert r.status == 400 and "b" in r.json()["message"], r


def test_a_missing_subject_is_404_and_an_off_schema_body_400_writing_nothing(sgw):
    r = post(sgw, f"/sr/{MISSING_TOPIC}", {"a": 1})
    assert r.status == 404 and f"{MISSING_TOPIC}-value" in r.json()["message"], r
    before = sgw.totals(AVRO_TOPIC)
    bad = dict(ORDER_VALUE, status="LOST")
    r = post(sgw, f"/sr/{AVRO_TOPIC}", bad)
    assert r.status == 400 and "status" in r.json()["message"], r
    r = post(sgw, f"/sr/{JSON_TOPIC}", {"name": "x"})
    assert r.status == 400 and "count" in r.json()["message"], r
    assert sgw.totals(AVRO_TOPIC) == before


def test_a_registry_that_demands_credentials_over_a_private_ca(sgw, proxy, ids):
    direct = written(sgw, post(sgw, f"/v2/sr/{AVRO_TOPIC}", ORDER_VALUE), AVRO_TOPIC)
    for path, header in [("/v2/srbasic/", "Basic " + base64.b64encode(b"alice:s3cret").decode()),
                         ("/v2/srbearer/", "Bearer tok-123")]:
        data = written(sgw, post(sgw, path + AVRO_TOPIC, ORDER_VALUE), AVRO_TOPIC)
        assert data == direct, path
        assert any(a == header for _, _, a in proxy.seen), (path, proxy.seen[-3:])
    r = post(sgw, f"/v2/srnone/{AVRO_TOPIC}", ORDER_VALUE)
    assert r.status == 503 and "refused the credentials" in r.json()["message"], r
    assert r.headers.get("Retry-After"), r.headers
