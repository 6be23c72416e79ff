"""make bench, the read side (issue #22): topicgate's read route against a bare rdkafka consumer.

Contenders, on one topic of BENCH_READ_RECORDS records (default 20,000, ~1 KB Protobuf values,
BENCH_PARTITIONS partitions, default 3) written by Kafka's own producer before:
- rdkafka-consumer-bare: bench/rdkafka-bare's consumer reads them all (the limit), records/s.
- sse-1: one SSE client reads them all from the start through the gateway, records/s, and its
  ratio to the bare consumer (goal ≥ 0.5).
- page-1000: a paged GET of 1,000 records from the start (median of BENCH_READ_PAGES, default 5).
- sse-fanout-N (N in BENCH_READ_FANOUT, default "100,1000"): N SSE clients follow the topic's end
  while a producer writes BENCH_FANOUT_RECORDS (default 2,000) records at BENCH_FANOUT_RATE/s
  (default 500); events/s delivered in total and the p50/p99 delay from the record's timestamp
  (the producer's CreateTime) to the event's arrival, over every client; the gateway's peak RSS;
  and Kafka's own count of the fetches it served for the topic (the broker's JMX meter
  TotalFetchRequestsPerSec of the topic, marked once per partition in each fetch request) next to
  the follower's rounds (topicgate_read_follower_fetches_total): fetches per partition per round,
  which must not grow with the clients (the issue's goal: at most one).

The gateway (TG_GATEWAY_BIN, else build/krakend, else build/kdhost) serves one read route with
max_readers above the largest fan-out. Prints a JSON document and a Markdown table; writes
bench/results/read-latest.json. Loopback only; run through `make bench-read` (or `make bench`).
"""

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
GATEWAY = Path(os.environ.get("TG_GATEWAY_BIN") or (BUILD / "krakend" if (BUILD / "krakend").is_file() else BUILD / "kdhost"))
CONSUMER = ROOT / "target" / "release" / "rdkafka_bare_consume"
PROTO = 'syntax = "proto3";\npackage bench.v1;\nmessage Event { string sample_message = 1; int64 seq = 2; }\n'


def env_int(name, default):
    return int(os.environ.get(name) or default)


def log(*args):
    print("bench-read:", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def event(seq, size=1000):
    """A PROTO Event of about `size` bytes."""
    text = (f"r{seq}-" + "x" * size)[:size].encode()
    return b"\x0a" + varint(len(text)) + text + b"\x10" + varint(seq)


def produce(bootstrap, topic, n, partitions, rate=0):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=event(i), key=str(i).encode(), partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        if rate:
            ahead = t0 + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # paces the writes; nothing is measured by it
    assert p.flush(60) == 0


class BrokerFetches:
    """Kafka's own count of the fetches the test broker served per topic: its JMX meter
    kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec,topic=T, marked once for each
    of the topic's partitions in each fetch request. The broker's JMX agent is started on a loopback
    port through jcmd when it is not on yet (the broker JVM of scripts/kafka.sh, by its pid file)."""

    def __init__(self):
        run = Path(os.environ.get("TOPICGATE_RUN_DIR") or ".run")
        pid = (run if run.is_absolute() else ROOT / run).joinpath("kafka.pid").read_text().strip()
        status = self._jcmd(pid, "ManagementAgent.status")
        port = re.search(r"jmxremote\.port = (\d+)", status)
        if port:
            self.port = int(port.group(1))
        else:
            self.port = free_port()
            self._jcmd(pid, "ManagementAgent.start", "jmxremote.host=127.0.0.1", f"jmxremote.port={self.port}",
                       f"jmxremote.rmi.port={self.port}", "jmxremote.authenticate=false", "jmxremote.ssl=false")

    @staticmethod
    def _jcmd(*args):
        out = subprocess.run(["jcmd", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"jcmd {' '.join(args)}: {out.stdout}{out.stderr}"
        return out.stdout

    def count(self, topic):
        """Partition fetches served for topic so far (0 before its first)."""
        out = subprocess.run(
            ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", os.environ["KAFKA_CLASSPATH"],
             "org.apache.kafka.tools.JmxTool", "--jmx-url",
             f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{self.port}/jmxrmi", "--object-name",
             f"kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec,topic={topic}",
             "--attributes", "Count", "--one-time", "true", "--report-format", "csv"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        m = re.search(r'topic=' + re.escape(topic) + r':Count,"(\d+)"', out.stdout)
        return int(m.group(1)) if m else 0


def follower_rounds(port, topic):
    """The gateway's follower rounds of topic so far (topicgate_read_follower_fetches_total)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/__topicgate/metrics", timeout=30).read().decode()
    m = re.search(r'^topicgate_read_follower_fetches_total\{topic="' + re.escape(topic) + r'"\} (\S+)$', text, re.M)
    return int(float(m.group(1))) if m else 0


class Gateway:
    def __init__(self, work, topic, max_readers):
        self.work, self.topic, self.port = work, topic, free_port()
        (work / "schemas").mkdir()
        (work / "schemas" / f"{topic}.proto").write_text(PROTO)
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        srv = base["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"]["kafka"]["bootstrap_servers"] = os.environ["KAFKA_BOOTSTRAP"]
        srv["core"]["registry"] = {"kind": "file", "directory": str(work / "schemas")}
        srv["routes"] = [{"path_prefix": "/r/", "topics": [topic],
                          "read": {"topics": [topic], "max_readers": max_readers, "limit": 1000, "max_stall_ms": 30000}}]
        base["extra_config"] = {"plugin/http-server": base["extra_config"]["plugin/http-server"],
                                "telemetry/logging": {"level": "WARNING", "stdout": True}}
        base.update(endpoints=[], port=self.port, listen_ip="127.0.0.1")
        base["plugin"]["folder"] = str(BUILD) + "/"
        cfg = work / "krakend.json"
        cfg.write_text(json.dumps(base))
        self.log = open(work / "gateway.log", "wb")
        self.proc = subprocess.Popen([str(GATEWAY), "run", "-c", str(cfg), "-p", str(self.port)], cwd=ROOT,
                                     env={**os.environ, "USAGE_DISABLE": "1"}, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, "the gateway exited while starting"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not listen within 30 s"
                time.sleep(0.1)

    def rss_mb(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


async def sse_client(port, path, want, on_event, headers="", on_open=lambda: None):
    """Reads `want` SSE events (or until cancelled); calls on_open() once the answer's head is in
    and on_event(data JSON, arrival time) for each event."""
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    # HTTP/1.0: the answer comes unchunked (a chunk header could split an event's line).
    w.write(f"GET {path} HTTP/1.0\r\nHost: b\r\nAccept: text/event-stream\r\n{headers}\r\n".encode())
    await w.drain()
    status = await r.readline()
    assert b" 200 " in status, status
    while (await r.readline()) not in (b"\r\n", b""):
        pass
    on_open()
    got = 0
    try:
        while got < want:
            line = await r.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                on_event(line[6:], time.time())
                got += 1
    finally:
        w.close()
    return got


async def sse_count(port, path, want):
    """Reads SSE events until `want` of them came, counting their `data:` lines in large reads
    without parsing them: the client costs little next to the gateway it measures (parsing each
    line in Python capped a client at about 51,000 events/s, near the bare consumer's rate)."""
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    w.write(f"GET {path} HTTP/1.0\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    got, tail = 0, b"\n"  # the head's last newline starts the first line
    try:
        while got < want:
            chunk = await r.read(1 << 20)
            if not chunk:
                break
            # A "\ndata: " split between two reads is counted once: the last 6 bytes go first.
            buf = tail + chunk
            got += buf.count(b"\ndata: ")
            tail = buf[-6:]
    finally:
        w.close()
    return got


def run():
    bootstrap = os.environ["KAFKA_BOOTSTRAP"]
    partitions = env_int("BENCH_PARTITIONS", 3)
    n = env_int("BENCH_READ_RECORDS", 20000)
    pages = env_int("BENCH_READ_PAGES", 5)
    fanouts = [int(x) for x in (os.environ.get("BENCH_READ_FANOUT") or "1,100,1000").split(",") if x]
    fan_records = env_int("BENCH_FANOUT_RECORDS", 2000)
    fan_rate = env_int("BENCH_FANOUT_RATE", 500)
    run_id = time.strftime("%Y%m%d%H%M%S")
    work = Path(tempfile.mkdtemp(prefix="tgbench-read-"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, live = f"tgbench-read-{run_id}", f"tgbench-read-live-{run_id}"
    for f in admin.create_topics([NewTopic(t, partitions, 1) for t in (topic, live)], operation_timeout=30).values():
        f.result(30)
    log(f"writing {n} records to {topic}")
    produce(bootstrap, topic, n, partitions)
    results = {"gateway": GATEWAY.name, "records": n, "partitions": partitions, "loadavg_before": os.getloadavg()}

    out = subprocess.run([str(CONSUMER), topic, str(partitions), str(n), "120"], capture_output=True, text=True,
                         env={**os.environ, "KAFKA_BOOTSTRAP": bootstrap}, timeout=180)
    assert out.returncode == 0, out.stderr
    bare = json.loads(out.stdout)
    results["rdkafka-consumer-bare"] = {"records_per_s": round(bare["records_per_s"])}
    log("bare consumer", bare)

    gw = Gateway(work, topic, max(fanouts + [64]) + 8)
    try:
        # Gateway warm-up: the schema and a reader.
        urllib.request.urlopen(f"http://127.0.0.1:{gw.port}/r/{topic}?start=earliest&limit=10", timeout=30).read()
        t0 = time.monotonic()
        got = asyncio.run(asyncio.wait_for(sse_count(gw.port, f"/r/{topic}?start=earliest&limit=1000", n), 120))
        dt = time.monotonic() - t0
        assert got == n, got
        results["sse-1"] = {"records_per_s": round(n / dt), "ratio_to_bare": round(n / dt / bare["records_per_s"], 2)}
        log("sse-1", results["sse-1"])

        times = []
        for _ in range(pages):
            t0 = time.monotonic()
            body = urllib.request.urlopen(f"http://127.0.0.1:{gw.port}/r/{topic}?start=earliest&limit=1000", timeout=60).read()
            times.append(time.monotonic() - t0)
            assert len(json.loads(body)["records"]) == 1000
        results["page-1000"] = {"median_ms": round(statistics.median(times) * 1000, 1),
                                "records_per_s": round(1000 / statistics.median(times))}
        log("page-1000", results["page-1000"])

    finally:
        gw.stop()
    broker = BrokerFetches()
    for clients in fanouts:
        results[f"sse-fanout-{clients}"] = fanout(bootstrap, live, partitions, clients, fan_records, fan_rate, broker)
        log(f"sse-fanout-{clients}", results[f"sse-fanout-{clients}"])
    results["loadavg_after"] = os.getloadavg()
    return results


def fanout(bootstrap, topic, partitions, clients, records, rate, broker):
    """`clients` SSE clients from the end of `topic`; `records` written at `rate`/s; delays from
    each record's timestamp to its event's arrival, over every client; the partition fetches Kafka
    served for the topic meanwhile per follower round. A gateway of its own, so its peak RSS is the
    fan-out's."""
    work = Path(tempfile.mkdtemp(prefix="tgbench-read-fan-"))
    g = Gateway(work, topic, clients + 8)
    delays, peak = [], [0.0]
    counts = [None, None]  # (Kafka's partition fetches of the topic, follower rounds) before and after

    def on_event(data, t):
        ts = json.loads(data).get("timestamp")
        if ts:
            delays.append(t * 1000 - ts)

    async def main():
        end = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{g.port}/r/{topic}?limit=1", timeout=30).read())["next"]
        opened = [0]

        def on_open():
            opened[0] += 1

        tasks = [asyncio.create_task(sse_client(g.port, f"/r/{topic}", records, on_event, f"Last-Event-ID: {end}\r\n",
                                                on_open)) for _ in range(clients)]
        # Every stream's head is in (its first page read: it is at the end and follows the topic's
        # follower) before the writes begin: the fan-out of the tail is measured, not clients that
        # catch up on their own pages because they connected late.
        deadline = time.monotonic() + 120
        while opened[0] < clients and time.monotonic() < deadline and not any(t.done() for t in tasks):
            await asyncio.sleep(0.1)
        assert opened[0] == clients, f"{opened[0]} of {clients} streams opened within 120 s"
        counts[0] = (broker.count(topic), follower_rounds(g.port, topic))
        t0 = time.monotonic()
        writer = asyncio.get_running_loop().run_in_executor(None, produce, bootstrap, topic, records, partitions, rate)

        async def sample():
            while not all(t.done() for t in tasks):
                peak[0] = max(peak[0], g.rss_mb())
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=records / rate + 120)
        await writer
        await sampler
        dt = time.monotonic() - t0
        counts[1] = (broker.count(topic), follower_rounds(g.port, topic))
        return done, dt

    try:
        done, dt = asyncio.run(main())
    finally:
        g.stop()
    ok = [d for d in done if isinstance(d, int)]
    errors = [repr(d) for d in done if not isinstance(d, int)][:3]
    total = sum(ok)
    delays.sort()
    q = lambda f: round(delays[min(len(delays) - 1, int(f * len(delays)))], 1) if delays else None
    fetches, rounds = counts[1][0] - counts[0][0], counts[1][1] - counts[0][1]
    return {"clients": clients, "clients_complete": sum(1 for d in ok if d == records), "events": total,
            "events_per_s": round(total / dt), "delay_p50_ms": q(0.50), "delay_p99_ms": q(0.99),
            "peak_rss_mb": round(peak[0], 1), "kafka_partition_fetches": fetches,
            "kafka_partition_fetches_per_s": round(fetches / dt, 1), "follower_rounds": rounds,
            "fetches_per_partition_per_round": round(fetches / partitions / rounds, 2) if rounds else None,
            "errors": errors}


def markdown(r):
    rows = ["| contender | figure |", "|---|---|",
            f"| rdkafka-consumer-bare | {r['rdkafka-consumer-bare']['records_per_s']} records/s |",
            f"| sse-1 | {r['sse-1']['records_per_s']} records/s ({r['sse-1']['ratio_to_bare']}× bare) |",
            f"| page-1000 | {r['page-1000']['median_ms']} ms median ({r['page-1000']['records_per_s']} records/s) |"]
    for k, v in r.items():
        if k.startswith("sse-fanout-"):
            rows.append(f"| {k} | {v['events_per_s']} events/s delivered, delay p50 {v['delay_p50_ms']} ms / p99 "
                        f"{v['delay_p99_ms']} ms, {v['clients_complete']}/{v['clients']} clients got every event, "
                        f"peak RSS {v['peak_rss_mb']} MB, Kafka served {v['kafka_partition_fetches']} partition fetches "
                        f"({v['kafka_partition_fetches_per_s']}/s) in "
                        f"{v['follower_rounds']} follower rounds ({v['fetches_per_partition_per_round']} per partition per round) |")
    return "\n".join(rows)


if __name__ == "__main__":
    res = run()
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "read-latest.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    print(markdown(res))
