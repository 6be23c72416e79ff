"""The tests' Confluent-compatible registry (Apicurio Registry 2.4.2, scripts/registry.sh) with
Confluent's own serializers (confluent-kafka) as the reference for the wire format.

Each test registers schemas through the ccompat API, serializes a record with Confluent's
Avro/JSON Schema/Protobuf serializer against the registry (auto.register.schemas off), produces it
to the test Kafka with confluent-kafka's producer, reads it back with Kafka's own Java consumer
(tests/kafka/ReadBack.java), and decodes it with the matching Confluent deserializer. The framing
(magic byte 0, 4-byte big-endian schema id) must name the id the registry gave.

Also pins what the ccompat API answers where it matters to issue #23 (missing subject, pinned vs
latest version, references, the Protobuf `format=serialized` gap): a newer registry that answers
differently fails here first.

Needs .run/registry.env and .run/kafka.env (`make test-registry` starts both). A missing server is
an error, never a skip.
"""

import base64
import json
import os
import struct
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ROOT = Path(__file__).resolve().parents[2]
READBACK = "tests/kafka/ReadBack.java"
CT = "application/vnd.schemaregistry.v1+json"


def env(name):
    """A server address from the environment; missing is an error (never a skip)."""
    value = os.environ.get(name)
    assert value, f"{name} is not set: run `make registry-up kafka-up` and source .run/*.env (make test-registry does)"
    return value


@pytest.fixture(scope="module")
def url():
    return env("SCHEMA_REGISTRY_URL").rstrip("/")


@pytest.fixture(scope="module")
def sr(url):
    return SchemaRegistryClient({"url": url})


@pytest.fixture(scope="module")
def bootstrap():
    return env("KAFKA_BOOTSTRAP")


@pytest.fixture
def name():
    """A fresh topic/subject stem: the registry keeps its state while it runs."""
    return "reg-" + uuid.uuid4().hex[:12]


def call(url, method, path, body=None):
    """One ccompat request; returns (status, parsed JSON body or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": CT})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def register(url, subject, schema, schema_type=None, references=None):
    """Registers a schema version; returns the id the registry gave."""
    body = {"schema": schema}
    if schema_type:
        body["schemaType"] = schema_type
    if references:
        body["references"] = references
    status, out = call(url, "POST", f"/subjects/{subject}/versions", body)
    assert status == 200 and isinstance(out, dict) and isinstance(out.get("id"), int), (status, out)
    return out["id"]


def produce(bootstrap, topic, value):
    """Produces one record to partition 0 with confluent-kafka (librdkafka); returns its offset."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 30000})
    results = []
    p.produce(topic, value=value, partition=0, on_delivery=lambda err, msg: results.append((err, msg)))
    remaining = p.flush(60)
    assert remaining == 0 and len(results) == 1, f"delivery to {topic} did not finish: {results}"
    err, msg = results[0]
    assert err is None, f"delivery to {topic} failed: {err}"
    return msg.offset()


def read_back(bootstrap, topic, offset):
    """The value at topic/0/offset, read by Kafka's own Java consumer."""
    cmd = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", env("KAFKA_CLASSPATH"),
           READBACK, bootstrap, topic, "0", str(offset), "1", "30000"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    assert out.returncode == 0, f"ReadBack failed: {out.stderr.decode(errors='replace')[-2000:]}"
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return base64.b64decode(json.loads(lines[0])["value_b64"])


def framing(data):
    """(magic byte, schema id, rest) of Confluent's wire format."""
    assert len(data) >= 5, data
    return data[0], struct.unpack(">I", data[1:5])[0], data[5:]


def round_trip(bootstrap, topic, data):
    """Produces `data` and asserts that Kafka's consumer reads back the same bytes."""
    offset = produce(bootstrap, topic, data)
    got = read_back(bootstrap, topic, offset)
    assert got == data
    return got


# --- ccompat answers ---------------------------------------------------------------------------


def test_missing_subject_answers(url, name):
    # Confluent answers 40401 (subject not found) for both; Apicurio 2.4.2 says 40402 (version
    # not found) for `latest` of a missing subject. A reader must treat both as "no such subject".
    status, out = call(url, "GET", f"/subjects/{name}-value/versions")
    assert status == 404 and out["error_code"] == 40401, (status, out)
    status, out = call(url, "GET", f"/subjects/{name}-value/versions/latest")
    assert status == 404 and out["error_code"] == 40402, (status, out)
    assert isinstance(out.get("message"), str) and out["message"], out
    status, out = call(url, "GET", "/schemas/ids/987654321")
    assert status == 404 and out["error_code"] == 40403, (status, out)


def test_pinned_and_latest_versions(url, name):
    subject = f"{name}-value"
    v1 = json.dumps({"type": "record", "name": "R", "fields": [{"name": "x", "type": "int"}]})
    v2 = json.dumps({"type": "record", "name": "R", "fields": [
        {"name": "x", "type": "int"}, {"name": "y", "type": "string", "default": ""}]})
    id1, id2 = register(url, subject, v1), register(url, subject, v2)
    assert id1 != id2
    assert call(url, "GET", f"/subjects/{subject}/versions") == (200, [1, 2])
    status, one = call(url, "GET", f"/subjects/{subject}/versions/1")
    assert status == 200 and (one["id"], one["version"], one["subject"]) == (id1, 1, subject), one
    assert json.loads(one["schema"]) == json.loads(v1) and one["references"] == []
    # Avro is the default type: no schemaType field, as Confluent answers.
    assert "schemaType" not in one, one
    status, latest = call(url, "GET", f"/subjects/{subject}/versions/latest")
    assert status == 200 and (latest["id"], latest["version"]) == (id2, 2), latest
    status, by_id = call(url, "GET", f"/schemas/ids/{id1}")
    assert status == 200 and json.loads(by_id["schema"]) == json.loads(v1), by_id
    status, out = call(url, "GET", f"/subjects/{subject}/versions/9")
    assert status == 404 and out["error_code"] == 40402, (status, out)
    # The same schema again is the same id and version (no new version).
    assert register(url, subject, v1) == id1
    assert call(url, "GET", f"/subjects/{subject}/versions") == (200, [1, 2])


def test_references_and_protobuf_text_form(url, name):
    dep_subject, subject = f"{name}-dep.proto", f"{name}-value"
    dep = 'syntax = "proto3";\npackage t;\nmessage Dep { string s = 1; }\n'
    top = f'syntax = "proto3";\npackage t;\nimport "{dep_subject}";\nmessage Top {{ t.Dep d = 1; int32 n = 2; }}\n'
    refs = [{"name": dep_subject, "subject": dep_subject, "version": 1}]
    register(url, dep_subject, dep, "PROTOBUF")
    top_id = register(url, subject, top, "PROTOBUF", refs)
    status, latest = call(url, "GET", f"/subjects/{subject}/versions/latest")
    assert status == 200 and latest["schemaType"] == "PROTOBUF" and latest["references"] == refs, latest
    assert latest["schema"] == top and latest["id"] == top_id
    status, by_id = call(url, "GET", f"/schemas/ids/{top_id}")
    assert status == 200 and by_id["references"] == refs and by_id["schema"] == top, by_id
    # Looking a schema up (POST /subjects/<s>) finds only the very text registered: the same
    # schema reformatted is 40401 (Confluent compares parsed schemas, and says 40403 for a subject
    # that exists). The answer has no schemaType even for Protobuf.
    status, found = call(url, "POST", f"/subjects/{subject}", {"schema": top, "schemaType": "PROTOBUF", "references": refs})
    assert status == 200 and (found["id"], found["version"]) == (top_id, 1) and "schemaType" not in found, found
    reformatted = top.replace("{ t.Dep d = 1; int32 n = 2; }", "{\n  t.Dep d = 1;\n  int32 n = 2;\n}")
    status, out = call(url, "POST", f"/subjects/{subject}", {"schema": reformatted, "schemaType": "PROTOBUF", "references": refs})
    assert status == 404 and out["error_code"] == 40401, (status, out)
    # Ids are content ids: the same text under another subject gets the same id.
    assert register(url, f"{name}-other-value", top, "PROTOBUF", refs) == top_id
    # Confluent's Protobuf serdes ask for ?format=serialized (a base64 FileDescriptorProto);
    # Apicurio 2.4.2 ignores the parameter and returns the text it stored. So Protobuf schemas that
    # Confluent's client is to read are registered in that base64 form (test_protobuf below).
    status, ser = call(url, "GET", f"/schemas/ids/{top_id}?format=serialized")
    assert status == 200 and ser["schema"] == top, ser


# --- Confluent's serializers through Kafka ------------------------------------------------------

AVRO = {
    "type": "record", "name": "Order", "namespace": "tests.registry",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "item", "type": "string"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "price", "type": ["null", "double"], "default": None},
    ],
}


def test_avro(url, sr, bootstrap, name):
    topic = name
    schema = json.dumps(AVRO)
    sid = register(url, f"{topic}-value", schema)
    record = {"id": 42, "item": "widget", "tags": ["a", "b"], "price": 9.5}
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = AvroSerializer(sr, schema, conf={"auto.register.schemas": False, "use.latest.version": True})
    data = ser(record, ctx)
    magic, got_id, body = framing(data)
    assert (magic, got_id) == (0, sid)
    assert body  # the Avro binary body follows the 5-byte header
    got = round_trip(bootstrap, topic, data)
    assert AvroDeserializer(sr)(got, ctx) == record
    # Pinned by id instead of latest: the same bytes.
    by_id = AvroSerializer(sr, schema, conf={"auto.register.schemas": False, "use.schema.id": sid})
    assert by_id(record, ctx) == data


JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Event", "type": "object",
    "properties": {"name": {"type": "string"}, "count": {"type": "integer"},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "count"],
    "additionalProperties": False,
}


def test_json_schema(url, sr, bootstrap, name):
    topic = name
    schema = json.dumps(JSON_SCHEMA)
    sid = register(url, f"{topic}-value", schema, "JSON")
    value = {"name": "hello", "count": 3, "tags": ["x"]}
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = JSONSerializer(schema, sr, conf={"auto.register.schemas": False, "use.latest.version": True})
    data = ser(value, ctx)
    magic, got_id, body = framing(data)
    assert (magic, got_id) == (0, sid)
    assert json.loads(body) == value
    got = round_trip(bootstrap, topic, data)
    assert JSONDeserializer(None, schema_registry_client=sr)(got, ctx) == value
    # The serializer validates against the registered schema: a value it forbids is refused.
    with pytest.raises(SerializationError, match="count"):
        ser({"name": "hello"}, ctx)


def protobuf_classes(dep_file):
    """Message classes for `Top` (file top.proto, importing `dep_file` for `Dep`), built from
    descriptors (no protoc here); returns (Top, Dep, dep FileDescriptorProto, top's)."""
    dep = descriptor_pb2.FileDescriptorProto(name=dep_file, package="tests.registry", syntax="proto3")
    m = dep.message_type.add(name="Dep")
    m.field.add(name="s", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    top = descriptor_pb2.FileDescriptorProto(name="top.proto", package="tests.registry", syntax="proto3",
                                             dependency=[dep_file])
    m = top.message_type.add(name="Top")
    m.field.add(name="d", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                type_name=".tests.registry.Dep", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    m.field.add(name="n", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(dep)
    pool.Add(top)
    top_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("tests.registry.Top"))
    dep_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("tests.registry.Dep"))
    return top_cls, dep_cls, dep, top


def test_protobuf(url, sr, bootstrap, name):
    topic, dep_subject = name, f"{name}-dep.proto"
    Top, Dep, dep_fdp, top_fdp = protobuf_classes(dep_subject)
    b64 = lambda fdp: base64.b64encode(fdp.SerializeToString()).decode()  # noqa: E731
    # Registered in the base64 FileDescriptorProto form Confluent's client itself sends (see
    # test_references_and_protobuf_text_form), with the import as a schema reference.
    register(url, dep_subject, b64(dep_fdp), "PROTOBUF")
    refs = [{"name": dep_subject, "subject": dep_subject, "version": 1}]
    sid = register(url, f"{topic}-value", b64(top_fdp), "PROTOBUF", refs)
    status, latest = call(url, "GET", f"/subjects/{topic}-value/versions/latest")
    assert status == 200 and latest["references"] == refs, latest

    msg = Top(d=Dep(s="x"), n=7)
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = ProtobufSerializer(Top, sr, {"auto.register.schemas": False, "use.latest.version": True})
    data = ser(msg, ctx)
    magic, got_id, rest = framing(data)
    assert (magic, got_id) == (0, sid)
    # Message indexes: the first message of the file is written as the single byte 0.
    assert rest[0] == 0 and rest[1:] == msg.SerializeToString()
    got = round_trip(bootstrap, topic, data)
    # With the registry: Confluent's deserializer fetches the writer schema and its reference.
    assert ProtobufDeserializer(Top, {}, sr)(got, ctx) == msg


# --- TLS with the test CA ------------------------------------------------------------------------


def test_tls_with_custom_ca(url, name):
    """The same registry over TLS (scripts/registry.sh's second listener, certificate from a test
    CA made at start): Confluent's client trusting that CA reads what was registered over plain
    HTTP; one trusting only the usual public CAs is refused."""
    tls_url, ca = env("SCHEMA_REGISTRY_TLS_URL"), env("SCHEMA_REGISTRY_CA")
    assert tls_url.startswith("https://127.0.0.1:"), tls_url
    subject = f"{name}-value"
    sid = register(url, subject, json.dumps({"type": "record", "name": "T", "fields": [{"name": "x", "type": "int"}]}))
    trusting = SchemaRegistryClient({"url": tls_url, "ssl.ca.location": ca})
    latest = trusting.get_latest_version(subject)
    assert (latest.schema_id, latest.subject, latest.version) == (sid, subject, 1)
    assert subject in trusting.get_subjects()
    untrusting = SchemaRegistryClient({"url": tls_url})
    # httpx2's ConnectError wrapping the TLS verification failure (Confluent's client passes it on).
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get_subjects()


# --- basic and bearer auth (proxy in front of the registry) -------------------------------------


@pytest.fixture
def auth_proxy(url):
    """tests/registry/authproxy.py over TLS (the test CA's server certificate) in front of the
    real registry, accepting alice:s3cret (basic) and the token tok-123 (bearer)."""
    from authproxy import AuthProxy

    pki = Path(env("SCHEMA_REGISTRY_CA")).parent
    upstream = url.rsplit("/apis/", 1)[0]
    with AuthProxy(upstream, basic=("alice", "s3cret"), bearer="tok-123",
                   tls=(str(pki / "server.crt"), str(pki / "server.key"))) as proxy:
        yield proxy


def test_basic_and_bearer_auth(url, sr, auth_proxy, name):
    ca = env("SCHEMA_REGISTRY_CA")
    topic = name
    schema = json.dumps(AVRO)
    sid = register(url, f"{topic}-value", schema)
    record = {"id": 1, "item": "x", "tags": [], "price": None}
    ctx = SerializationContext(topic, MessageField.VALUE)
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    direct = AvroSerializer(sr, schema, conf=conf)(record, ctx)

    basic = SchemaRegistryClient({"url": auth_proxy.url, "ssl.ca.location": ca,
                                  "basic.auth.user.info": "alice:s3cret"})
    assert AvroSerializer(basic, schema, conf=conf)(record, ctx) == direct
    assert framing(direct)[1] == sid
    assert any(a == "Basic " + base64.b64encode(b"alice:s3cret").decode() for _, _, a in auth_proxy.seen)

    bearer = SchemaRegistryClient({"url": auth_proxy.url, "ssl.ca.location": ca,
                                   "bearer.auth.credentials.source": "STATIC_TOKEN",
                                   "bearer.auth.token": "tok-123", "bearer.auth.logical.cluster": "lsrc-test"})
    assert bearer.get_latest_version(f"{topic}-value").schema_id == sid
    assert ("GET", f"/apis/ccompat/v7/subjects/{topic}-value/versions/latest", "Bearer tok-123") in [
        (m, p.split("?")[0], a) for m, p, a in auth_proxy.seen]

    for bad in ({"basic.auth.user.info": "alice:wrong"}, {}):
        client = SchemaRegistryClient({"url": auth_proxy.url, "ssl.ca.location": ca, **bad})
        with pytest.raises(SchemaRegistryError) as e:
            client.get_subjects()
        assert e.value.http_status_code == 401, e.value
