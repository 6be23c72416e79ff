"""Hostile input through the gateway: one table of requests, each with the status it must
get and the words its JSON message must contain. After every case the gateway must still
publish a normal request (a canary on the classic topic); at the end the hostile cases'
topic must hold exactly the records of the cases that were meant to be accepted, and the
classic topic exactly one record per canary: nothing rejected was written, nothing lost.
"""

import concurrent.futures
import json
import socket

import pytest

from conftest import CLASSIC_BODY, CLASSIC_HEADERS

LIMIT = 1048576  # max_body_bytes of the /v1/event/ route (krakend/krakend.json)
JSON = {"Content-Type": "application/json"}


def hdrs(**extra):
    h = dict(JSON)
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


def nested(depth, key="child"):
    return ('{"%s":' % key) * depth + "{}" + "}" * depth


# (id, path ("{r}" rich topic, "{t}" classic topic), method, body, headers, status, words)
CASES = [
    # Not JSON, or not one JSON object
    ("malformed-json", "{r}", "POST", b'{"name": "x"', JSON, 400, ["EOF"]),
    ("trailing-garbage", "{r}", "POST", b'{"name":"x"} garbage', JSON, 400, ["trailing characters"]),
    ("two-objects", "{r}", "POST", b'{"name":"x"}{"name":"y"}', JSON, 400, ["trailing characters"]),
    ("array-body", "{r}", "POST", b"[1,2]", JSON, 400, ["JSON object"]),
    ("string-body", "{r}", "POST", b'"x"', JSON, 400, ["JSON object"]),
    ("number-body", "{r}", "POST", b"42", JSON, 400, ["JSON object"]),
    ("null-body", "{r}", "POST", b"null", JSON, 400, ["JSON object"]),
    ("empty-body", "{r}", "POST", b"", JSON, 400, ["empty"]),
    ("blank-body", "{r}", "POST", b"  \n\t ", JSON, 400, ["empty"]),
    ("byte-order-mark", "{r}", "POST", b'\xef\xbb\xbf{"name":"x"}', JSON, 400, ["JSON object"]),
    ("invalid-utf8", "{r}", "POST", b'{"name":"\xff\xfe"}', JSON, 400, ["UTF-8"]),
    ("raw-nul-in-string", "{r}", "POST", b'{"name":"a\x00b"}', JSON, 400, ["name", "control character"]),
    ("raw-newline-in-string", "{r}", "POST", b'{"name":"a\nb"}', JSON, 400, ["name", "control character"]),
    ("nan-literal", "{r}", "POST", b'{"ratio":NaN}', JSON, 400, ["ratio"]),
    # Duplicates
    ("duplicate-key", "{r}", "POST", b'{"name":"a","name":"b"}', JSON, 400, ["`name`", "more than once"]),
    ("duplicate-json-and-proto-name", "{r}", "POST", b'{"display_name":"a","displayName":"b"}', JSON, 400,
     ["`display_name`", "more than once"]),
    ("duplicate-nested-key", "{r}", "POST", b'{"child":{"small":1,"small":2}}', JSON, 400,
     ["`child.small`", "more than once"]),
    ("duplicate-map-key", "{r}", "POST", b'{"attrs":{"k":"1","k":"2"}}', JSON, 400, ["`attrs`", "map key"]),
    # Wrong types and values
    ("string-for-int", "{r}", "POST", b'{"small":"ten"}', JSON, 400, ["`small`"]),
    ("object-for-string", "{r}", "POST", b'{"name":{}}', JSON, 400, ["`name`", "expected a string"]),
    ("array-for-bool", "{r}", "POST", b'{"flag":[true]}', JSON, 400, ["`flag`"]),
    ("string-for-bool", "{r}", "POST", b'{"flag":"true"}', JSON, 400, ["`flag`"]),
    ("object-for-list", "{r}", "POST", b'{"tags":{"a":"b"}}', JSON, 400, ["`tags`"]),
    ("number-in-string-list", "{r}", "POST", b'{"tags":["a",1]}', JSON, 400, ["`tags[1]`"]),
    ("string-for-message", "{r}", "POST", b'{"child":"x"}', JSON, 400, ["`child`"]),
    ("int32-overflow", "{r}", "POST", b'{"small":2147483648}', JSON, 400, ["`small`"]),
    ("uint32-negative", "{r}", "POST", b'{"positive":-1}', JSON, 400, ["`positive`"]),
    ("int64-overflow", "{r}", "POST", b'{"big":"9223372036854775808"}', JSON, 400, ["`big`"]),
    ("number-beyond-double", "{r}", "POST", b'{"big":1e400}', JSON, 400, ["big"]),
    ("fraction-for-int", "{r}", "POST", b'{"small":1.5}', JSON, 400, ["`small`"]),
    ("nan-string-for-int", "{r}", "POST", b'{"small":"NaN"}', JSON, 400, ["`small`"]),
    ("float-overflow", "{r}", "POST", b'{"f":1e39}', JSON, 400, ["`f`"]),
    ("bad-base64", "{r}", "POST", b'{"blob":"!!not base64!!"}', JSON, 400, ["`blob`"]),
    ("unknown-field", "{r}", "POST", b'{"nope":1}', JSON, 400, ["unrecognized field", "nope"]),
    ("unknown-nested-field", "{r}", "POST", b'{"child":{"nope":1}}', JSON, 400, ["child", "nope"]),
    ("unknown-enum-name", "{r}", "POST", b'{"level":"PURPLE"}', JSON, 400, ["`level`"]),
    ("bool-for-enum", "{r}", "POST", b'{"level":true}', JSON, 400, ["`level`"]),
    ("deep-object-nesting", "{r}", "POST", nested(5000).encode(), JSON, 400, ["recursion limit"]),
    # Refused at the first nested list, long before the depth matters.
    ("deep-array-nesting", "{r}", "POST", b'{"tags":' + b"[" * 5000 + b"]" * 5000 + b"}", JSON, 400,
     ["`tags[0]`", "expected a string"]),
    ("deep-nesting-in-list", "{r}", "POST", b'{"child":{"tags":["a"],"child":' + nested(3000).encode() + b"}}", JSON,
     400, ["recursion limit"]),
    # Accepted: odd but valid
    ("escaped-nul-in-string", "{r}", "POST", b'{"name":"a\\u0000b"}', JSON, 200, []),
    ("huge-string", "{r}", "POST", b'{"name":"' + b"x" * 900_000 + b'"}', JSON, 200, []),
    ("huge-array", "{r}", "POST", b'{"tags":[' + b",".join([b'"a"'] * 150_000) + b"]}", JSON, 200, []),
    ("nesting-within-limit", "{r}", "POST", nested(100).encode(), JSON, 200, []),
    # Size limits
    ("body-over-limit", "{r}", "POST", b'{"name":"' + b"x" * LIMIT + b'"}', JSON, 413, ["larger than the limit"]),
    ("key-over-limit", "{r}", "POST", b'{"name":"x"}', hdrs(message_key="k" * 5000), 413, ["key", "4096"]),
    ("too-many-headers", "{r}", "POST", b'{"name":"x"}',
     hdrs(message_headers=",".join(f"h{i}=v" for i in range(65))), 413, ["headers", "64"]),
    ("header-bytes-over-limit", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="big=" + "v" * 17000), 413,
     ["header", "16384"]),
    # message-headers syntax
    ("header-empty-name", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="=value"), 400,
     ["message-headers", "empty name"]),
    ("header-no-equals", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="a=1,b"), 400,
     ["message-headers", "no '='"]),
    ("header-two-equals", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="a=1=2"), 400,
     ["message-headers", "more than one '='"]),
    ("header-bad-percent", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="a=%zz"), 400,
     ["message-headers", "percent-encoding"]),
    ("header-not-utf8", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="a=%ff"), 400,
     ["message-headers", "UTF-8"]),
    # Kafka headers may repeat a name: both are written, in order (read back in test_publish.py).
    ("header-duplicate-name", "{r}", "POST", b'{"name":"x"}', hdrs(message_headers="a=1, a=2"), 200, ["ok"]),
    # Paths and topics
    ("topic-kafka-rejects", "/v1/event/bad%20topic", "POST", CLASSIC_BODY, JSON, 404, ["not exposed"]),
    ("topic-dot-dot", "/v1/event/..", "POST", CLASSIC_BODY, JSON, 404, []),
    ("path-traversal", "/v1/event/../event/{tn}", "POST", CLASSIC_BODY, JSON, 404, ["no topic is exposed"]),
    ("encoded-slashes", "/v1/event/..%2F..%2F{tn}", "POST", CLASSIC_BODY, JSON, 404, []),
    ("topic-too-long", "/v1/event/" + "a" * 250, "POST", CLASSIC_BODY, JSON, 404, ["not exposed"]),
    ("topic-not-allowed", "/v1/event/NotOnTheList", "POST", CLASSIC_BODY, JSON, 404, ["NotOnTheList", "not exposed"]),
    ("topic-case-differs", "/v1/event/{tl}", "POST", CLASSIC_BODY, JSON, 404, ["not exposed"]),
    # Method and content type
    ("method-put", "{r}", "PUT", b'{"name":"x"}', JSON, 405, ["PUT"]),
    ("method-delete", "{r}", "DELETE", None, {}, 405, ["DELETE"]),
    ("content-type-xml", "{r}", "POST", b'{"name":"x"}', {"Content-Type": "application/xml"}, 415, ["application/xml"]),
    ("content-type-latin1", "{r}", "POST", b'{"name":"x"}', {"Content-Type": "application/json; charset=latin1"}, 415,
     ["latin1"]),
    ("content-type-garbage", "{r}", "POST", b'{"name":"x"}', {"Content-Type": ";;;"}, 415, ["not supported"]),
]

# Raw HTTP/1.1 requests Python's client refuses to send: control characters in headers.
RAW_CASES = [
    ("key-with-cr", b"message-key: a\rb"),
    ("key-with-nul", b"message-key: a\x00b"),
    ("key-with-control", b"message-key: a\x01b"),
    ("headers-with-bare-lf", b"message-headers: a=1\nb=2"),
    ("headers-with-control", b"message-headers: a=1\x7f"),
]


def path_of(gw, p):
    p = p.format(r=gw.rich_topic, t=gw.topic, tn=gw.topic, tl=gw.rich_topic.lower())
    return p if p.startswith("/") else f"/v1/event/{p}"


def canary(gw):
    r = gw.post(f"/v1/event/{gw.topic}")
    assert r.status == 200, f"the gateway stopped publishing: {r}"


@pytest.fixture(scope="module")
def counted(gw):
    """Totals of the rich and classic topics before the cases, and the number of records the
    cases add (accepted cases plus one canary each)."""
    canary(gw)  # creates the classic topic
    r = gw.request("POST", f"/v1/event/{gw.rich_topic}", body=b'{"name":"first"}', headers=JSON)
    assert r.status == 200, r
    state = {"before": gw.totals(gw.topic, gw.rich_topic), "accepted": 0, "canaries": 0}
    yield state
    after = gw.totals(gw.topic, gw.rich_topic)
    assert after[gw.rich_topic] == state["before"][gw.rich_topic] + state["accepted"], (state, after)
    assert after[gw.topic] == state["before"][gw.topic] + state["canaries"], (state, after)


@pytest.mark.parametrize("path,method,body,headers,status,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile(gw, counted, path, method, body, headers, status, words):
    r = gw.request(method, path_of(gw, path), body=body, headers=headers, timeout=60)
    assert r.status == status, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    answer = r.json()
    assert answer["statusCode"] == str(status), answer
    for w in words:
        assert w.lower() in answer["message"].lower(), f"message does not name {w!r}: {answer['message']!r}"
    if status == 200:
        counted["accepted"] += 1
    else:
        # The message never echoes a long run of the body back.
        assert "x" * 64 not in answer["message"], answer["message"][:200]
    canary(gw)
    counted["canaries"] += 1


def raw_request(gw, head, body=b'{"name":"x"}'):
    """Sends one hand-written HTTP/1.1 request; returns the status code."""
    req = (
        f"POST /v1/event/{gw.rich_topic} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        + head
        + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        s.sendall(req)
        data = b""
        while len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), data[:200]
    return int(line.split()[1])


@pytest.mark.parametrize("head", [c[1] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_control_characters_in_headers_are_refused(gw, counted, head):
    # Go's HTTP server refuses these before any handler runs (KrakenD's does too).
    assert raw_request(gw, head) == 400
    canary(gw)
    counted["canaries"] += 1


def test_concurrent_oversize_requests(gw, counted):
    """Twenty 2 MB bodies at once to a 48-byte route: all 413, none buffered whole, then 200."""
    body = b'{"sample_message":"' + b"x" * (2 * 1024 * 1024) + b'"}'

    def send(_):
        return gw.request("POST", f"/v1/small/{gw.topic}", body=body, headers=CLASSIC_HEADERS, timeout=60).status

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(send, range(20)))
    assert statuses == [413] * 20, statuses
    canary(gw)
    counted["canaries"] += 1


def test_accepted_oddities_read_back_exactly(gw, counted):
    """An escaped NUL is a valid JSON string: it reaches Kafka as the byte 0, nothing else."""
    r = gw.request("POST", f"/v1/event/{gw.rich_topic}", body=b'{"name":"a\\u0000b"}', headers=JSON)
    assert r.status == 200, r
    counted["accepted"] += 1
    d = r.json()
    [rec] = gw.read_back(gw.rich_topic, d["partition"], d["offset"], 1)
    assert rec.value == b"\x0a\x03a\x00b", rec  # field 1, length 3
    assert json.loads(r.body)["offset"] == rec.offset
