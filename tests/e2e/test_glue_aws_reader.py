"""Glue-framed Protobuf, Avro and JSON Schema records read back by AWS's own deserializer.

The gateway publishes gc.v1.Order (the file's first message), gc.v1.Shipment (a top-level message
that sorts after the map entry gc.v1.Order.LabelsEntry) and gc.v1.Order.Item (a nested message)
with value_format "glue", uncompressed and zlib (conftest's GC_PROTO and GC_ROUTES). AWS's
GlueSchemaRegistryKafkaDeserializer (schema-registry-serde 1.1.27, through tests/glue/GlueRead.java,
against moto's Glue) must decode each record as the message type it was published as, to exactly
the value that was sent. AWS counts map entries in the message index; a wrong index is no error
there: the record silently decodes as another message type of the file.

The zlib records are also compared with what AWS's serializer writes for the same body
(java.util.zip.Deflater through AWS's compression handler): never larger, the same bytes.

Avro and JSON Schema (conftest's GF_AVRO, GF_JSON and GF_ROUTES: schemas in Glue with DataFormat
AVRO and JSON, value_format "glue", uncompressed and zlib) go the same way: AWS's deserializer must
hand back a GenericRecord equal to the value sent (defaults filled in: a nested record, an array, an
enum, unions with null, long, double, boolean) or a JsonDataWithSchema whose payload is the JSON sent.
The Avro body must also be the bytes Avro's own binary writer writes for that record, and AWS's
own GlueSchemaRegistryKafkaSerializer, given the decoded value (it finds the schema version by its
definition: conftest registers the compact text it prints), must write the record byte for byte.

Keys with a Glue key schema (`key_schema`, conftest's GK_KEY_AVRO under `<topic>-key`, value_format
"glue"): AWS's deserializer configured for keys hands back a GenericRecord equal to the key sent,
and AWS's serializer for keys writes the key topicgate wrote byte for byte; the value as above.

Needs GLUE_READER_CLASSPATH (scripts/glue-reader.sh jars, which `make test-e2e` runs); without it
the test fails, it never skips.
"""

import json
import os
import subprocess

import pytest

from conftest import GC_ROUTES, GF_ROUTES, GLUE_REGISTRY, JVM_FLAGS, ROOT

GLUE_READ = "tests/glue/GlueRead.java"

# What each route publishes: the message type AWS must decode, and the value (JSON with proto field
# names, no default values: what JsonFormat prints back). The Order compresses: about 130 bytes
# of record with repeated keys and SKU prefixes.
SENT = {
    "order": (
        "gc.v1.Order",
        {
            "id": "ord-77791",
            "labels": {"coupon": "WELCOME", "customer": "cust-ec244f", "region": "us-east-1"},
            "items": [{"sku": "sku-82462", "qty": 1}, {"sku": "sku-43265", "qty": 5}],
            "ship_to": {"city": "Lyon"},
        },
    ),
    "shipment": (
        "gc.v1.Shipment",
        {
            "order_id": "ord-77791",
            "carrier": "DHL Express",
            "to": {"city": "Lyon", "street": "12 rue de la Republique"},
            "express": True,
        },
    ),
    "item": ("gc.v1.Order.Item", {"sku": "sku-82462", "qty": 3}),
}
# What each GF route publishes, and what AWS's deserializer must give back (Avro: GenericData's JSON,
# the defaults of `note` and `attempts` filled in; a union value given bare, as the core takes it).
GF_PARCEL = {
    "id": "p-31",
    "weight_g": 4_000_000_123,
    "price": 19.99,
    "fragile": True,
    "status": "SHIPPED",
    "tags": ["gift", "blue", "gift"],
    "to": {"city": "Lyon", "zip": "69002"},
}
GF_SENT = {
    "avro": (GF_PARCEL, "gf.v1.Parcel", {**GF_PARCEL, "note": None, "attempts": 1}),
    "json": (
        {
            "id": "o-9",
            "express": False,
            "total": 42.5,
            "items": [{"sku": "sku-1", "qty": 2}, {"sku": "sku-2", "qty": 1}],
            "to": {"city": "Lyon", "lines": ["12 rue de la Republique", "3e etage"]},
            "note": None,
        },
        "json",
        None,  # the value sent
    ),
}
COMPRESSION_BYTE = {"none": 0x00, "zlib": 0x05}
GK_KEY = {"id": "p-31", "shard": 4}  # a key for conftest's GK_KEY_AVRO


def glue_read(gw, topics, count, timeout_ms=30000):
    """The records of `topics` decoded by AWS's deserializer: {(topic, partition, offset): line}."""
    classpath = os.environ.get("GLUE_READER_CLASSPATH", "")
    if not classpath:
        raise RuntimeError(
            "GLUE_READER_CLASSPATH is not set: run `scripts/glue-reader.sh jars` and source "
            ".run/glue-reader.env (`make test-e2e` does both)"
        )
    out = subprocess.run(
        ["java", *JVM_FLAGS, "-cp", classpath, GLUE_READ, *map(str, (gw.bootstrap, ",".join(topics), count, timeout_ms))],
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "GLUE_READER_REGISTRY": GLUE_REGISTRY},
        timeout=timeout_ms / 1000 + 60,
    )
    assert out.returncode == 0, f"GlueRead failed ({out.returncode}): {out.stderr.decode(errors='replace')[-4000:]}"
    lines = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    return {(line["topic"], line["partition"], line["offset"]): line for line in lines}


@pytest.fixture(scope="module")
def aws_read(gw):
    """Posts one record on each GC route (each to its own topic), then decodes them all with one
    AWS reader run."""
    where = {}
    for segment, _, _ in GC_ROUTES:
        name = segment.split("-")[0]
        body = json.dumps(SENT[name][1]).encode()
        topic = gw.gc_topics[segment]
        r = gw.post(
            f"/v3/gc/{segment}/{topic}",
            body=body,
            headers={"Content-Type": "application/json", "message-key": "gc"},
        )
        assert r.status == 200, (segment, r)
        answer = r.json()
        assert answer["topic"] == topic, answer
        where[segment] = (topic, answer["partition"], answer["offset"])
    for segment, _, _ in GF_ROUTES:
        body = json.dumps(GF_SENT[segment.split("-")[0]][0]).encode()
        topic = gw.gf_topics[segment]
        r = gw.post(f"/v3/gf/{segment}/{topic}", body=body, headers={"Content-Type": "application/json"})
        assert r.status == 200, (segment, r)
        answer = r.json()
        assert answer["topic"] == topic, answer
        where[segment] = (topic, answer["partition"], answer["offset"])
    r = gw.post(f"/v3/gk/{gw.gk_topic}", body=json.dumps(GF_PARCEL).encode(),
                headers={"Content-Type": "application/json", "message-key": json.dumps(GK_KEY)})
    assert r.status == 200, r
    where["gk"] = (gw.gk_topic, r.json()["partition"], r.json()["offset"])
    topics = sorted([*gw.gc_topics.values(), *gw.gf_topics.values(), gw.gk_topic])
    return where, glue_read(gw, topics, len(where))


@pytest.mark.parametrize("segment", [segment for segment, _, _ in GC_ROUTES])
def test_aws_deserializer_decodes_the_sent_message(aws_read, segment):
    where, records = aws_read
    name, compression = segment.split("-")
    want_type, want_value = SENT[name]
    assert where[segment] in records, f"record {where[segment]} not read; got {sorted(records)}"
    rec = records[where[segment]]
    shown = json.dumps(rec)
    assert rec["compression"] == COMPRESSION_BYTE[compression], shown
    assert "error" not in rec, f"AWS's deserializer failed on the {segment} record: {shown}"
    assert rec["type"] == want_type, f"AWS decoded the {segment} record as another message type: {shown}"
    assert rec["message"] == want_value, f"AWS decoded the {segment} record to another value: {shown}"


@pytest.mark.parametrize("name", sorted(SENT))
def test_zlib_records_match_aws_serializers(aws_read, name):
    """AWS's serializer compresses with java.util.zip.Deflater at its defaults (zlib, level 6); the
    core with zlib itself at level 6: never larger, and the same bytes where both use one zlib."""
    where, records = aws_read
    rec = records[where[f"{name}-zlib"]]
    assert rec["compression"] == COMPRESSION_BYTE["zlib"], json.dumps(rec)
    assert rec["value_bytes"] <= rec["aws_zlib_bytes"], (
        f"{name}: topicgate's zlib record is {rec['value_bytes']} bytes, AWS's serializer's {rec['aws_zlib_bytes']}"
    )
    assert rec["same_as_aws_zlib"] is True, f"{name}: zlib bytes differ from AWS's serializer's: {json.dumps(rec)}"


def test_small_compressible_record_gets_smaller_with_zlib(aws_read):
    """The Order (about 130 bytes uncompressed) shrinks: a stored deflate block would grow it."""
    where, records = aws_read
    plain, zipped = records[where["order-none"]], records[where["order-zlib"]]
    assert 100 <= plain["value_bytes"] <= 200, json.dumps(plain)
    assert zipped["value_bytes"] < plain["value_bytes"], (
        f"zlib record {zipped['value_bytes']} bytes, uncompressed {plain['value_bytes']}: {json.dumps(zipped)}"
    )


@pytest.mark.parametrize("segment", [segment for segment, _, _ in GF_ROUTES])
def test_aws_deserializer_decodes_avro_and_json_records(aws_read, segment):
    where, records = aws_read
    fmt, compression = segment.split("-")
    sent, want_type, want_value = GF_SENT[fmt]
    want_value = sent if want_value is None else want_value
    assert where[segment] in records, f"record {where[segment]} not read; got {sorted(records)}"
    rec = records[where[segment]]
    shown = json.dumps(rec)
    assert rec["compression"] == COMPRESSION_BYTE[compression], shown
    assert "error" not in rec, f"AWS's deserializer failed on the {segment} record: {shown}"
    assert rec["type"] == want_type, shown
    assert rec["message"] == want_value, f"AWS decoded the {segment} record to another value: {shown}"
    if fmt == "avro":
        assert rec["same_as_aws_avro"] is True, f"{segment}: Avro body differs from Avro's own writer's: {shown}"
    if compression == "zlib":
        assert rec["same_as_aws_zlib"] is True, f"{segment}: zlib bytes differ from AWS's serializer's: {shown}"
    assert rec["same_as_aws_serializer"] is True, f"{segment}: bytes differ from AWS's serializer's: {shown}"


def test_aws_deserializer_decodes_glue_framed_keys(aws_read):
    where, records = aws_read
    assert where["gk"] in records, f"record {where['gk']} not read; got {sorted(records)}"
    rec = records[where["gk"]]
    shown = json.dumps(rec)
    key = rec["key"]
    assert key is not None, f"the key is not Glue-framed: {shown}"
    assert "error" not in key, f"AWS's deserializer failed on the key: {shown}"
    assert key["type"] == "gf.v1.ParcelKey" and key["message"] == GK_KEY, shown
    assert key["same_as_aws_avro"] is True, f"key body differs from Avro's own writer's: {shown}"
    assert key["same_as_aws_serializer"] is True, f"key bytes differ from AWS's key serializer's: {shown}"
    # The value beside it, as on the GF routes.
    assert "error" not in rec and rec["message"] == GF_SENT["avro"][2], shown
    assert rec["same_as_aws_serializer"] is True, shown
