"""Hostile schemas and bodies through a Confluent-compatible registry (the Apicurio harness at
SCHEMA_REGISTRY_URL; issue #23): a recursive Avro schema (a linked list) compiles and a deep body
is a clear 400 at the core's depth limit, a recursive JSON Schema with a body nested past the
parser's limit is a clear 400, a schema that does not compile (JSON Schema and Protobuf stored in
Apicurio; Avro, which Apicurio refuses to store, served by a tiny loopback server beside the real
registry) and a registry answer that is not a schema version (that server again) are 503 with a
clear message, and 1 MB strings in Avro and JSON Schema bodies are written or refused by the size
limits with the gateway's RSS bounded. After every case the gateway still publishes a canary
(an Avro topic of the same registry), and nothing refused was written."""

import http.server
import json
import struct
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import Gateway, running
from test_schema_registry import register, registry_url

RUN = uuid.uuid4().hex[:8]
LIST, TREE, BIG_AVRO, BIG_JSON = f"HsList{RUN}", f"HsTree{RUN}", f"HsBigAvro{RUN}", f"HsBigJson{RUN}"
BAD_PROTO, BAD_JSON, CANARY = f"HsBadProto{RUN}", f"HsBadJson{RUN}", f"HsCanary{RUN}"
GARBLED, GARBLED_AVRO = f"HsGarbled{RUN}", f"HsGarbledAvro{RUN}"
ROUTE_LIMIT = 4 << 20  # the route's max_body_bytes: a 1 MB string is within it
JSON_CT = {"Content-Type": "application/json"}

# A linked list: a record whose `next` is itself or null.
LINKED = {"type": "record", "name": "Node", "namespace": "tg.hs",
          "fields": [{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"], "default": None}]}
# A recursive JSON Schema: a tree whose children are trees.
TREE_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#/definitions/t",
               "definitions": {"t": {"type": "object", "properties": {"c": {"$ref": "#/definitions/t"}},
                                     "additionalProperties": False}}}
STR_RECORD = {"type": "record", "name": "Big", "namespace": "tg.hs", "fields": [{"name": "s", "type": "string"}]}
STR_JSON = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"s": {"type": "string"}}, "required": ["s"]}


def avro_string(b):
    """Avro's encoding of bytes as a string: the length as a zigzag varint, then the bytes."""
    n, out = len(b) << 1, bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + b


def linked(depth):
    """{"v":0,"next":{"v":1,"next":…null}} `depth` records deep, in the bare-branch form."""
    return '{"v":0,"next":' * (depth - 1) + '{"v":0,"next":null}' + "}" * (depth - 1)


class Garbled:
    """A loopback HTTP server standing for a registry that answers badly, beside the real one:
    for GARBLED_AVRO's subject a well-formed version whose Avro schema does not compile (Apicurio
    refuses to store such Avro, so it cannot serve it), for any other a body that is not a
    schema version (a truncated JSON object: a broken proxy or another service at the URL)."""

    def __enter__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if GARBLED_AVRO in self.path:
                    schema = '{"type":"record","name":"Broken","fields":[{"name":"a"}]}'  # a field without a type
                    body = json.dumps({"subject": f"{GARBLED_AVRO}-value", "version": 1, "id": 7,
                                       "schema": schema}).encode()
                else:
                    body = b'{"subject":"x","version":1,"id":'
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


GARBLED_URL = {}


def register_raw(subject, schema_text, schema_type=None):
    """Registers schema text as is; returns (HTTP status, answer): a registry may refuse it."""
    body = {"schema": schema_text, **({"schemaType": schema_type} if schema_type else {})}
    req = urllib.request.Request(f"{registry_url()}/subjects/{subject}/versions", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class HostileSchemaGateway(Gateway):
    """The e2e gateway with its server route `/hs/` on the Confluent registry (4 MiB bodies) and a
    client endpoint `/v2/hsgarbled/{topic}` whose registry is the Garbled server."""

    def write_config(self):
        super().write_config()
        cfg = json.loads(self.config_path.read_text())
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"] = {**srv["core"], "registry": {"kind": "confluent", "url": registry_url(), "timeout_ms": 5000},
                       "value_format": "confluent"}
        srv["routes"] = [{"path_prefix": "/hs/", "max_body_bytes": ROUTE_LIMIT,
                          "topics": [LIST, TREE, BIG_AVRO, BIG_JSON, BAD_PROTO, BAD_JSON, CANARY]}]
        template = next(e for e in cfg["endpoints"] if e["endpoint"] == "/v2/event/{topic}")
        e = json.loads(json.dumps(template))
        e["endpoint"] = "/v2/hsgarbled/{topic}"
        block = e["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"]
        block["core"] = {**srv["core"], "registry": {"kind": "confluent", "url": GARBLED_URL["url"], "timeout_ms": 2000}}
        block["topics"] = [GARBLED, GARBLED_AVRO]
        cfg["endpoints"] = [e]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="module")
def ids():
    out = {
        "list": register(f"{LIST}-value", json.dumps(LINKED)),
        "tree": register(f"{TREE}-value", json.dumps(TREE_SCHEMA), "JSON"),
        "big_avro": register(f"{BIG_AVRO}-value", json.dumps(STR_RECORD)),
        "big_json": register(f"{BIG_JSON}-value", json.dumps(STR_JSON), "JSON"),
        "canary": register(f"{CANARY}-value", json.dumps(STR_RECORD)),
    }
    # Schema text that does not compile: Apicurio stores such JSON Schema and Protobuf as given
    # (no validity rule by default); invalid Avro it refuses (422), so the Garbled server serves that.
    for subject, text, kind in ((f"{BAD_JSON}-value", '{"$schema":"http://json-schema.org/draft-07/schema#","type":12}',
                                 "JSON"),
                                (f"{BAD_PROTO}-value", 'syntax = "proto3"; message X { strin a = 1; }', "PROTOBUF")):
        status, answer = register_raw(subject, text, kind)
        if status == 409:
            # Apicurio's in-memory store, busy with another client's registrations, can retry a
            # registration it already made and answer "already exists": then it holds the text.
            with urllib.request.urlopen(f"{registry_url()}/subjects/{subject}/versions/latest", timeout=30) as r:
                status, answer = (200, answer) if json.loads(r.read())["schema"] == text else (409, answer)
        assert status == 200, (subject, status, answer)
    status, _ = register_raw(f"{GARBLED_AVRO}-value", '{"type":"record","name":"Broken","fields":[{"name":"a"}]}')
    assert status == 422, status
    return out


@pytest.fixture(scope="module")
def hgw(ids):
    with Garbled() as g:
        GARBLED_URL["url"] = g.url
        yield from running(HostileSchemaGateway, "topicgate-e2e-hs-")


def post(gw, path, body):
    return gw.request("POST", path, body=body if isinstance(body, bytes) else body.encode(), headers=JSON_CT,
                      timeout=60)


def canary(gw, ids):
    r = post(gw, f"/hs/{CANARY}", b'{"s":"ok"}')
    assert r.status == 200, f"the gateway stopped publishing: {r}"
    [rec] = gw.read_back(CANARY, r.json()["partition"], r.json()["offset"], 1)
    assert rec.value == b"\x00" + struct.pack(">I", ids["canary"]) + b"\x04ok", rec


def rss_kib(gw):
    with open(f"/proc/{gw.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def refused(gw, r, status, *words, topic=None):
    """Asserts the answer's status and words; that no body text is echoed; nothing written."""
    assert r.status == status, r
    msg = r.json()["message"]
    for w in words:
        assert w.lower() in msg.lower(), f"message does not name {w!r}: {msg!r}"
    assert len(msg) < 2000 and "xxxxxxxx" not in msg, msg[:300]


def test_recursive_avro_compiles_and_depth_is_bounded(hgw, ids):
    r = post(hgw, f"/hs/{LIST}", linked(3))
    assert r.status == 200, r
    [rec] = hgw.read_back(LIST, r.json()["partition"], r.json()["offset"], 1)
    # v=0, union branch 1 (Node) ×2, then branch 0 (null): zigzag 0, 2, 0, 2, 0, 0.
    assert rec.value == b"\x00" + struct.pack(">I", ids["list"]) + b"\x00\x02\x00\x02\x00\x00", rec
    # Within the core's 32 levels: written; past them: 400 naming the limit, no stack overflow.
    assert post(hgw, f"/hs/{LIST}", linked(32)).status == 200
    for depth in (33, 120, 5000):
        refused(hgw, post(hgw, f"/hs/{LIST}", linked(depth)), 400,
                *(["nests deeper than 32"] if depth < 128 else ["recursion limit"]))
        canary(hgw, ids)
    assert hgw.totals(LIST)[LIST] == 2  # a fresh topic: the two written


def test_deep_json_against_a_recursive_json_schema_is_a_clear_400(hgw, ids):
    deep = lambda n: '{"c":' * n + "{}" + "}" * n  # noqa: E731
    r = post(hgw, f"/hs/{TREE}", deep(100))
    assert r.status == 200, r
    [rec] = hgw.read_back(TREE, r.json()["partition"], r.json()["offset"], 1)
    assert rec.value == b"\x00" + struct.pack(">I", ids["tree"]) + deep(100).encode(), rec[:64]
    for n in (200, 5000, 100_000):
        refused(hgw, post(hgw, f"/hs/{TREE}", deep(n)), 400, "recursion limit")
        canary(hgw, ids)
    # Off-schema deep down: a 400 naming where.
    refused(hgw, post(hgw, f"/hs/{TREE}", '{"c":' * 50 + '{"x":1}' + "}" * 50), 400)
    canary(hgw, ids)
    assert hgw.totals(TREE)[TREE] == 1


@pytest.mark.parametrize("path,topic", [("/hs/", BAD_JSON), ("/hs/", BAD_PROTO), ("/v2/hsgarbled/", GARBLED_AVRO)],
                         ids=["json-schema", "protobuf", "avro"])
def test_a_schema_that_does_not_compile_is_503_naming_it(hgw, ids, path, topic):
    for _ in range(2):  # the second is the remembered failure: the same answer
        r = post(hgw, f"{path}{topic}", b'{"a":"x"}')
        refused(hgw, r, 503, "does not compile", f"{topic}-value")
        assert r.headers.get("Retry-After"), r.headers
        canary(hgw, ids)
    assert hgw.totals(topic)[topic] in (None, 0)  # nothing written (the topic may not exist)


def test_a_registry_answer_that_is_not_a_schema_version_is_503(hgw, ids):
    r = post(hgw, f"/v2/hsgarbled/{GARBLED}", b'{"s":"x"}')
    refused(hgw, r, 503, "not a schema version", f"{GARBLED}-value")
    canary(hgw, ids)


@pytest.mark.parametrize("topic,fmt", [(BIG_AVRO, "avro"), (BIG_JSON, "json")])
def test_one_megabyte_strings_are_written_or_refused_by_the_limits_with_rss_bounded(hgw, ids, topic, fmt):
    """A 900 KB string is within every limit: written and read back whole. A 1 MiB string is within
    the route's body limit (4 MiB) but over the core's `limits.max_message_bytes` (1 MiB by
    default): 413 naming it, nothing written. Twenty of each, the gateway's RSS grows by a bounded
    amount."""
    ok = b'{"s":"' + b"y" * 900_000 + b'"}'
    big = b'{"s":"' + b"x" * (1 << 20) + b'"}'
    r = post(hgw, f"/hs/{topic}", ok)
    assert r.status == 200, r
    [rec] = hgw.read_back(topic, r.json()["partition"], r.json()["offset"], 1)
    sid = struct.pack(">I", ids["big_avro" if fmt == "avro" else "big_json"])
    payload = avro_string(b"y" * 900_000) if fmt == "avro" else ok
    assert rec.value == b"\x00" + sid + payload, (len(rec.value), rec.value[:16])
    before = rss_kib(hgw)
    for _ in range(20):
        refused(hgw, post(hgw, f"/hs/{topic}", big), 413, "limits.max_message_bytes", str(len(big)))
        assert post(hgw, f"/hs/{topic}", ok).status == 200
    growth_mib = (rss_kib(hgw) - before) / 1024
    assert growth_mib < 64, f"RSS grew {growth_mib:.0f} MiB over 40 one-megabyte bodies"
    canary(hgw, ids)
    assert hgw.totals(topic)[topic] == 21
