"""Reading topics (issue #22) whose records carry AWS Glue SerDe framing (header byte 3,
compression byte, the schema version's UUID, the Protobuf message index), plain and zlib, written
by Kafka's producer with the framing built by hand from Glue's (moto's) version id: read back
through the paged GET decoded to the values sent. A record framed with a version Glue does not
have is an error entry naming its partition, offset and version. Records that AWS's own serializer
(tests/glue/GlueWrite.java) wrote with an older schema version than the topic's latest decode
with the version they name, looked up by its UUID.
"""

import json
import os
import subprocess
import uuid
import zlib

import pytest

from conftest import CLASSIC_PROTO, GLUE_REGISTRY, JVM_FLAGS, ROOT, running
from test_read import ReadGateway, get, produce, proto_event, varint

# An Avro schema in two versions: v2 adds a field with a default. The topic's schema is the latest.
# Compact, as Avro's Schema.toString() prints it: AWS's serializer finds the version by that text.
AVRO_V1 = json.dumps({"type": "record", "name": "Reading", "namespace": "rv",
                      "fields": [{"name": "a", "type": "string"}]}, separators=(",", ":"))
AVRO_V2 = json.dumps({"type": "record", "name": "Reading", "namespace": "rv",
                      "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "int", "default": 0}]},
                     separators=(",", ":"))
GLUE_WRITE = "tests/glue/GlueWrite.java"

# AWS's message index: the position of the message among the file's message types sorted by full
# name: events.v1.Detail 0, events.v1.Event 1.
EVENT_INDEX = 1


class GlueReadGateway(ReadGateway):
    """The read gateway with its core on Glue (moto), Glue framing; its topic's schema in Glue."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.glue_read_topic = f"ReadGlue{self.run_id}"
        self.versions_topic = f"ReadGlueVersions{self.run_id}"  # AVRO_V1 then AVRO_V2 in Glue

    def create_glue_schema(self):
        glue = self.glue_client()
        try:
            glue.create_registry(RegistryName=GLUE_REGISTRY)
        except glue.exceptions.AlreadyExistsException:
            pass
        glue.create_schema(RegistryId={"RegistryName": GLUE_REGISTRY}, SchemaName=self.glue_read_topic,
                           DataFormat="PROTOBUF", Compatibility="NONE", SchemaDefinition=CLASSIC_PROTO)
        glue.create_schema(RegistryId={"RegistryName": GLUE_REGISTRY}, SchemaName=self.versions_topic,
                           DataFormat="AVRO", Compatibility="NONE", SchemaDefinition=AVRO_V1)
        glue.register_schema_version(SchemaId={"RegistryName": GLUE_REGISTRY, "SchemaName": self.versions_topic},
                                     SchemaDefinition=AVRO_V2)

    def delete_glue_schema(self):
        for name in (self.glue_read_topic, self.versions_topic):
            try:
                self.glue_client().delete_schema(SchemaId={"RegistryName": GLUE_REGISTRY, "SchemaName": name})
            except Exception:  # best effort: moto may have been reset meanwhile
                pass

    def version_id(self):
        v = self.glue_client().get_schema_version(
            SchemaId={"RegistryName": GLUE_REGISTRY, "SchemaName": self.glue_read_topic},
            SchemaVersionNumber={"LatestVersion": True})
        return uuid.UUID(v["SchemaVersionId"])

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"]["registry"] = {"kind": "glue", "registry_name": GLUE_REGISTRY, "region": "us-east-1",
                                   "endpoint_url": self.glue_endpoint}
        srv["core"]["value_format"] = "glue"
        ts = [self.glue_read_topic, self.versions_topic]
        srv["routes"] = [{"path_prefix": "/rg/", "topics": ts, "read": {"topics": ts, "raw_on_error": True}}]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def ggw():
    yield from running(GlueReadGateway, "topicgate-read-glue-")


def glue_frame(version, message, compressed):
    body = varint(EVENT_INDEX) + message
    if compressed:
        return b"\x03\x05" + version.bytes + zlib.compress(body)
    return b"\x03\x00" + version.bytes + body


def test_glue_framed_records_plain_and_zlib_read_back_as_sent(ggw):
    version = ggw.version_id()
    topic = ggw.glue_read_topic
    values = [("plain", 1, "p"), ("zlib", 2, "z")]
    records = [(0, f"k{i}".encode(), glue_frame(version, proto_event(m, c, n), i == 1), [])
               for i, (m, c, n) in enumerate(values)]
    records.append((0, b"other", glue_frame(uuid.uuid4(), proto_event("x", 3, "x"), False), []))
    placed = produce(ggw.bootstrap, topic, records)
    r = get(ggw, f"/rg/{topic}?start=earliest&limit=10")
    assert r.status == 200, r
    got = {e["key"]: e for e in r.json()["records"]}
    for i, (m, c, n) in enumerate(values):
        e = got[f"k{i}"]
        assert (e["partition"], e["offset"]) == placed[i]
        assert e["value"] == {"sample_message": m, "count": str(c), "detail": {"note": n}}, e
    e = got["other"]
    assert "value" not in e and f"partition 0 offset {placed[2][1]}" in e["error"], e
    assert "Glue schema version" in e["error"] and "not found" in e["error"], e


def glue_write(gw, topic, definition, values):
    """Writes `values` (Avro JSON encoding) with AWS's serializer under `definition`'s Glue version
    of the schema `topic`, to partition 0: their offsets."""
    classpath = os.environ.get("GLUE_READER_CLASSPATH", "")
    if not classpath:
        raise RuntimeError("GLUE_READER_CLASSPATH is not set: run `scripts/glue-reader.sh jars` and source "
                           ".run/glue-reader.env (`make test-e2e` does both)")
    path = gw.tmp / f"def-{uuid.uuid4().hex[:6]}.avsc"
    path.write_text(definition)
    out = subprocess.run(["java", *JVM_FLAGS, "-cp", classpath, GLUE_WRITE, gw.bootstrap, topic, GLUE_REGISTRY,
                          topic, str(path), "0", *map(json.dumps, values)],
                         cwd=ROOT, capture_output=True, timeout=180)
    assert out.returncode == 0, f"GlueWrite failed ({out.returncode}): {out.stderr.decode(errors='replace')[-4000:]}"
    return [json.loads(line)["offset"] for line in out.stdout.decode().splitlines() if line.strip()]


def test_records_of_an_older_glue_version_decode_with_that_version(ggw):
    """The topic's schema is AVRO_V2 (latest); records AWS's serializer framed with AVRO_V1's
    version read as written with V1 (no field b), V2's with b: each by the version it names."""
    topic = ggw.versions_topic
    old = glue_write(ggw, topic, AVRO_V1, [{"a": "old-1"}, {"a": "old-2"}])
    new = glue_write(ggw, topic, AVRO_V2, [{"a": "new", "b": 7}])
    r = get(ggw, f"/rg/{topic}?partition=0&offset={old[0]}&limit=10")
    assert r.status == 200, r
    got = [(e["offset"], e.get("value"), e.get("error")) for e in r.json()["records"]]
    assert got == [(old[0], {"a": "old-1"}, None), (old[1], {"a": "old-2"}, None), (new[0], {"a": "new", "b": 7}, None)]
