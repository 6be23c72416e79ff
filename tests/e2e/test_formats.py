"""Avro and JSON Schema topics (issue #23) through the gateway, from the file registry with the
example's schemas (krakend/schemas/MyAvroTopic.avsc, MyJsonTopic.json): records are read back by
Kafka's own consumer; Avro values are decoded by fastavro (a reference implementation, not
topicgate's) to the value sent and are byte-identical to fastavro's own encoding of it; bad bodies
are 400s naming the field, and nothing is written for them.
"""

import io
import json

import fastavro
import pytest

from conftest import ROOT
from test_errors import check_error
from test_publish import check_ok

AVSC = fastavro.parse_schema(json.loads((ROOT / "krakend" / "schemas" / "MyAvroTopic.avsc").read_text()))

# Every field; `event_id` past 2^53 (exact in Avro's long), `source` a bare record in ["null", Source].
FULL = {
    "sample_message": "hello", "event_id": 9007199254740993, "amount": 12.5, "urgent": True,
    "tags": ["a", "b"], "source": {"system": "billing", "instance": 7}, "attributes": {"k": "v"},
    "level": "LEVEL_HIGH",
}
# What the minimal body is, with the schema's defaults filled in.
DEFAULTS = {
    "sample_message": "hello", "event_id": 0, "amount": 0.0, "urgent": False, "tags": [], "source": None,
    "attributes": {}, "level": "LEVEL_UNSPECIFIED",
}


def fastavro_bytes(value):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, AVSC, value)
    return out.getvalue()


def read_one(gw, topic, answer):
    p, o = check_ok(answer, topic)
    recs = gw.read_back(topic, p, o, 1)
    assert len(recs) == 1, recs
    return recs[0].value


@pytest.mark.parametrize(
    "body,expected",
    [
        ({"sample_message": "hello"}, DEFAULTS),
        (FULL, FULL),
        # Avro's JSON encoding of the union branch, and null.
        ({**FULL, "source": {"topicgate.example.Source": {"system": "billing", "instance": 7}}}, FULL),
        ({"sample_message": "hello", "source": None}, DEFAULTS),
    ],
    ids=["minimal", "full", "union-wrapped", "union-null"],
)
def test_avro_records_decode_to_the_value_sent(gw, body, expected):
    value = read_one(gw, gw.avro_topic, gw.post(f"/v1/event/{gw.avro_topic}", body=json.dumps(body).encode()))
    assert fastavro.schemaless_reader(io.BytesIO(value), AVSC) == expected
    assert value == fastavro_bytes(expected)


def test_json_schema_records_are_the_compact_body(gw):
    body = b'{ "sample_message" : "hello",\n  "source": {"system": "billing", "instance": 7}, "event_id": 12345678901234567890 }'
    value = read_one(gw, gw.json_topic, gw.post(f"/v1/event/{gw.json_topic}", body=body))
    assert value == b'{"sample_message":"hello","source":{"system":"billing","instance":7},"event_id":12345678901234567890}'
    value = read_one(gw, gw.json_topic, gw.post(f"/v1/event/{gw.json_topic}", body=b'{"sample_message":"hello"}'))
    assert value == b'{"sample_message":"hello"}'


AVRO_BAD = [
    ("wrong-type", {"sample_message": 5}, ["field `sample_message`", "expected a string"]),
    ("unknown-field", {"sample_message": "x", "nope": 1}, ["unrecognized field name 'nope'"]),
    ("missing-required", {"event_id": 1}, ["field `sample_message`", "missing required field"]),
    ("bad-enum", {"sample_message": "x", "level": "SECRET_LEVEL"}, ["field `level`", "LEVEL_HIGH"]),
    ("nested-wrong-type", {"sample_message": "x", "source": {"instance": "SECRET"}}, ["field `source.instance`"]),
]
JSON_BAD = [
    ("missing-required", {"event_id": 1}, ["at `(root)`", "sample_message"]),
    ("wrong-type", {"sample_message": 5}, ["at `/sample_message`"]),
    ("additional-property", {"sample_message": "x", "nope": 1}, ["at `(root)`", "nope"]),
    ("bad-enum", {"sample_message": "x", "level": "SECRET_LEVEL"}, ["at `/level`"]),
    ("nested", {"sample_message": "x", "source": {"instance": -1}}, ["at `/source/instance`"]),
]


def test_bad_bodies_are_400s_naming_the_field_and_write_nothing(gw):
    # Each topic has at least one record first (the totals below need the topic to exist).
    check_ok(gw.post(f"/v1/event/{gw.avro_topic}", body=b'{"sample_message":"first"}'), gw.avro_topic)
    check_ok(gw.post(f"/v1/event/{gw.json_topic}", body=b'{"sample_message":"first"}'), gw.json_topic)
    before = gw.totals(gw.avro_topic, gw.json_topic)
    for topic, cases in [(gw.avro_topic, AVRO_BAD), (gw.json_topic, JSON_BAD)]:
        for name, body, words in cases:
            r = gw.post(f"/v1/event/{topic}", body=json.dumps(body).encode())
            got = check_error(r, 400, *words)
            assert "SECRET" not in got["message"], (name, got)
    assert gw.totals(gw.avro_topic, gw.json_topic) == before
