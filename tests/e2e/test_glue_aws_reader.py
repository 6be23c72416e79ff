"""Glue-framed Protobuf read back by AWS's own deserializer.

The gateway publishes gc.v1.Order (the file's first message), gc.v1.Shipment (a top-level message
that sorts after the map entry gc.v1.Order.LabelsEntry) and gc.v1.Order.Item (a nested message)
with value_format "glue", uncompressed and zlib (conftest's GC_PROTO and GC_ROUTES). AWS's
GlueSchemaRegistryKafkaDeserializer (schema-registry-serde 1.1.27, through tests/glue/GlueRead.java,
against moto's Glue) must decode each record as the message type it was published as, to exactly
the value that was sent. AWS counts map entries in the message index; a wrong index is no error
there: the record silently decodes as another message type of the file.

The zlib records are also compared with what AWS's serializer writes for the same body
(java.util.zip.Deflater through AWS's compression handler): never larger, the same bytes.

Needs GLUE_READER_CLASSPATH (scripts/glue-reader.sh jars, which `make test-e2e` runs); without it
the test fails, it never skips.
"""

import json
import os
import subprocess

import pytest

from conftest import GC_ROUTES, JVM_FLAGS, ROOT

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
COMPRESSION_BYTE = {"none": 0x00, "zlib": 0x05}


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
    return where, glue_read(gw, sorted(gw.gc_topics.values()), len(where))


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
