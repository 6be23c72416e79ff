#!/usr/bin/env python3
"""make bench: every contender, one run, the same ~1 KB payload and concurrency levels.

Python standard library only. `make bench` builds the pieces and calls this with the test broker's
environment (.run/kafka.env). Each step runs against its own fresh topic; after the run Kafka's own
Admin client (bench/KafkaTopics.java) counts the records on every topic, and a step whose count differs
from its number of 200 answers makes the run fail (a benchmark that loses records is void).

Environment: KAFKA_BOOTSTRAP, KAFKA_CLASSPATH (required); VEGETA, VEGETA_VERSION (load generator);
BENCH_SECONDS (default 6: length of each measured step), BENCH_ROUNDS (default 3: saturation rounds),
BENCH_CONCURRENCY (default "32"), BENCH_PARTITIONS (default 3), BENCH_ONLY (comma-separated contender
ids, for trying things out; it may also name the OPTIONAL contenders, which never run by default).

Saturation is measured in rounds: each round runs every contender once at each concurrency level,
starting one contender further along each time, and a contender's req/s is its median over the
rounds. A ratio is the median of the per-round ratios: both sides of each were measured a minute
apart at most, so the load other programs put on the machine weighs on both alike.
"""

import copy
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
BENCH_BUILD = BUILD / "bench"
PAYLOAD = ROOT / "bench" / "payload.json"
SCHEMA = ROOT / "krakend" / "schemas" / "MyTopic.proto"
# Issue #23: the same payload through the example Avro and JSON Schema schemas (same fields).
FORMAT_SCHEMAS = {
    "protobuf": SCHEMA,
    "avro": ROOT / "krakend" / "schemas" / "MyAvroTopic.avsc",
    "json-schema": ROOT / "krakend" / "schemas" / "MyJsonTopic.json",
}
RESULTS = ROOT / "bench" / "results"
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
WARMUP_S = 1.0  # before each measured step; its records are counted, its timings are not
# Before the first step: a broker that has just started spends tens of seconds in its JIT, a tax on
# whichever contender would meet it first.
BROKER_WARMUP_S = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The gateway every HTTP contender runs in: TG_GATEWAY_BIN (make bench sets it with
# scripts/gateway.sh), else real KrakenD when build/krakend exists, else kdhost.
GATEWAY = Path(os.environ.get("TG_GATEWAY_BIN") or (BUILD / "krakend" if (BUILD / "krakend").is_file() else BUILD / "kdhost"))
REAL_KRAKEND = not subprocess.run([GATEWAY, "version"], capture_output=True, text=True).stdout.startswith("kdhost")
# KrakenD's own logging setting (kdhost reads it too): no per-request log lines in a measurement.
QUIET_LOGGING = {"telemetry/logging": {"level": "WARNING", "stdout": True}}
ACKS1 = {"acks": "1", "enable.idempotence": False}
GOGC400 = {"GOGC": "400"}
# BENCH_PROPERTIES: a JSON object of librdkafka properties added to every topicgate contender, for experiments.
EXTRA_PROPERTIES = json.loads(os.environ.get("BENCH_PROPERTIES") or "{}")

BATCH = 100  # records per request of the batch contender
# id, label in the table, kind, details. Order = order of the table.
CONTENDERS = [
    ("ceiling", "ceiling", "gateway", {"mount": "client", "dry_run": True}),
    # On real KrakenD: its built-in backend/pubsub/publisher; on kdhost: a stand-in plugin (labelled so).
    ("krakend-pubsub", "krakend-pubsub" if REAL_KRAKEND else "krakend-pubsub-standin*", "gateway",
     {"mount": "pubsub" if REAL_KRAKEND else "pubsub-standin"}),
    ("topicgate-backend", "topicgate-backend", "gateway", {"mount": "client"}),
    # The same route and payload with an Avro and a JSON Schema schema instead of Protobuf (issue #23).
    ("topicgate-backend-avro", "topicgate-backend Avro", "gateway", {"mount": "client", "format": "avro"}),
    ("topicgate-backend-jsonschema", "topicgate-backend JSON Schema", "gateway", {"mount": "client", "format": "json-schema"}),
    # The same without metrics (no server block serves them, so nothing is recorded).
    ("topicgate-backend-nometrics", "topicgate-backend, metrics off", "gateway", {"mount": "client", "metrics": False}),
    ("topicgate-backend-acks1", "topicgate-backend-acks1", "gateway", {"mount": "client", "properties": ACKS1}),
    ("topicgate-server", "topicgate-server", "gateway", {"mount": "server"}),
    # The same gateways with GOGC=400 in the gateway's environment (bench/README.md, "Where the time
    # goes"): KrakenD's no-op pipeline allocates 32 KB per request, so the client mounting is GC-bound.
    ("krakend-pubsub-gogc400", "krakend-pubsub GOGC=400" if REAL_KRAKEND else "krakend-pubsub-standin* GOGC=400", "gateway",
     {"mount": "pubsub" if REAL_KRAKEND else "pubsub-standin", "env": GOGC400}),
    ("topicgate-backend-gogc400", "topicgate-backend GOGC=400", "gateway", {"mount": "client", "env": GOGC400}),
    ("topicgate-backend-acks1-gogc400", "topicgate-backend-acks1 GOGC=400", "gateway",
     {"mount": "client", "properties": ACKS1, "env": GOGC400}),
    # Batches: 100 records of the payload per request (application/x-ndjson); its req/s column is records/s.
    ("topicgate-batch", f"topicgate-backend batch of {BATCH} (records/s)", "gateway", {"mount": "client", "batch": BATCH}),
    # The same batches through the http-server mounting, which skips KrakenD's endpoint pipeline.
    ("topicgate-server-batch", f"topicgate-server batch of {BATCH} (records/s)", "gateway", {"mount": "server", "batch": BATCH}),
    # Streams (bench/streamload): one NDJSON stream per connection, answered line by line; records/s.
    # Streams need the http-server mounting (KrakenD buffers a backend's answer).
    ("topicgate-stream", "topicgate-server stream (records/s)", "gateway", {"mount": "server", "stream": True}),
    ("core-ffi", "core-ffi", "ffi", {}),
    ("rdkafka-bare", "rdkafka-bare", "bare", {}),
    # The same producer sending asynchronously: delivery reports collected, no per-record wait.
    ("rdkafka-bare-async", "rdkafka-bare async", "bare", {"env": {"BENCH_ASYNC": "1"}}),
]
# Experiments measured side by side with the contenders above, named in BENCH_ONLY: librdkafka's
# linger.ms 0 instead of topicgate's default 1 (bench/README.md, "Where the time goes").
LINGER0 = {"linger.ms": "0"}
OPTIONAL = [
    ("topicgate-backend-linger0", "topicgate-backend-linger0", "gateway", {"mount": "client", "properties": LINGER0}),
    ("topicgate-backend-acks1-linger0", "topicgate-backend-acks1-linger0", "gateway",
     {"mount": "client", "properties": {**ACKS1, **LINGER0}}),
    ("topicgate-backend-acks1-linger0-gogc400", "topicgate-backend-acks1-linger0 GOGC=400", "gateway",
     {"mount": "client", "properties": {**ACKS1, **LINGER0}, "env": GOGC400}),
    ("ceiling-gogc400", "ceiling GOGC=400", "gateway", {"mount": "client", "dry_run": True, "env": GOGC400}),
    ("topicgate-server-gogc400", "topicgate-server GOGC=400", "gateway", {"mount": "server", "env": GOGC400}),
]
RATIOS = [
    ("topicgate-backend-avro", "topicgate-backend"),
    ("topicgate-backend-jsonschema", "topicgate-backend"),
    ("topicgate-batch", "topicgate-backend"),
    ("topicgate-batch", "rdkafka-bare-async"),
    ("topicgate-server-batch", "rdkafka-bare-async"),
    ("topicgate-stream", "topicgate-batch"),
    ("topicgate-stream", "rdkafka-bare-async"),
    ("topicgate-backend", "topicgate-backend-nometrics"),
    ("topicgate-backend", "ceiling"),
    ("topicgate-backend", "krakend-pubsub"),
    ("topicgate-backend-acks1", "krakend-pubsub"),
    ("core-ffi", "rdkafka-bare"),
    ("topicgate-backend-linger0", "topicgate-backend"),
    ("topicgate-backend-acks1-linger0", "krakend-pubsub"),
    ("topicgate-backend-gogc400", "krakend-pubsub-gogc400"),
    ("topicgate-backend-acks1-gogc400", "krakend-pubsub-gogc400"),
    ("topicgate-backend-acks1-linger0-gogc400", "krakend-pubsub-gogc400"),
    ("ceiling", "krakend-pubsub"),
    ("ceiling-gogc400", "krakend-pubsub-gogc400"),
]


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def env_required(name):
    v = os.environ.get(name, "")
    if not v:
        sys.exit(f"bench: {name} is not set (run through `make bench`, which starts the test broker)")
    return v


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, log_path, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while starting:\n{log_path.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s:\n{log_path.read_text()[-4000:]}")


def per_10k(seconds, records):
    """CPU seconds per 10,000 records, or None without records."""
    return round(seconds / records * 10000, 3) if records else None


def broker_pid():
    """The test broker's JVM (scripts/kafka.sh writes .run/kafka.pid), to charge it its share of CPU."""
    try:
        return int((ROOT / ".run" / "kafka.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def broker_cpu_seconds():
    pid = broker_pid()
    try:
        return cpu_seconds(pid) if pid else 0.0
    except OSError:
        return 0.0


def cpu_seconds(pid):
    """user+sys CPU seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Bench:
    def __init__(self):
        self.bootstrap = env_required("KAFKA_BOOTSTRAP")
        self.classpath = env_required("KAFKA_CLASSPATH")
        self.vegeta = os.environ.get("VEGETA", "vegeta")
        self.seconds = float(os.environ.get("BENCH_SECONDS") or 6)
        self.rounds = int(os.environ.get("BENCH_ROUNDS") or 3)
        self.levels = [int(x) for x in (os.environ.get("BENCH_CONCURRENCY") or "32").split(",")]
        self.partitions = int(os.environ.get("BENCH_PARTITIONS") or 3)
        only = [x for x in (os.environ.get("BENCH_ONLY") or "").split(",") if x]
        unknown = set(only) - {c[0] for c in CONTENDERS + OPTIONAL}
        if unknown:
            sys.exit(f"bench: BENCH_ONLY names unknown contenders: {', '.join(sorted(unknown))}")
        self.contenders = [c for c in CONTENDERS + OPTIONAL if c[0] in only] if only else list(CONTENDERS)
        if not (0 < self.seconds <= 600) or not (1 <= self.rounds <= 20) or not self.levels or not all(0 < c <= 1024 for c in self.levels):
            sys.exit("bench: BENCH_SECONDS must be in (0, 600], BENCH_ROUNDS in 1..20, BENCH_CONCURRENCY levels in 1..1024")
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
        self.work = BENCH_BUILD / f"run-{self.run_id}"
        self.schema_dir = self.work / "schemas"
        self.schema_dir.mkdir(parents=True)
        self.value_file = self.work / "value.bin"  # the core's encoding of the payload, read back from Kafka
        self.steps = []  # every measured step, with its topic and the 200s it got

    # ---- topics ----------------------------------------------------------------------------

    def topic_name(self, cid, phase):
        return f"tgbench-{self.run_id}-{cid}-{phase}"

    def new_topic(self, cid, phase):
        """The topic's name; its schema (the contender's format) goes into the file registry
        (schema name = topic)."""
        t = self.topic_name(cid, phase)
        known = [c for c in CONTENDERS + OPTIONAL if c[0] == cid]
        schema = FORMAT_SCHEMAS[known[0][3].get("format", "protobuf") if known else "protobuf"]
        shutil.copyfile(schema, self.schema_dir / f"{t}{schema.suffix}")
        return t

    def payload(self, details):
        """The request body: bench/payload.json; for JSON Schema the same message with event_id as a
        JSON integer, as the example schema types it (Protobuf's int64 and Avro's long take the
        string the payload has)."""
        if details.get("format") != "json-schema":
            return PAYLOAD
        path = self.work / "payload-json-schema.json"
        if not path.exists():
            text = PAYLOAD.read_text()
            changed = text.replace('"event_id":"918273645501"', '"event_id":918273645501')
            if changed == text:
                raise RuntimeError("bench/payload.json no longer has the event_id the JSON Schema payload changes")
            path.write_text(changed)
        return path

    def kafka_topics(self, *args):
        out = subprocess.run(
            ["java", *JVM_FLAGS, "-cp", self.classpath, str(ROOT / "bench" / "KafkaTopics.java"), *args],
            capture_output=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"KafkaTopics {args[0]} failed: {out.stderr.decode(errors='replace')[-3000:]}")
        return json.loads(out.stdout.decode().strip().splitlines()[-1])

    # ---- load generator ----------------------------------------------------------------------

    def batch_body(self, n):
        """The payload n times, one line each (application/x-ndjson)."""
        path = self.work / f"batch-{n}.ndjson"
        if not path.exists():
            line = json.dumps(json.loads(PAYLOAD.read_text()), separators=(",", ":"))
            path.write_text((line + "\n") * n)
        return path

    def vegeta_run(self, url, seconds, workers, rate=0, tag="step", batch=0, payload=PAYLOAD):
        """Runs vegeta against url; returns its JSON report. rate 0: `workers` in a closed loop.
        batch n: each request is a batch of n payloads (always bench/payload.json)."""
        targets = self.work / "targets.txt"
        targets.write_text(f"POST {url}\n")
        results = self.work / f"{tag}.bin"
        body, ctype = (self.batch_body(batch), "application/x-ndjson") if batch else (payload, "application/json")
        attack = [
            self.vegeta, "attack", f"-targets={targets}", f"-body={body}",
            f"-header=Content-Type: {ctype}", f"-duration={seconds}s", "-timeout=30s",
        ]
        if rate > 0:
            # Open model: `rate` requests/s whatever the answers take (up to 1024 in flight).
            attack += [f"-rate={rate}/1s", f"-workers={workers}", "-max-workers=1024"]
        else:
            attack += ["-rate=0", f"-workers={workers}", f"-max-workers={workers}"]
        with open(results, "wb") as f:
            subprocess.run(attack, stdout=f, check=True, timeout=seconds + 90)
        rep = subprocess.run(
            [self.vegeta, "report", "-type=json", str(results)], capture_output=True, check=True, timeout=120
        )
        results.unlink()
        return json.loads(rep.stdout)

    # ---- contenders --------------------------------------------------------------------------

    def core_config(self, details):
        c = {
            "kafka": {"bootstrap_servers": self.bootstrap, "properties": {**details.get("properties", {}), **EXTRA_PROPERTIES}},
            "registry": {"kind": "file", "directory": str(self.schema_dir)},
            "schema": {"name_template": "{topic}", "version": "latest", "message_type": "first"},
            "value_format": "raw",
            "delivery_timeout_ms": 10000,
        }
        if details.get("dry_run"):
            c["dry_run"] = True
        return c

    def gateway_config(self, details, topic, port):
        """A krakend.json derived from krakend/krakend.json with one mounting style left."""
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        cfg = copy.deepcopy(base)
        cfg["name"] = f"topicgate bench {self.run_id}"
        cfg["port"] = port
        cfg["listen_ip"] = "127.0.0.1"
        cfg["plugin"]["folder"] = str(BUILD) + "/"
        cfg["extra_config"].update(copy.deepcopy(QUIET_LOGGING))
        if details["mount"] == "pubsub":
            # KrakenD CE's own Kafka publisher (krakend-pubsub, gocloud.dev kafkapubsub; brokers from
            # KAFKA_BROKERS), configured as KrakenD documents it; the plugin is not loaded at all.
            del cfg["extra_config"]["plugin/http-server"]
            del cfg["plugin"]
            cfg["endpoints"] = [{
                "endpoint": "/v2/event/{topic}", "method": "POST", "timeout": cfg["endpoints"][0]["timeout"],
                "backend": [{
                    "host": ["kafka://"], "disable_host_sanitize": True, "url_pattern": "/",
                    "extra_config": {"backend/pubsub/publisher": {"topic_url": topic}},
                }],
            }]
            path = f"/v2/event/{topic}"
        elif details["mount"] == "pubsub-standin":
            # The stand-in plugin (bench/pubsubplugin) instead of topicgate, on the same endpoint.
            del cfg["extra_config"]["plugin/http-server"]
            cfg["plugin"] = {"folder": str(BENCH_BUILD) + "/", "pattern": "krakend-pubsub-standin.so"}
            cfg["endpoints"][0]["backend"][0]["extra_config"] = {
                "plugin/http-client": {"name": "krakend-pubsub-standin", "krakend-pubsub-standin": {"topic_url": f"kafka://{topic}"}}
            }
            path = f"/v2/event/{topic}"
        elif details["mount"] == "server":
            srv = cfg["extra_config"]["plugin/http-server"]["topicgate"]
            srv["core"] = self.core_config(details)
            srv["routes"] = [{"path_prefix": "/v1/event/", "topics": [topic]}]
            cfg["endpoints"] = []
            path = f"/v1/event/{topic}"
        else:
            if details.get("metrics", True):
                # The metrics-only server block a client-style user adds to be scraped (README, "Metrics").
                cfg["extra_config"]["plugin/http-server"] = {"name": ["topicgate"], "topicgate": {"routes": []}}
            else:
                del cfg["extra_config"]["plugin/http-server"]
            block = cfg["endpoints"][0]["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"]
            block["core"] = self.core_config(details)
            block["topics"] = [topic]
            path = f"/v2/event/{topic}"
        return cfg, path

    def start_http(self, details, topic, tag):
        port = free_port()
        log_path = self.work / f"{tag}.log"
        # gocloud.dev's kafka:// reads KAFKA_BROKERS; KrakenD CE phones home unless USAGE_DISABLE=1.
        env = dict(os.environ, KAFKA_BROKERS=self.bootstrap, USAGE_DISABLE="1", **details.get("env", {}))
        cfg, path = self.gateway_config(details, topic, port)
        cfg_path = self.work / f"{tag}.json"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        cmd = [str(GATEWAY), "run", "-c", str(cfg_path), "-p", str(port)]
        logf = open(log_path, "wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        proc._logf = logf
        wait_listening(proc, port, log_path)
        return proc, f"http://127.0.0.1:{port}{path}"

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        proc._logf.close()

    def streamload(self, url, seconds, workers, rate=0):
        """bench/streamload: `workers` streams for `seconds`; its JSON line (ok, failed, rps, p50_ms, ...)."""
        cmd = [str(BENCH_BUILD / "streamload"), f"-url={url}", f"-payload={PAYLOAD}", f"-streams={workers}",
               f"-seconds={seconds}", f"-rate={rate}"]
        out = subprocess.run(cmd, capture_output=True, timeout=seconds + 120)
        if out.returncode != 0:
            raise RuntimeError(f"streamload failed (exit {out.returncode}): {out.stderr.decode(errors='replace')[-3000:]}")
        return json.loads(out.stdout.decode().strip().splitlines()[-1])

    def stream_step(self, tag, details, topic, workers, rate):
        proc, url = self.start_http(details, topic, tag)
        try:
            warm = self.streamload(url, WARMUP_S, min(workers, 8))
            cpu0, broker0 = cpu_seconds(proc.pid), broker_cpu_seconds()
            rep = self.streamload(url, self.seconds, workers, rate)
            cpu, broker_cpu = cpu_seconds(proc.pid) - cpu0, broker_cpu_seconds() - broker0
            rss = peak_rss_mb(proc.pid)
        finally:
            self.stop(proc)
        return {
            "ok": warm["ok"] + rep["ok"],
            "failed": warm["failed"] + rep["failed"],
            "measured": rep["ok"],
            "rps": rep["rps"],
            "p50_ms": rep["p50_ms"],  # from a chunk's write to its first record's answer
            "p99_ms": rep["p99_ms"],
            "max_ms": rep["max_ms"],
            "cpu_s": cpu,
            "broker_cpu_s": broker_cpu,
            "broker_records": rep["ok"],
            "rss_mb": rss,
            "errors": [e for e in (warm["error"], rep["error"]) if e][:3],
        }

    def http_step(self, tag, details, topic, workers, rate):
        if details.get("stream"):
            return self.stream_step(tag, details, topic, workers, rate)
        proc, url = self.start_http(details, topic, tag)
        n = details.get("batch", 0)
        try:
            body = self.payload(details)
            warm = self.vegeta_run(url, WARMUP_S, min(workers, 8), tag=tag + "-warmup", batch=n, payload=body)
            cpu0, broker0 = cpu_seconds(proc.pid), broker_cpu_seconds()
            # A fixed rate is in records/s: a batch contender sends it as rate/n requests/s.
            rep = self.vegeta_run(url, self.seconds, workers, max(1, round(rate / n)) if (rate and n) else rate, tag=tag, batch=n,
                                  payload=body)
            cpu, broker_cpu = cpu_seconds(proc.pid) - cpu0, broker_cpu_seconds() - broker0
            rss = peak_rss_mb(proc.pid)
        finally:
            self.stop(proc)
        codes = rep.get("status_codes") or {}
        ok200 = int(codes.get("200", 0))
        lat = rep["latencies"]
        errors = sorted(set(rep.get("errors") or []))[:3]
        per = max(n, 1)  # records per request (a 200 batch has all of them on the topic)
        return {
            "ok": (ok200 + int((warm.get("status_codes") or {}).get("200", 0))) * per,
            "failed": int(rep["requests"]) - ok200 + int(warm["requests"]) - int((warm.get("status_codes") or {}).get("200", 0)),
            "measured": ok200 * per,
            "rps": rep["throughput"] * per,
            "p50_ms": lat["50th"] / 1e6,
            "p99_ms": lat["99th"] / 1e6,
            "max_ms": lat["max"] / 1e6,
            "cpu_s": cpu,
            "broker_cpu_s": broker_cpu,
            "broker_records": ok200 * per,
            "rss_mb": rss,
            "errors": errors,
        }

    def process_step(self, cid, kind, topic, workers, rate):
        """core-ffi and rdkafka-bare: the contender measures itself and prints one JSON line."""
        timing = [str(workers), str(self.seconds), str(rate), str(int(WARMUP_S * 1000))]
        env = dict(os.environ, **dict(self.contender(cid)[3].get("env", {})))
        if kind == "ffi":
            cmd = self.core_ffi_cmd(cid, topic, timing)
        else:
            cmd = [str(ROOT / "target" / "release" / "rdkafka_bare"), str(self.value_file), topic, *timing]
        broker0 = broker_cpu_seconds()
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=self.seconds + 120)
        broker_cpu = broker_cpu_seconds() - broker0
        lines = out.stdout.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"{cid} printed nothing (exit {out.returncode}): {out.stderr.decode(errors='replace')[-3000:]}")
        r = json.loads(lines[-1])
        return {
            "ok": r["ok"],
            "failed": r["errors"],
            "measured": r["measured"],
            "rps": r["rps"],
            "p50_ms": r["p50_ms"],
            "p99_ms": r["p99_ms"],
            "max_ms": r["max_ms"],
            "cpu_s": r["cpu_s"],
            # Over the whole process, warm-up included, so per record of the whole run.
            "broker_cpu_s": broker_cpu,
            "broker_records": r["ok"],
            "rss_mb": r["rss_mb"],
            "errors": [out.stderr.decode(errors="replace").strip()[-300:]] if r["errors"] else [],
        }

    def contender(self, cid):
        return next(c for c in CONTENDERS + OPTIONAL if c[0] == cid)

    def core_ffi_cmd(self, tag, topic, timing):
        """bench/core_ffi with the core's default config (written to <tag>-core.json), the payload and
        [threads, seconds, rate, warmup_ms]."""
        cfg = self.work / f"{tag}-core.json"
        cfg.write_text(json.dumps(self.core_config({})))
        return [str(BENCH_BUILD / "core_ffi"), str(cfg), topic, str(PAYLOAD), *timing]

    def warm_broker(self, topic):
        """Loads the broker through the core (core-ffi) before any step, then keeps a record the core
        wrote there: rdkafka-bare sends exactly those bytes."""
        log(f"broker warm-up: core-ffi, concurrency 32, {BROKER_WARMUP_S} s (not measured)")
        cmd = self.core_ffi_cmd("broker-warmup", topic, ["32", str(BROKER_WARMUP_S), "0", "0"])
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=BROKER_WARMUP_S + 120)
        if out.returncode != 0:
            raise RuntimeError(f"broker warm-up failed (exit {out.returncode}): {out.stderr.decode(errors='replace')[-3000:]}")
        n = self.kafka_topics("first-value", self.bootstrap, topic, str(self.value_file))["bytes"]
        log(f"the core's record for the payload: {n} bytes (rdkafka-bare sends them)")

    def step(self, contender, phase, workers, rate=0):
        cid, _, kind, details = contender
        topic = self.topic_name(cid, phase)
        log(f"{cid} {phase}: {'rate %.0f/s' % rate if rate else 'closed loop'}, concurrency {workers}, {self.seconds:g} s")
        if kind == "gateway":
            r = self.http_step(f"{cid}-{phase}", details, topic, workers, rate)
        else:
            r = self.process_step(cid, kind, topic, workers, rate)
        r.update(id=cid, phase=phase, topic=topic, workers=workers, rate=rate, dry_run=bool(details.get("dry_run")))
        log(
            f"  {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, 200s {r['ok']}, "
            f"failed {r['failed']}, cpu {r['cpu_s']:.2f} s, rss {r['rss_mb']:.0f} MB {r['errors'] or ''}"
        )
        self.steps.append(r)
        return r

    # ---- the run -----------------------------------------------------------------------------

    def run(self):
        t0 = time.monotonic()
        started = datetime.now(timezone.utc)
        load_start = loadavg()
        phases = [f"r{n}-c{c}" for n in range(1, self.rounds + 1) for c in self.levels] + ["rate"]
        topics = [self.new_topic(c[0], p) for c in self.contenders for p in phases]
        warmup_topic = self.new_topic("broker", "warmup")
        self.kafka_topics("create", self.bootstrap, str(self.partitions), warmup_topic, *topics)
        log(f"run {self.run_id}: {len(topics)} topics with {self.partitions} partitions; load average {load_start}")
        self.warm_broker(warmup_topic)

        # rps[cid][level]: that contender's req/s at that level, one per round.
        rps = {c[0]: {level: [] for level in self.levels} for c in self.contenders}
        n = len(self.contenders)
        for rnd in range(1, self.rounds + 1):
            shift = (rnd - 1) % n
            for c in self.contenders[shift:] + self.contenders[:shift]:
                for level in self.levels:
                    rps[c[0]][level].append(self.step(c, f"r{rnd}-c{level}", level)["rps"])
        # Each contender at its best level (highest median); its rounds at that level.
        best = {cid: max(by_level, key=lambda lv: statistics.median(by_level[lv])) for cid, by_level in rps.items()}
        by_round = {cid: rps[cid][best[cid]] for cid in rps}
        saturation = {cid: statistics.median(v) for cid, v in by_round.items()}
        slowest = min(saturation, key=saturation.get)
        rate = max(1.0, round(saturation[slowest] / 2))
        log(f"fixed rate: {rate:.0f}/s (half of {slowest}'s median {saturation[slowest]:.0f}/s)")
        fixed = {c[0]: self.step(c, "rate", max(self.levels), rate) for c in self.contenders}

        counts = self.kafka_topics("count", self.bootstrap, *[s["topic"] for s in self.steps])
        void = []
        for s in self.steps:
            s["on_topic"] = counts[s["topic"]]
            expected = 0 if s["dry_run"] else s["ok"]
            if s["on_topic"] != expected or s["failed"]:
                void.append(f"{s['id']} {s['phase']}: {s['ok']} answered 200, {s['failed']} failed, {s['on_topic']} on the topic")

        results = []
        for c in self.contenders:
            cid = c[0]
            mine = [s for s in self.steps if s["id"] == cid]
            sat_steps = [s for s in mine if s["phase"] != "rate"]
            measured = sum(s["measured"] for s in sat_steps)
            results.append(
                {
                    "id": cid,
                    "label": c[1],
                    "rps": round(saturation[cid], 1),
                    "rps_by_round": [round(x, 1) for x in by_round[cid]],
                    "rps_by_concurrency": {str(lv): round(statistics.median(v), 1) for lv, v in rps[cid].items()},
                    "p50_ms": round(fixed[cid]["p50_ms"], 3),
                    "p99_ms": round(fixed[cid]["p99_ms"], 3),
                    "max_ms": round(fixed[cid]["max_ms"], 3),
                    "cpu_s_per_10k": per_10k(sum(s["cpu_s"] for s in sat_steps), measured),
                    "broker_cpu_s_per_10k": per_10k(sum(s["broker_cpu_s"] for s in sat_steps), sum(s["broker_records"] for s in sat_steps)),
                    "rss_mb": round(max(s["rss_mb"] for s in mine), 1),
                    "records_ok": sum(s["ok"] for s in mine),
                    "records_on_topic": sum(s["on_topic"] for s in mine),
                }
            )
        ratios_by_round = {
            f"{a}/{b}": [round(x / y, 3) if y else None for x, y in zip(by_round[a], by_round[b])]
            for a, b in RATIOS
            if a in by_round and b in by_round
        }
        ratios = {k: round(statistics.median(v), 3) for k, v in ratios_by_round.items() if None not in v}
        doc = {
            "date": started.isoformat(timespec="seconds"),
            "machine": machine(),
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "duration_s": round(time.monotonic() - t0, 1),
            "settings": {
                "seconds_per_step": self.seconds,
                "rounds": self.rounds,
                "broker_warmup_s": BROKER_WARMUP_S,
                "warmup_s_per_step": WARMUP_S,
                "concurrency": self.levels,
                "fixed_rate_per_s": rate,
                "fixed_rate_concurrency": max(self.levels),
                "partitions": self.partitions,
                "payload_bytes": PAYLOAD.stat().st_size,
                "load_generator": vegeta_version(),
                "gateway": gateway_version() + " + build/topicgate.so",
            },
            "notes": {
                "krakend-pubsub": (
                    "KrakenD CE's built-in backend/pubsub/publisher (kafka://, gocloud.dev kafkapubsub, sarama, acks=1), "
                    "no validation or encoding: it publishes the request body as it is"
                    if REAL_KRAKEND else
                    "stand-in: gocloud.dev kafkapubsub (sarama, acks=1) as a client plugin in kdhost (bench/pubsubplugin), not KrakenD's code"
                ),
                "ceiling": "topicgate with dry_run: validates and encodes, never produces (0 records expected on its topics)",
            },
            "contenders": results,
            "ratios": ratios,
            "ratios_by_round": ratios_by_round,
            "void": void,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        # A partial run (BENCH_ONLY, BENCH_PROPERTIES) must not replace the committed full results.
        partial = self.contenders != CONTENDERS or EXTRA_PROPERTIES
        (RESULTS / ("partial.json.tmp" if partial else "latest.json")).write_text(json.dumps(doc, indent=2) + "\n")
        print(markdown(doc))
        shutil.rmtree(self.work, ignore_errors=True)
        if void:
            log("VOID: records lost or requests failed:\n  " + "\n  ".join(void))
            return 1
        return 0


def gateway_version():
    """The gateway binary and the first line its `version` command prints."""
    out = subprocess.run([str(GATEWAY), "version"], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, USAGE_DISABLE="1"))
    printed = out.stdout + out.stderr  # KrakenD prints its version on stderr
    first = next((line.strip() for line in printed.splitlines() if line.strip()), "version unknown")
    return f"{os.path.relpath(GATEWAY, ROOT)} ({first})"


def vegeta_version():
    """The pinned version make installed (a `go install` build does not stamp its own)."""
    return "vegeta " + (os.environ.get("VEGETA_VERSION") or "(version unknown)")


def machine():
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, {platform.system()} {platform.release()}, shared with other builds"


def markdown(doc):
    s = doc["settings"]
    lines = [
        f"topicgate benchmark {doc['date']} on {doc['machine']}",
        f"load average start {doc['load_average_start']}, end {doc['load_average_end']}; run {doc['duration_s']} s",
        f"{s['payload_bytes']} B JSON payload; {s['seconds_per_step']:g} s per step; {s['rounds']} rounds; concurrency {s['concurrency']}; "
        f"latency at {s['fixed_rate_per_s']:.0f} req/s; {s['load_generator']}; gateway: {s['gateway']}",
        "",
        "| contender | req/s (sat., median) | p50 ms | p99 ms | max ms | CPU s / 10k | broker CPU s / 10k | peak RSS MB | 200s | on topic |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["contenders"]:
        lines.append(
            f"| {r['label']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{r['cpu_s_per_10k'] if r['cpu_s_per_10k'] is not None else '-'} | "
            f"{r['broker_cpu_s_per_10k'] if r['broker_cpu_s_per_10k'] is not None else '-'} | {r['rss_mb']:.0f} | "
            f"{r['records_ok']} | {r['records_on_topic']} |"
        )
    lines.append("")
    lines.append("krakend-pubsub: " + doc["notes"]["krakend-pubsub"] + ". ceiling: " + doc["notes"]["ceiling"] + ".")
    lines.append("")
    lines += [
        f"- {k}: {v:.2f} (rounds: {', '.join(f'{x:.2f}' for x in doc['ratios_by_round'][k])})" for k, v in doc["ratios"].items()
    ]
    if doc["void"]:
        lines += ["", "VOID steps:"] + [f"- {v}" for v in doc["void"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(Bench().run())
