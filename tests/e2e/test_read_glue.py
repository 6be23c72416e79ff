"""Reading topics (issue #22) whose records carry AWS Glue SerDe framing (header byte 3,
compression byte, the schema version's UUID, the Protobuf message index), plain and zlib, written
by Kafka's producer with the framing built by hand from Glue's (moto's) version id: read back
through the paged GET decoded to the values sent. A record framed with another version's UUID is
an error entry naming its partition and offset.
"""

import json
import uuid
import zlib

import pytest

from conftest import CLASSIC_PROTO, GLUE_REGISTRY, running
from test_read import ReadGateway, get, produce, proto_event, varint

# AWS's message index: the position of the message among the file's message types sorted by full
# name: events.v1.Detail 0, events.v1.Event 1.
EVENT_INDEX = 1


class GlueReadGateway(ReadGateway):
    """The read gateway with its core on Glue (moto), Glue framing; its topic's schema in Glue."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.glue_read_topic = f"ReadGlue{self.run_id}"

    def create_glue_schema(self):
        glue = self.glue_client()
        try:
            glue.create_registry(RegistryName=GLUE_REGISTRY)
        except glue.exceptions.AlreadyExistsException:
            pass
        glue.create_schema(RegistryId={"RegistryName": GLUE_REGISTRY}, SchemaName=self.glue_read_topic,
                           DataFormat="PROTOBUF", Compatibility="NONE", SchemaDefinition=CLASSIC_PROTO)

    def delete_glue_schema(self):
        try:
            self.glue_client().delete_schema(SchemaId={"RegistryName": GLUE_REGISTRY, "SchemaName": self.glue_read_topic})
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
        t = self.glue_read_topic
        srv["routes"] = [{"path_prefix": "/rg/", "topics": [t], "read": {"topics": [t], "raw_on_error": True}}]
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
    assert "value" not in e and f"partition 0 offset {placed[2][1]}" in e["error"] and "Glue schema version" in e["error"], e
