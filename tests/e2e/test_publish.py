"""The classic request, published through both mounting styles and the Glue registry,
read back by Kafka's own Java consumer and checked byte for byte."""

import pytest

from conftest import CLASSIC_HEADERS, CLASSIC_RECORD_HEADERS, CLASSIC_VALUE


def check_ok(r, topic):
    """A 200 with the contract's body; returns (partition, offset)."""
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"statusCode", "message", "topic", "partition", "offset"}, body
    assert body["statusCode"] == "200" and body["message"] == "ok" and body["topic"] == topic, body
    p, o = body["partition"], body["offset"]
    assert isinstance(p, int) and p >= 0 and isinstance(o, int) and o >= 0, body
    return p, o


def check_classic_record(rec, topic, partition, offset):
    assert (rec.topic, rec.partition, rec.offset) == (topic, partition, offset), rec
    assert rec.value == CLASSIC_VALUE, rec
    assert rec.key == b"messageKey", rec
    assert rec.headers == CLASSIC_RECORD_HEADERS, rec


@pytest.fixture(scope="module")
def classic(gw):
    """Posts the classic request in server mode and in client mode, then reads both
    records back with as few JVM starts as possible (one per partition)."""
    paths = {"server": f"/v1/event/{gw.topic}", "client": f"/v2/event/{gw.topic}"}
    answers = {mode: gw.post(path) for mode, path in paths.items()}
    where = {}
    for mode, r in answers.items():
        if r.status == 200:
            body = r.json()
            where[mode] = (body["partition"], body["offset"])
    records = {}
    for p in sorted({p for p, _ in where.values()}):
        offsets = [o for q, o in where.values() if q == p]
        lo, hi = min(offsets), max(offsets)
        for rec in gw.read_back(gw.topic, p, lo, hi - lo + 1):
            records[(rec.partition, rec.offset)] = rec
    return answers, records


@pytest.mark.parametrize("mode", ["server", "client"])
def test_classic_request(gw, classic, mode):
    answers, records = classic
    p, o = check_ok(answers[mode], gw.topic)
    assert (p, o) in records, f"record {p}@{o} not read back; got {sorted(records)}"
    check_classic_record(records[(p, o)], gw.topic, p, o)


def test_server_and_client_share_partitioning(classic):
    """Same key, same producer config: both records land in one partition, one after the other."""
    answers, _ = classic
    s, c = answers["server"].json(), answers["client"].json()
    assert s["partition"] == c["partition"] and c["offset"] > s["offset"], (s, c)


def test_glue_registry_route(gw):
    r = gw.post(f"/v3/glue/{gw.glue_topic}")
    p, o = check_ok(r, gw.glue_topic)
    (rec,) = gw.read_back(gw.glue_topic, p, o, 1)
    check_classic_record(rec, gw.glue_topic, p, o)  # value_format raw: plain Protobuf bytes


@pytest.mark.parametrize("path", ["/v1/event/", "/v2/event/"])
def test_message_headers_keep_their_order_and_duplicates(gw, path):
    """`message-headers: b=1,a=2,b=3` is three record headers, b, a, b, in that order."""
    headers = {**CLASSIC_HEADERS, "message-headers": "b=1,a=2,b=3"}
    p, o = check_ok(gw.post(path + gw.topic, headers=headers), gw.topic)
    (rec,) = gw.read_back(gw.topic, p, o, 1)
    assert rec.value == CLASSIC_VALUE, rec
    assert rec.headers == [("b", b"1"), ("a", b"2"), ("b", b"3")], rec
