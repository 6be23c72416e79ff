"""End-to-end tests: the gateway binary with the real plugin, the test Kafka and moto.

The session fixture `gw` writes a krakend.json derived from krakend/krakend.json into a
temp dir, starts the gateway (TG_GATEWAY_BIN, else build/krakend when built, else
build/kdhost) on a free loopback port, and stops it at the end. Records are read back
with tests/kafka/ReadBack.java (Kafka's own Java client), never with the project's code.

Needs the environment of `make kafka-up glue-up` (.run/kafka.env, .run/glue.env);
`make test-e2e` sets it up. A missing server is an error, never a skip.
"""

import base64
import copy
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
READBACK = "tests/kafka/ReadBack.java"
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
GLUE_REGISTRY = "topicgate-tests"  # the one registry the tests use (moto allows 10)

# The classic example: `{"sample_message": "hello world"}` under CLASSIC_PROTO.
CLASSIC_PROTO = """syntax = "proto3";
package events.v1;
message Event {
  string sample_message = 1;
  int64 count = 2;
  Detail detail = 3;
}
message Detail { string note = 1; }
"""
# A schema with one field of each kind the hostile-input cases aim at (tests/e2e/test_hostile.py).
RICH_PROTO = """syntax = "proto3";
package events.v1;
enum Level { LEVEL_UNSPECIFIED = 0; LOW = 1; HIGH = 2; }
message Rich {
  string name = 1;
  int32 small = 2;
  uint32 positive = 3;
  int64 big = 4;
  double ratio = 5;
  bool flag = 6;
  Level level = 7;
  repeated string tags = 8;
  map<string, string> attrs = 9;
  Rich child = 10;
  bytes blob = 11;
  float f = 12;
  string display_name = 13;
}
"""
# The Glue message-index case (tests/e2e/test_glue_aws_reader.py): AWS numbers every message type of
# the file, map entries included, sorted by full name: Order 0, Order.Address 1, Order.Item 2,
# Order.LabelsEntry 3, Shipment 4.
GC_PROTO = """syntax = "proto3";
package gc.v1;
message Order {
  string id = 1;
  map<string, string> labels = 2;
  message Item { string sku = 1; int32 qty = 2; }
  message Address { string city = 1; string street = 2; }
  repeated Item items = 3;
  Address ship_to = 4;
}
message Shipment {
  string order_id = 1;
  string carrier = 2;
  Order.Address to = 3;
  bool express = 4;
}
"""
# Client endpoints publishing GC_PROTO's messages with value_format "glue": (path segment,
# schema.message_type, glue_compression); the path is /v3/gc/<segment>/{topic}, the topic
# gw.gc_topics[segment], each with GC_PROTO under its own name in Glue. One topic per endpoint:
# two cores that cache one schema name would report its metrics twice (/__topicgate/metrics 500).
GC_ROUTES = [
    (f"{name}-{compression}", message_type, compression)
    for name, message_type in [("order", "first"), ("shipment", "gc.v1.Shipment"), ("item", "gc.v1.Order.Item")]
    for compression in ["none", "zlib"]
]
# Avro and JSON Schema from Glue with value_format "glue" (tests/e2e/test_glue_aws_reader.py):
# (path segment, DataFormat, glue_compression); the path is /v3/gf/<segment>/{topic}, the topic
# gw.gf_topics[segment], each with its format's schema under its own name in Glue.
GF_AVRO = """{"type":"record","name":"Parcel","namespace":"gf.v1","fields":[
  {"name":"id","type":"string"},
  {"name":"weight_g","type":"long"},
  {"name":"price","type":"double"},
  {"name":"fragile","type":"boolean"},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","SHIPPED","LOST"]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"to","type":{"type":"record","name":"Address","fields":[
    {"name":"city","type":"string"},{"name":"zip","type":["null","string"],"default":null}]}},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"attempts","type":"int","default":1}]}"""
GF_JSON = """{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
  "required":["id","items","to"],
  "properties":{"id":{"type":"string"},"express":{"type":"boolean"},"total":{"type":"number"},
    "items":{"type":"array","items":{"type":"object","required":["sku","qty"],
      "properties":{"sku":{"type":"string"},"qty":{"type":"integer","minimum":1}}}},
    "to":{"type":"object","properties":{"city":{"type":"string"},"lines":{"type":"array","items":{"type":"string"}}}},
    "note":{"type":["string","null"]}}}"""
# Registered compact, as Avro's Schema.toString and Jackson print them: AWS's serializer finds the
# schema version by that text (test_glue_aws_reader.py's byte-identity check).
GF_AVRO, GF_JSON = (json.dumps(json.loads(text), separators=(",", ":")) for text in (GF_AVRO, GF_JSON))
GF_ROUTES = [
    (f"{fmt}-{compression}", data_format, compression)
    for fmt, data_format in [("avro", "AVRO"), ("json", "JSON")]
    for compression in ["none", "zlib"]
]
# A Glue-registered Avro key schema under `<topic>-key` (the core's default key_schema name) with
# GF_AVRO as the value, value_format glue, on /v3/gk/{topic} for gw.gk_topic (test_glue_aws_reader.py).
GK_KEY_AVRO = json.dumps({"type": "record", "name": "ParcelKey", "namespace": "gf.v1",
                          "fields": [{"name": "id", "type": "string"}, {"name": "shard", "type": "int"}]},
                         separators=(",", ":"))
CLASSIC_BODY = b'{"sample_message":"hello world"}'
# Field 1, wire type 2 (0x0a), length 11, the UTF-8 bytes: worked out by hand.
CLASSIC_VALUE = b"\x0a\x0bhello world"
CLASSIC_HEADERS = {
    "message-key": "messageKey",
    "message-headers": "my_key=myvalue,my_other_key=42",
    "Content-Type": "application/json",
}
CLASSIC_RECORD_HEADERS = [("my_key", b"myvalue"), ("my_other_key", b"42")]

SMALL_LIMIT = 48  # max_body_bytes of the /v1/small/ route
BATCH_TOPICS = "Batch[0-9a-f]{12}"  # the topics of the batch routes (test_batch.new_topic)
TIGHT_RECORDS, TIGHT_BODY = 5, 400  # batch limits of the /v1/tight/ route
ATOMIC_MAX_RECORD = 2000  # message.max.bytes of the /v2/atomic/ endpoint's producer
V3_MAX_RECORDS = 50  # batch.max_records of the /kafka/v3/ route
STREAM_LINE, STREAM_IDLE_MS = 4096, 1000  # line limit and idle timeout of the /v1/stream/ route
DOWN_RETRY_AFTER = 7  # retry_after_seconds of the broker-down endpoint


def _env(name):
    v = os.environ.get(name, "")
    if not v:
        raise RuntimeError(
            f"{name} is not set: start the test servers with `make kafka-up glue-up` and source "
            ".run/kafka.env and .run/glue.env (`make test-e2e` does both)"
        )
    return v


def gateway_binary():
    """TG_GATEWAY_BIN, else build/krakend if built, else build/kdhost."""
    explicit = os.environ.get("TG_GATEWAY_BIN")
    if explicit:
        return Path(explicit) if os.path.isabs(explicit) else ROOT / explicit
    krakend = ROOT / "build" / "krakend"
    if krakend.is_file() and os.access(krakend, os.X_OK):
        return krakend
    return ROOT / "build" / "kdhost"


def pytest_sessionstart(session):
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    line = f"topicgate e2e: gateway binary {gateway_binary()}"
    if tr is not None:
        tr.write_line(line)
    else:
        print(line)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"not a JSON body (HTTP {self.status}): {self.body[:500]!r}")

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


class Record:
    def __init__(self, line):
        v = json.loads(line)
        self.topic = v["topic"]
        self.partition = v["partition"]
        self.offset = v["offset"]
        self.key = None if v["key_b64"] is None else base64.b64decode(v["key_b64"])
        self.value = None if v["value_b64"] is None else base64.b64decode(v["value_b64"])
        self.headers = [
            (h["key"], None if h["value_b64"] is None else base64.b64decode(h["value_b64"])) for h in v["headers"]
        ]

    def __repr__(self):
        return f"<Record {self.topic}/{self.partition}@{self.offset} key={self.key!r} value={self.value!r} headers={self.headers!r}>"


def client_endpoint(template, path, block):
    """A copy of the endpoint `template` served at `path`, its backend's topicgate block `block`."""
    e = copy.deepcopy(template)
    e["endpoint"] = path
    e["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"] = block
    return e


def v3_endpoint(template, path, block):
    """`client_endpoint` for a Confluent v3 block: `<path>/clusters/{cluster_id}/topics/{topic}/records`."""
    e = client_endpoint(template, path + "/clusters/{cluster_id}/topics/{topic}/records", block)
    e["backend"][0]["url_pattern"] = "/clusters/{cluster_id}/topics/{topic}/records"
    return e


def client_block(cfg, core, topics):
    """cfg's `/v2/event/{topic}` endpoint and a copy of its topicgate block with `core` and `topics`."""
    template = next(e for e in cfg["endpoints"] if e["endpoint"] == "/v2/event/{topic}")
    block = copy.deepcopy(template["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"])
    block["core"], block["topics"] = core, topics
    return template, block


def client(cfg, path, core, topics):
    """A client-mounting endpoint at `path` like cfg's `/v2/event/{topic}`, with its own core and topics."""
    template, block = client_block(cfg, core, topics)
    return client_endpoint(template, path, block)


class Gateway:
    """The running gateway plus the topics, schemas and helpers of this run."""

    def __init__(self, tmp):
        self.run_id = uuid.uuid4().hex[:10]
        self.tmp = tmp
        self.bin = gateway_binary()
        self.bootstrap = _env("KAFKA_BOOTSTRAP")
        self.classpath = _env("KAFKA_CLASSPATH")
        self.glue_endpoint = _env("AWS_ENDPOINT_URL_GLUE")
        # Topics (unique per run; Kafka auto-creates a topic on the first record).
        self.topic = f"MyTopic{self.run_id}"  # classic topic, .proto in the schema dir
        self.no_schema_topic = f"NoSchema{self.run_id}"  # allowed, no .proto
        self.rich_topic = f"Rich{self.run_id}"  # RICH_PROTO, .proto in the schema dir
        # The example's Avro and JSON Schema files (krakend/schemas), under this run's topic names.
        self.avro_topic = f"MyAvroTopic{self.run_id}"
        self.json_topic = f"MyJsonTopic{self.run_id}"
        self.not_exposed_topic = f"NotExposed{self.run_id}"  # allowed nowhere
        self.glue_topic = f"GlueTopic{self.run_id}"  # schema in Glue (moto)
        self.glue_no_schema_topic = f"GlueNoSchema{self.run_id}"  # allowed, not in Glue
        # GC_PROTO in Glue, value_format glue: one topic per GC_ROUTES endpoint.
        self.gc_topics = {segment: f"GlueGc-{segment}-{self.run_id}" for segment, _, _ in GC_ROUTES}
        # GF_AVRO / GF_JSON in Glue, value_format glue: one topic per GF_ROUTES endpoint.
        self.gf_topics = {segment: f"GlueGf-{segment}-{self.run_id}" for segment, _, _ in GF_ROUTES}
        self.gk_topic = f"GlueGk-{self.run_id}"  # GF_AVRO values, GK_KEY_AVRO keys (key_schema), Glue-framed
        self.schema_dir = tmp / "schemas"
        self.config_path = tmp / "krakend.json"
        self.log_path = tmp / "gateway.log"
        self.port = None
        self.proc = None
        self._log = None
        self._closed_port_sock = None

    # ---- setup / teardown -------------------------------------------------------------

    def write_schemas(self):
        self.schema_dir.mkdir()
        (self.schema_dir / f"{self.topic}.proto").write_text(CLASSIC_PROTO)
        (self.schema_dir / f"{self.rich_topic}.proto").write_text(RICH_PROTO)
        examples = ROOT / "krakend" / "schemas"
        shutil.copyfile(examples / "MyAvroTopic.avsc", self.schema_dir / f"{self.avro_topic}.avsc")
        shutil.copyfile(examples / "MyJsonTopic.json", self.schema_dir / f"{self.json_topic}.json")

    def glue_client(self):
        return boto3.client("glue", region_name="us-east-1", endpoint_url=self.glue_endpoint)

    def create_glue_schema(self):
        glue = self.glue_client()
        try:
            glue.create_registry(RegistryName=GLUE_REGISTRY)
        except glue.exceptions.AlreadyExistsException:
            pass
        schemas = [(self.glue_topic, CLASSIC_PROTO, "PROTOBUF")]
        schemas += [(t, GC_PROTO, "PROTOBUF") for t in self.gc_topics.values()]
        for segment, data_format, _ in GF_ROUTES:
            schemas.append((self.gf_topics[segment], GF_AVRO if data_format == "AVRO" else GF_JSON, data_format))
        schemas += [(self.gk_topic, GF_AVRO, "AVRO"), (f"{self.gk_topic}-key", GK_KEY_AVRO, "AVRO")]
        for name, definition, data_format in schemas:
            glue.create_schema(
                RegistryId={"RegistryName": GLUE_REGISTRY},
                SchemaName=name,
                DataFormat=data_format,
                Compatibility="NONE",
                SchemaDefinition=definition,
            )

    def delete_glue_schema(self):
        for name in [self.glue_topic, *self.gc_topics.values(), *self.gf_topics.values(), self.gk_topic,
                     f"{self.gk_topic}-key"]:
            try:
                self.glue_client().delete_schema(SchemaId={"RegistryName": GLUE_REGISTRY, "SchemaName": name})
            except Exception:  # best effort: moto may have been reset meanwhile
                pass

    def closed_port(self):
        """A loopback port that refuses connections: bound (so nobody else takes it), never listening."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        self._closed_port_sock = s
        return s.getsockname()[1]

    def write_config(self):
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        server = base["extra_config"]["plugin/http-server"]["topicgate"]
        example_endpoint = base["endpoints"][0]

        def core(bootstrap=None, registry=None, **extra):
            c = copy.deepcopy(server["core"])
            c["kafka"]["bootstrap_servers"] = bootstrap or self.bootstrap
            c["registry"] = registry or {"kind": "file", "directory": str(self.schema_dir)}
            c.update(extra)
            return c

        cfg = copy.deepcopy(base)
        cfg["name"] = f"topicgate e2e {self.run_id}"
        cfg["port"] = self.port
        cfg["listen_ip"] = "127.0.0.1"  # KrakenD's key; kdhost ignores it
        cfg["plugin"]["folder"] = str(ROOT / "build") + "/"
        srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"] = core()
        # Batch tests (test_batch.py) make a topic, and its .proto, per case: BATCH_TOPICS names them.
        srv["routes"] = [
            {"path_prefix": "/v1/event/",
             "topics": [self.topic, self.no_schema_topic, self.rich_topic, self.avro_topic, self.json_topic]},
            {"path_prefix": "/v1/small/", "topics": [self.topic], "max_body_bytes": SMALL_LIMIT},
            {"path_prefix": "/v1/batch/", "topic_pattern": BATCH_TOPICS},
            {"path_prefix": "/v1/partial/", "topic_pattern": BATCH_TOPICS, "batch": {"partial": True}},
            {"path_prefix": "/v1/envelope/", "topic_pattern": BATCH_TOPICS, "batch": {"envelope": True}},
            {"path_prefix": "/v1/atomic/", "topic_pattern": BATCH_TOPICS, "batch": {"atomic": True}},
            # Streams (test_stream.py): a short idle timeout, lines of at most STREAM_LINE bytes.
            {"path_prefix": "/v1/stream/", "topic_pattern": BATCH_TOPICS, "max_body_bytes": STREAM_LINE,
             "batch": {"stream": {"idle_timeout_ms": STREAM_IDLE_MS}}},
            {"path_prefix": "/v1/tight/", "topic_pattern": BATCH_TOPICS, "max_body_bytes": 64,
             "batch": {"max_records": TIGHT_RECORDS, "max_body_bytes": TIGHT_BODY}},
            # Confluent REST Proxy v3 (test_confluent.py).
            {"path_prefix": "/kafka/v3/", "api": "confluent-v3", "topic_pattern": BATCH_TOPICS,
             "batch": {"max_records": V3_MAX_RECORDS}},
        ]
        file_block = copy.deepcopy(example_endpoint["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"])
        file_block["core"] = core()  # same core as the server plugin: one shared producer
        file_block["topics"] = [self.topic]
        glue_block = copy.deepcopy(file_block)
        glue_block["core"] = core(
            registry={
                "kind": "glue",
                "registry_name": GLUE_REGISTRY,
                "region": "us-east-1",
                "endpoint_url": self.glue_endpoint,
            },
            value_format="raw",
        )
        glue_block["topics"] = [self.glue_topic, self.glue_no_schema_topic]
        gc_endpoints = []
        for segment, message_type, compression in GC_ROUTES:
            block = copy.deepcopy(glue_block)
            block["core"]["value_format"] = "glue"
            block["core"]["glue_compression"] = compression
            block["core"]["schema"]["message_type"] = message_type
            block["topics"] = [self.gc_topics[segment]]
            gc_endpoints.append(client_endpoint(example_endpoint, f"/v3/gc/{segment}/{{topic}}", block))
        for segment, _, compression in GF_ROUTES:
            block = copy.deepcopy(glue_block)
            block["core"]["value_format"] = "glue"
            block["core"]["glue_compression"] = compression
            block["core"].get("schema", {}).pop("message_type", None)  # Avro and JSON name no message type
            block["topics"] = [self.gf_topics[segment]]
            gc_endpoints.append(client_endpoint(example_endpoint, f"/v3/gf/{segment}/{{topic}}", block))
        gk_block = copy.deepcopy(glue_block)
        gk_block["core"]["value_format"] = "glue"
        gk_block["core"]["key_schema"] = {}
        gk_block["core"].get("schema", {}).pop("message_type", None)
        gk_block["topics"] = [self.gk_topic]
        gc_endpoints.append(client_endpoint(example_endpoint, "/v3/gk/{topic}", gk_block))
        down_block = copy.deepcopy(file_block)
        down_block["core"] = core(bootstrap=f"127.0.0.1:{self.closed_port()}", delivery_timeout_ms=1500)
        down_block["retry_after_seconds"] = DOWN_RETRY_AFTER
        # The broker is unreachable and the core would answer at 20 s; the endpoint's 1 s timeout comes first.
        cut_block = copy.deepcopy(down_block)
        cut_block["core"]["delivery_timeout_ms"] = 20000
        cut_endpoint = client_endpoint(example_endpoint, "/v3/cut/{topic}", cut_block)
        cut_endpoint["timeout"] = "1s"
        # An atomic batch on the unreachable broker: the commit would give up at 20 s; the endpoint's
        # 1 s deadline is passed to it, so topicgate's 503 reaches the client, not KrakenD's bare 500.
        atomic_cut_block = copy.deepcopy(cut_block)
        atomic_cut_block["core"]["transactions"] = {"timeout_ms": 20000}
        atomic_cut_block["batch"] = {"atomic": True}
        atomic_cut_endpoint = client_endpoint(example_endpoint, "/v2/atomiccut/{topic}", atomic_cut_block)
        atomic_cut_endpoint["timeout"] = "1s"
        batch_block = copy.deepcopy(file_block)
        del batch_block["topics"]
        batch_block["topic_pattern"] = BATCH_TOPICS
        # All or nothing through the client mounting, on a producer whose records may be at most
        # 2000 bytes: a larger one fails its batch's transaction part-way.
        atomic_block = copy.deepcopy(batch_block)
        atomic_block["core"] = core(kafka={"bootstrap_servers": self.bootstrap,
                                           "properties": {"message.max.bytes": ATOMIC_MAX_RECORD}})
        atomic_block["batch"] = {"atomic": True}
        v3_block = copy.deepcopy(batch_block)
        v3_block["api"] = "confluent-v3"
        v3_down_block = copy.deepcopy(down_block)
        v3_down_block["api"] = "confluent-v3"

        cfg["endpoints"] = [
            v3_endpoint(example_endpoint, "/cv3", v3_block),
            v3_endpoint(example_endpoint, "/cv3down", v3_down_block),
            client_endpoint(example_endpoint, "/v2/event/{topic}", file_block),  # the client-style path of krakend.json
            client_endpoint(example_endpoint, "/v2/batch/{topic}", batch_block),
            client_endpoint(example_endpoint, "/v2/atomic/{topic}", atomic_block),
            client_endpoint(example_endpoint, "/v3/glue/{topic}", glue_block),
            client_endpoint(example_endpoint, "/v3/down/{topic}", down_block),
            cut_endpoint,
            atomic_cut_endpoint,
            *gc_endpoints,
        ]
        self.config_path.write_text(json.dumps(cfg, indent=2))

    def start(self):
        if not (self.bin.is_file() and os.access(self.bin, os.X_OK)):
            raise RuntimeError(f"gateway binary {self.bin} is missing: run `make plugin kdhost`")
        if not (ROOT / "build" / "topicgate.so").is_file():
            raise RuntimeError("build/topicgate.so is missing: run `make plugin`")
        self.port = _free_port()
        self.write_schemas()
        self.create_glue_schema()
        self.write_config()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.bin), "run", "-c", str(self.config_path), "-p", str(self.port)],
            cwd=ROOT,
            # KrakenD CE sends usage statistics to an outside host unless told not to.
            env={**os.environ, "USAGE_DISABLE": "1"},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode} while starting:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not listen on 127.0.0.1:{self.port} within 30 s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
        if self._closed_port_sock is not None:
            self._closed_port_sock.close()
        self.delete_glue_schema()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError as e:
            return f"(no gateway log: {e})"

    # ---- HTTP ---------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def post(self, path, body=CLASSIC_BODY, headers=None):
        return self.request("POST", path, body=body, headers=CLASSIC_HEADERS if headers is None else headers)

    def metrics(self):
        """{(sample name, frozenset(labels)): value} of one scrape of the plugin's metrics, parsed by
        prometheus_client (an independent parser)."""
        from prometheus_client.parser import text_string_to_metric_families
        r = self.request("GET", "/__topicgate/metrics")
        assert r.status == 200, r
        return {(s.name, frozenset(s.labels.items())): s.value
                for fam in text_string_to_metric_families(r.body.decode()) for s in fam.samples}

    # ---- Kafka, through Kafka's own Java client ---------------------------------------

    def _java(self, *args):
        return ["java", *JVM_FLAGS, "-cp", self.classpath, READBACK, *map(str, args)]

    def read_back(self, topic, partition, offset, count, timeout_ms=20000):
        """`count` records of topic/partition from `offset` on, as Records."""
        out = subprocess.run(
            self._java(self.bootstrap, topic, partition, offset, count, timeout_ms),
            cwd=ROOT,
            capture_output=True,
            timeout=timeout_ms / 1000 + 30,
        )
        assert out.returncode == 0, f"ReadBack failed: {out.stderr.decode(errors='replace')}"
        return [Record(line) for line in out.stdout.decode().splitlines() if line.strip()]

    def totals(self, *topics):
        """{topic: records ever written (sum over partitions), or None if the topic does not exist}.

        The topics are counted by parallel JVMs (one JVM start each, ~2-3 s)."""
        procs = {
            t: subprocess.Popen(
                self._java("--count", self.bootstrap, t, 15000),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for t in topics
        }
        result = {}
        for t, p in procs.items():
            try:
                out, err = p.communicate(timeout=45)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise AssertionError(f"ReadBack --count {t} did not finish in 45 s")
            lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
            totals = [line["total"] for line in lines if "total" in line]
            if p.returncode == 1 and not totals and b"topic not found" in err:
                result[t] = None
                continue
            assert p.returncode == 0 and totals, f"ReadBack --count {t} failed ({p.returncode}): {err.decode(errors='replace')}"
            result[t] = totals[0]
        return result


class Stream:
    """One streamed request on its own connection: the body goes in chunks as the test sends them,
    and the answer's lines are read as they arrive. NDJSON by default; content_type
    "application/json" with accept None is Confluent v3's streaming mode (answers end in "\r\n")."""

    def __init__(self, gw, path, key="stream-key", headers="h=1", timeout=60,
                 content_type="application/x-ndjson", accept="application/x-ndjson"):
        self.conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)
        self.conn.putrequest("POST", path)
        self.answer_type = accept or content_type
        hdrs = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        if accept is not None:
            hdrs["Accept"] = accept
        if key is not None:
            hdrs["message-key"] = key
        if headers is not None:
            hdrs["message-headers"] = headers
        for k, v in hdrs.items():
            self.conn.putheader(k, v)
        self.conn.endheaders()
        # http.client drops its socket once an answer says "Connection: close" (a stream taken
        # over from net/http does) and would send the rest on a new connection: keep our own.
        self.sock = self.conn.sock
        self.resp = None

    def send(self, data):
        if data:
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def end(self):
        self.sock.sendall(b"0\r\n\r\n")

    def response(self):
        if self.resp is None:
            self.resp = self.conn.getresponse()
            assert self.resp.status == 200, (self.resp.status, self.resp.read())
            assert self.resp.getheader("Content-Type").startswith(self.answer_type), self.resp.getheaders()
        return self.resp

    def lines(self, n):
        """The next n answer lines."""
        out = []
        for _ in range(n):
            line = self.response().readline()
            assert line.endswith(b"\n"), f"the answer ended after {len(out)} of {n} lines: {line!r}"
            out.append(json.loads(line))
        return out

    def rest(self):
        """The answer's remaining lines, to its end."""
        out = [json.loads(line) for line in self.response().read().splitlines() if line.strip()]
        self.conn.close()
        self.sock.close()
        return out


def metric(snap, name, **labels):
    """The sample `name` of a Gateway.metrics() snapshot whose labels include `labels` (summed if
    several match; 0 if none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in snap.items() if n == name and want <= set(ls))


def running(gateway_class, prefix):
    """Starts a gateway_class(tmp) in a new temp dir, yields it, stops it (for session fixtures)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    g = gateway_class(tmp)
    _state["gateway"] = g
    try:
        g.start()
        yield g
    finally:
        g.stop()
        _state.pop("gateway", None)
        if os.environ.get("TG_E2E_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def gw():
    yield from running(Gateway, "topicgate-e2e-")


_state = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    g = _state.get("gateway")
    if rep.failed and g is not None and rep.when in ("setup", "call"):
        rep.sections.append(("gateway log (" + str(g.log_path) + ")", g.log()))
