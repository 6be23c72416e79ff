"""Helpers of the fault tests: their own test servers, gateways built for one test each, a load
generator that keeps every outcome, and a full read-back of a topic by Kafka's Java client.

The gateway process, HTTP responses and read-back records come from tests/e2e/conftest.py
(loaded here as a plain module, so its pytest fixtures and hooks stay inactive).
"""

import collections
import importlib.util
import json
import os
import signal
import subprocess
import threading
import time
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("topicgate_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

CLASSIC_PROTO = e2e.CLASSIC_PROTO
metric = e2e.metric
Record = e2e.Record
Response = e2e.Response

# Status answers a client may see when Kafka or the registry is down (the contract: retriable 503,
# 504 for "sent, not acknowledged"); a 500 or anything else during a fault is a defect.
FAULT_STATUSES = {200, 503, 504}


def run_dir():
    """The fault tests' run directory (TOPICGATE_RUN_DIR); never the shared .run itself."""
    d = os.environ.get("TOPICGATE_RUN_DIR", "")
    if not d:
        raise RuntimeError("TOPICGATE_RUN_DIR is not set: run the fault tests with `make test-faults`")
    p = (ROOT / d).resolve() if not os.path.isabs(d) else Path(d).resolve()
    if p == (ROOT / ".run").resolve():
        raise RuntimeError("TOPICGATE_RUN_DIR is the shared .run: the fault tests stop their broker and moto, "
                           "so they must have their own (make test-faults uses .run/faults)")
    return p


class Servers:
    """The fault tests' own Kafka broker and moto (scripts/kafka.sh and glue.sh with TOPICGATE_RUN_DIR)."""

    def __init__(self):
        self.run = run_dir()
        self.env = {**os.environ, "TOPICGATE_RUN_DIR": str(self.run)}

    def _script(self, script, *args, env=None, timeout=240):
        out = subprocess.run([str(ROOT / "scripts" / script), *args], cwd=ROOT, env=env or self.env,
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"scripts/{script} {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        return out.stderr

    def up(self):
        self._script("kafka.sh", "up")
        self._script("glue.sh", "up")

    def stop_broker(self):
        self._script("kafka.sh", "stop-broker")

    def start_broker(self):
        self._script("kafka.sh", "start-broker")

    def freeze_broker(self):
        """SIGSTOP the broker JVM: a hung broker (connections stay open, nothing is answered)."""
        os.kill(self._broker_pid(), signal.SIGSTOP)

    def thaw_broker(self):
        os.kill(self._broker_pid(), signal.SIGCONT)

    def broker_state(self):
        """The broker JVM's process state as /proc says it ("T (stopped)" when frozen), for failure messages."""
        try:
            with open(f"/proc/{self._broker_pid()}/status") as f:
                return next((l.split(":", 1)[1].strip() for l in f if l.startswith("State:")), "unknown")
        except OSError as e:
            return f"unreadable ({e})"

    def _broker_pid(self):
        return int((self.run / "kafka.pid").read_text().strip())

    def broker_running(self):
        return (self.run / "kafka.pid").is_file()

    def glue_port(self):
        for line in (self.run / "glue.env").read_text().splitlines():
            if line.startswith("AWS_ENDPOINT_URL_GLUE="):
                return int(line.rsplit(":", 1)[1])
        raise AssertionError("no AWS_ENDPOINT_URL_GLUE in glue.env")

    def stop_glue(self):
        self._script("glue.sh", "down")

    def start_glue(self, port):
        """moto again on `port`: the gateway's registry endpoint does not change."""
        self._script("glue.sh", "up", env={**self.env, "GLUE_PORT": str(port)})

    # The Confluent-compatible registry (scripts/registry.sh, Apicurio): started only by the tests
    # that need it (a JVM of its own), never skipped when it cannot start.

    def registry_up(self, ports=None):
        """Starts the fault tests' registry (on `ports`, (plain, TLS), when given) and returns
        registry.env as a dict (SCHEMA_REGISTRY_URL, REGISTRY_BASE_URL, …)."""
        env = {**self.env, "REGISTRY_READY_TIMEOUT": "240"}
        if ports:
            env.update(REGISTRY_PORT=str(ports[0]), REGISTRY_TLS_PORT=str(ports[1]))
        self._script("registry.sh", "up", env=env, timeout=600)
        return self.registry_env()

    def registry_env(self):
        return dict(line.split("=", 1) for line in (self.run / "registry.env").read_text().splitlines() if "=" in line)

    def registry_ports(self):
        """(plain, TLS) ports of the running registry."""
        env = self.registry_env()
        return tuple(int(env[k].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                     for k in ("SCHEMA_REGISTRY_URL", "SCHEMA_REGISTRY_TLS_URL"))

    def registry_down(self):
        self._script("registry.sh", "down")

    def registry_running(self):
        return (self.run / "registry.pid").is_file()


class Cluster:
    """The cluster tests' three-broker Kafka (scripts/kafka-cluster.sh with TOPICGATE_RUN_DIR):
    stop (SIGTERM), kill (SIGKILL), pause (SIGSTOP), resume and start broker N (1..3), wait until
    healthy, and the leader of a partition by Kafka's own client (ReadBack --leaders)."""

    NODES = (1, 2, 3)

    def __init__(self):
        self.run = run_dir()
        self.env = {**os.environ, "TOPICGATE_RUN_DIR": str(self.run)}

    def _script(self, *args, timeout=300):
        out = subprocess.run([str(ROOT / "scripts" / "kafka-cluster.sh"), *map(str, args)], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"scripts/kafka-cluster.sh {' '.join(map(str, args))} failed ({out.returncode}):\n"
                                 f"{out.stderr[-3000:]}")
        return out.stderr

    def up(self):
        self._script("up")

    def down(self):
        self._script("down")

    def stop_broker(self, n):
        """SIGTERM broker n and wait for its exit (controlled shutdown: leadership moves first)."""
        self._script("stop-broker", n)

    def kill_broker(self, n):
        """SIGKILL broker n: a crash, no controlled shutdown."""
        self._script("kill-broker", n)

    def pause_broker(self, n):
        """SIGSTOP broker n: connections stay open, nothing is answered."""
        self._script("pause-broker", n)

    def resume_broker(self, n):
        self._script("resume-broker", n)

    def start_broker(self, n):
        """Broker n again (same storage and ports), once it answers metadata."""
        self._script("start-broker", n)

    def wait_healthy(self):
        """All three brokers up and no under-replicated or unavailable partition."""
        self._script("wait-healthy")

    def running(self, n):
        return (self.run / f"kafka-cluster-{n}.pid").is_file()

    def env_vars(self):
        """kafka-cluster.env as a dict (KAFKA_CLUSTER_BOOTSTRAP, KAFKA_CLUSTER_PORT_N, KAFKA_CLASSPATH)."""
        return dict(line.split("=", 1) for line in (self.run / "kafka-cluster.env").read_text().splitlines() if "=" in line)

    def partitions(self, topic):
        """[{partition, leader, replicas, isr}] of `topic` from the cluster's metadata (leader -1: none)."""
        env = self.env_vars()
        out = subprocess.run(["java", "-Xmx256m", *e2e.JVM_FLAGS, "-cp", env["KAFKA_CLASSPATH"], e2e.READBACK,
                              "--leaders", env["KAFKA_CLUSTER_BOOTSTRAP"], topic, "30000"],
                             cwd=ROOT, capture_output=True, text=True, timeout=90)
        assert out.returncode == 0, f"ReadBack --leaders {topic} failed: {out.stderr[-2000:]}"
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def leader(self, topic, partition):
        """Node id (1..3) leading `topic`/`partition`, -1 when it has no leader."""
        for p in self.partitions(topic):
            if p["partition"] == partition:
                return p["leader"]
        raise AssertionError(f"{topic} has no partition {partition}")


def write_proto(directory, topic, text=CLASSIC_PROTO):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{topic}.proto").write_text(text)


class FaultGateway(e2e.Gateway):
    """A gateway (kdhost or krakend, real plugin) with one http-server route, `/f/<Topic>`,
    for `topics`, over the core config `core` (the schema directory is filled in for file registries)."""

    def __init__(self, tmp, topics, core, retry_after=3, batch=None, server=None, pattern=None, read=None):
        super().__init__(tmp)
        self.topics = list(topics)
        self.core = core
        self.retry_after = retry_after
        self.batch = batch  # the route's "batch" block, if any
        self.server = server or {}  # more keys of the server block (e.g. ready_requires_broker)
        self.pattern = pattern  # the route's "topic_pattern", if any
        self.read = read  # the route's "read" block, if any

    def write_schemas(self):
        self.schema_dir.mkdir(parents=True, exist_ok=True)  # also when no topic is listed
        for t in self.topics:
            write_proto(self.schema_dir, t)

    def create_glue_schema(self):  # the tests that use Glue create their own schemas
        pass

    def delete_glue_schema(self):
        pass

    def write_config(self):
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        cfg = {k: v for k, v in base.items() if k not in ("endpoints", "extra_config")}
        cfg["name"] = f"topicgate faults {self.run_id}"
        cfg["port"] = self.port
        cfg["listen_ip"] = "127.0.0.1"
        # TG_PLUGIN_DIR: a copy of topicgate.so elsewhere, so that a long run survives a rebuild of build/.
        cfg["plugin"]["folder"] = os.environ.get("TG_PLUGIN_DIR", str(ROOT / "build")).rstrip("/") + "/"
        core = json.loads(json.dumps(self.core))
        if core.get("registry", {}).get("kind") == "file":
            core["registry"]["directory"] = str(self.schema_dir)
        cfg["extra_config"] = {"plugin/http-server": {"name": ["topicgate"], "topicgate": {
            "core": core,
            "retry_after_seconds": self.retry_after,
            "routes": [{"path_prefix": "/f/", "topics": self.topics,
                        **({"batch": self.batch} if self.batch else {}),
                        **({"topic_pattern": self.pattern} if self.pattern else {}),
                        **({"read": self.read} if self.read else {})}],
            **self.server,
        }}}
        cfg["endpoints"] = []
        self.config_path.write_text(json.dumps(cfg, indent=2))

    # ---- the process, seen from the OS -------------------------------------------------

    def proc_status(self):
        """VmRSS (KiB) and Threads of the gateway process, from /proc/<pid>/status."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "Threads"):
                fields[k] = int(v.split()[0])
        return fields

    def thread_names(self):
        """{OS thread name: count} of the gateway process (librdkafka names its threads rdk:*)."""
        names = collections.Counter()
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                names[(task / "comm").read_text().strip()] += 1
            except OSError:  # the thread ended meanwhile
                pass
        return dict(sorted(names.items()))

    def open_fds(self):
        """Open file descriptors of the gateway process (sockets, files, pipes), from /proc/<pid>/fd."""
        return len(list(Path(f"/proc/{self.proc.pid}/fd").iterdir()))

    def connections(self):
        """Established TCP connections the gateway accepted on its port, from /proc/net/tcp{,6}.

        Works for any host (KrakenD or kdhost): the kernel, not the gateway, reports it."""
        n = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                local_port = int(cols[1].rsplit(":", 1)[1], 16)
                if local_port == self.port and cols[3] == "01":  # 01 = ESTABLISHED
                    n += 1
        return n

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the gateway did not exit within {timeout} s of SIGTERM:\n{self.log()}")

    def terminate_under(self, load, exit_bound):
        """SIGTERM while `load` runs; waits for the exit and then for 20 more requests (refused, never
        half-answered). Returns (exit status, monotonic time of the signal, of the exit)."""
        t_term = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit(exit_bound)
        t_exit = time.monotonic()
        n = load.count()
        wait_for(lambda: load.count() >= n + 20, 30, "requests after the exit")
        return code, t_term, t_exit


def start_gateway(tmp, topics, core, retry_after=3):
    gw = FaultGateway(tmp, topics, core, retry_after)
    gw.start()
    return gw


def file_core(delivery_timeout_ms, properties=None):
    return {
        "kafka": {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP"], "properties": properties or {}},
        "registry": {"kind": "file", "directory": "(filled in by the gateway)"},
        "delivery_timeout_ms": delivery_timeout_ms,
    }


def default_core(properties=None, **extra):
    """A core config with the core's defaults (delivery timeout, producer properties) over
    KAFKA_BOOTSTRAP and file schemas; `properties` and `extra` override them for experiments."""
    return {
        "kafka": {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP"], "properties": properties or {}},
        "registry": {"kind": "file", "directory": "(filled in by the gateway)"},
        **extra,
    }


# ---- records -----------------------------------------------------------------------------


def body(msg):
    return json.dumps({"sample_message": msg}).encode()


def value_of(msg):
    """Protobuf bytes of {"sample_message": msg} (msg < 128 bytes): tag 0x0a, length, the bytes."""
    b = msg.encode()
    assert len(b) < 128
    return b"\x0a" + bytes([len(b)]) + b


def msg_of(value):
    """The sample_message of a record value written as value_of() does; None if it is not one."""
    if value is None or len(value) < 2 or value[0] != 0x0a or value[1] != len(value) - 2:
        return None
    return value[2:].decode()


Outcome = collections.namedtuple("Outcome", "msg status partition offset t0 t1 error retry_after message")


def post_once(conn_factory, path, msg, timeout, keep=None):
    """POSTs one record; returns (Outcome, connection to reuse or None). Never raises for I/O errors."""
    conn = keep or conn_factory(timeout)
    t0 = time.monotonic()
    try:
        conn.request("POST", path, body=body(msg), headers={
            "Content-Type": "application/json", "message-key": msg})
        r = conn.getresponse()
        raw = r.read()
        t1 = time.monotonic()
        try:
            b = json.loads(raw)
        except ValueError:
            b = {"message": raw[:200].decode(errors="replace")}
        o = Outcome(msg, r.status, b.get("partition"), b.get("offset"), t0, t1, None,
                    r.getheader("Retry-After"), b.get("message"))
        reuse = conn if (r.getheader("Connection", "").lower() != "close" and not r.will_close) else None
        if reuse is None:
            conn.close()
        return o, reuse
    except Exception as e:  # the outcome records it; the caller decides what is allowed
        conn.close()
        return Outcome(msg, None, None, None, t0, time.monotonic(), f"{type(e).__name__}: {e}", None, None), None


class Load:
    """`threads` clients posting uniquely numbered records (`<prefix>-<n>`) to `path` until
    stopped or `total` records were sent; every outcome is kept. keep_alive=False opens a
    new connection per request (a refused connection then means "not accepted")."""

    def __init__(self, gw, path, prefix, threads, timeout, total=None, keep_alive=True, on_outcome=None):
        self.gw, self.path, self.prefix, self.timeout = gw, path, prefix, timeout
        self.total, self.keep_alive, self.on_outcome = total, keep_alive, on_outcome
        self.outcomes = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _conn(self, timeout):
        return http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=timeout)

    def _take(self):
        with self._lock:
            if self._stop.is_set() or (self.total is not None and self._next >= self.total):
                return None
            n = self._next
            self._next += 1
            return n

    def _run(self):
        conn = None
        while True:
            n = self._take()
            if n is None:
                break
            o, conn = post_once(self._conn, self.path, f"{self.prefix}-{n}", self.timeout,
                                conn if self.keep_alive else None)
            if not self.keep_alive and conn is not None:
                conn.close()
                conn = None
            with self._lock:
                self.outcomes.append(o)
            if self.on_outcome is not None:
                self.on_outcome(o)
        if conn is not None:
            conn.close()

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self, join_timeout):
        self._stop.set()
        return self.join(join_timeout)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self._threads)
        assert alive == 0, f"{alive} client threads still waiting after {timeout} s: a request hangs"
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            return list(self.outcomes)

    def count(self, pred=lambda o: True):
        with self._lock:
            return sum(1 for o in self.outcomes if pred(o))

    def wait_acknowledged(self, n, what, timeout=90):
        """Waits until `n` records were answered 200 (the load is under way), naming `what` if not."""
        wait_for(lambda: self.count(lambda o: o.status == 200) >= n, timeout, f"{n} records acknowledged {what}".rstrip())


def wait_for(pred, timeout, what, step=0.1):
    """Polls pred() until true; fails after `timeout` seconds naming `what`. Returns the time it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0


# ---- reading a whole topic back ----------------------------------------------------------


def _java(gw, *args, heap="1g"):
    return ["java", f"-Xmx{heap}", *e2e.JVM_FLAGS, "-cp", gw.classpath, e2e.READBACK, *map(str, args)]


def partition_ranges(gw, topic):
    """[(partition, begin, end)] of `topic`, by ReadBack --count."""
    out = subprocess.run(_java(gw, "--count", gw.bootstrap, topic, 30000), cwd=ROOT, capture_output=True,
                         timeout=90)
    assert out.returncode == 0, f"ReadBack --count {topic} failed: {out.stderr.decode(errors='replace')[-2000:]}"
    lines = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    return [(v["partition"], v["begin_offset"], v["end_offset"]) for v in lines if "partition" in v]


def read_topic(gw, topic, timeout_s=300):
    """Every record of `topic` (all partitions, read in parallel by Kafka's Java consumer,
    read_committed, up to each partition's end offset: transaction markers and aborted records take
    offsets and are skipped), as (partition, offset, key, value) tuples."""
    return [(r.partition, r.offset, r.key, r.value) for r in read_records(gw, topic, timeout_s)]


def read_records(gw, topic, timeout_s=300):
    """read_topic's records as e2e Records (their headers too)."""
    ranges = [(p, b, e) for p, b, e in partition_ranges(gw, topic) if e > b]
    procs = [(p, subprocess.Popen(_java(gw, "--until", gw.bootstrap, topic, p, b, e, timeout_s * 1000), cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
             for p, b, e in ranges]
    records = []
    for p, proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"ReadBack of {topic}/{p} did not finish in {timeout_s + 60} s")
        assert proc.returncode == 0, f"ReadBack {topic}/{p} failed: {err.decode(errors='replace')[-2000:]}"
        for line in out.splitlines():
            if line.strip():
                records.append(Record(line))
    return records


def account(outcomes, records):
    """Matches what the clients were told against what is on the topic.

    Returns a dict of figures and lists: acknowledged (200), found, duplicates (values on the
    topic more than once), lost (200 but not on the topic), misplaced (200 whose partition/offset
    differs from where the record is), unknown (on the topic, never sent), found_after_503,
    found_after_504, found_without_answer."""
    by_msg = {o.msg: o for o in outcomes}
    found = collections.defaultdict(list)
    unknown = []
    for partition, offset, key, value in records:
        m = msg_of(value)
        if m is None or m not in by_msg or key != m.encode():
            unknown.append((partition, offset, key, value))
            continue
        found[m].append((partition, offset))
    ok = [o for o in outcomes if o.status == 200]
    lost = [o.msg for o in ok if o.msg not in found]
    misplaced = [o.msg for o in ok if o.msg in found and found[o.msg][0] != (o.partition, o.offset)]
    return {
        "sent": len(outcomes),
        "acknowledged": len(ok),
        "found": sum(len(v) for v in found.values()),
        "duplicates": [m for m, v in found.items() if len(v) > 1],
        "lost": lost,
        "misplaced": misplaced,
        "unknown": unknown,
        "found_after_503": [m for m in found if by_msg[m].status == 503],
        "found_after_504": [m for m in found if by_msg[m].status == 504],
        "found_without_answer": [m for m in found if by_msg[m].status is None],
    }


def failure_reasons(outcomes):
    """{"<status> <message or connection error>": count} of the answers other than 200."""
    reasons = collections.Counter(f"{o.status} {o.message or o.error}" for o in outcomes if o.status != 200)
    return dict(reasons)


def delivery_errors(gw):
    """{"<kind> <status>": count} of the gateway's topicgate_delivery_errors_total (the producer's
    errors by librdkafka kind and the status answered), from one metrics scrape."""
    return {f"{dict(ls)['kind']} {dict(ls)['status']}": int(v) for (n, ls), v in gw.metrics().items()
            if n == "topicgate_delivery_errors_total" and v}


def status_counts(outcomes):
    return dict(collections.Counter(str(o.status) if o.status is not None else "no answer" for o in outcomes))
