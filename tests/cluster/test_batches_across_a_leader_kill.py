"""An atomic batch load and a stream across a SIGKILL of a partition leader (issue #21): several
clients post all-or-nothing batches whose lines are keyed each by its own message (so one batch
spans partitions), and one long stream runs, while the leader of partition 0 is killed and
started again. Afterwards Kafka's own consumer (read_committed) reads every partition: every batch
is on the topic whole or not at all (whole when answered 200, absent when 503); the stream's
answers are exact (every line answered 200 is on the topic once, where its answer said; the last
line's counts are the answers' counts)."""

import http.client
import json
import os
import threading
import time
import uuid

from faultkit import (FAULT_STATUSES, Outcome, account, e2e, failure_reasons, read_topic, status_counts,
                      wait_for)
from test_rolling_restart import HANG_S, core_under_test

BATCH = 40
CLIENTS = 4
PARTITION = 0


def envelope(msgs):
    return "".join(json.dumps({"value": {"sample_message": m}, "key": m}) + "\n" for m in msgs).encode()


class BatchLoad:
    """Clients posting atomic batches of BATCH envelope lines until stopped; every batch's lines
    and answer are kept."""

    def __init__(self, gw, path):
        self.gw, self.path = gw, path
        self.batches = []  # (msgs, status, answer body, t0, t1)
        self._lock = threading.Lock()
        self._n = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                b, self._n = self._n, self._n + 1
            msgs = [f"ab{b}-{i}" for i in range(BATCH)]
            t0 = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=HANG_S)
            try:
                conn.request("POST", self.path, body=envelope(msgs), headers={"Content-Type": "application/x-ndjson"})
                r = conn.getresponse()
                status, body = r.status, json.loads(r.read() or b"{}")
            except Exception as e:  # kept as "no answer"; the test decides
                status, body = None, {"message": f"{type(e).__name__}: {e}"}
            finally:
                conn.close()
            with self._lock:
                self.batches.append((msgs, status, body, t0, time.monotonic()))

    def count(self, pred):
        with self._lock:
            return sum(1 for b in self.batches if pred(b))

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(HANG_S + 10)
        assert not any(t.is_alive() for t in self._threads), "a batch client still waits: a request hangs"
        return list(self.batches)


def test_atomic_batches_and_a_stream_across_a_leader_kill(cluster, gateways, figures):
    run = uuid.uuid4().hex[:8]
    atopic, stopic = f"ClusterAtomic{run}", f"ClusterStream{run}"
    core = core_under_test()
    agw = gateways([atopic], {**core, "transactions": {"timeout_ms": 10000}}, batch={"atomic": True, "envelope": True})
    sgw = gateways([stopic], core, batch={"envelope": True, "stream": {"in_flight": 500, "idle_timeout_ms": 60000}})
    # The stream's topic exists and has leaders before the stream starts.
    wait_for(lambda: sgw.post(f"/f/{stopic}", headers={"Content-Type": "application/json"}).status == 200,
             90, "a first record on the stream's topic")
    batches = BatchLoad(agw, f"/f/{atopic}").start()

    answers, ended = [], threading.Event()
    s = e2e.Stream(sgw, f"/f/{stopic}", key=None, headers=None, timeout=HANG_S * 3)

    def stream_reader():
        try:
            while True:
                line = s.response().readline()
                if not line:
                    break
                answers.append(json.loads(line))
        finally:
            ended.set()

    def stream_sender():
        try:
            for i in range(0, 1_000_000, 200):
                if ended.is_set() or stop_stream.is_set():
                    break
                s.send(envelope([f"st{j}" for j in range(i, i + 200)]))
                time.sleep(0.02)  # a steady client, not a flood: the stream spans the whole test
            s.end()
        except OSError:
            pass  # the gateway stopped the stream and closed the connection

    stop_stream = threading.Event()
    threading.Thread(target=stream_sender, daemon=True).start()
    reader = threading.Thread(target=stream_reader, daemon=True)
    reader.start()
    victim = None
    try:
        wait_for(lambda: batches.count(lambda b: b[1] == 200) >= 20 and len(answers) >= 2000, 120,
                 "20 batches and 2000 stream records acknowledged before the kill")
        victim = cluster.leader(atopic, PARTITION)
        assert victim in (1, 2, 3), f"{atopic}/{PARTITION} has no leader"
        cluster.kill_broker(victim)
        t_kill = time.monotonic()
        wait_for(lambda: batches.count(lambda b: b[1] == 200 and b[3] > t_kill + 15) >= 10, 120,
                 "10 batches acknowledged after the new leader took over")
        cluster.start_broker(victim)
        cluster.wait_healthy()
        t_end = time.monotonic()
        wait_for(lambda: batches.count(lambda b: b[3] >= t_end) >= 10, 60, "10 more batches once healthy")
    finally:
        if victim is not None and not cluster.running(victim):
            cluster.start_broker(victim)
        stop_stream.set()
        done = batches.stop()
        reader.join(HANG_S * 3)
    assert not reader.is_alive(), "the stream's answer never ended"

    # Batches: whole or absent, and as answered.
    on_topic = {}
    for partition, offset, key, value in read_topic(agw, atopic):
        on_topic.setdefault(key.decode(), []).append((partition, offset))
    kinds = {"whole": 0, "absent": 0}
    wrong = []
    for msgs, status, body, _, _ in done:
        found = [m for m in msgs if m in on_topic]
        twice = [m for m in msgs if len(on_topic.get(m, [])) > 1]
        kind = "whole" if len(found) == BATCH else "absent" if not found else "part"
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "part" or twice or (status == 200 and kind != "whole") or (status == 503 and kind != "absent"):
            wrong.append((status, kind, len(found), twice[:3], (body.get("message") or "")[:120]))
        elif status == 200:
            said = [(e["partition"], e["offset"]) for e in body["records"]]
            if said != [on_topic[m][0] for m in msgs]:
                wrong.append((status, "misplaced", said[:3], [on_topic[m][0] for m in msgs][:3]))

    # The stream: its last line, and every line answered 200 once where it said.
    end = answers.pop() if answers and "records" in answers[-1] else None
    souts = [Outcome(f"st{a['line'] - 1}", int(a["statusCode"]), a.get("partition"), a.get("offset"),
                     0, 0, None, None, a.get("message")) for a in answers]
    sacc = account(souts, [r for r in read_topic(sgw, stopic) if r[2] and r[2].startswith(b"st")])
    figures.update({
        "gateways": os.path.basename(agw.bin), "killed broker": victim,
        "batches by status": status_counts([Outcome(None, b[1], None, None, 0, 0, None, None, None) for b in done]),
        "batches on the topic": kinds,
        "batch failures by status and message": dict(failure_reasons(
            [Outcome(None, b[1], None, None, 0, 0, None, None, (b[2].get("message") or "")[:100]) for b in done])),
        "stream end": end, "stream answers": len(answers),
        "stream lines by status": status_counts(souts),
    })

    assert not wrong, f"{len(wrong)} batches not as answered / not whole or absent: {wrong[:5]}"
    assert all(b[1] in FAULT_STATUSES for b in done), status_counts([Outcome(None, b[1], None, None, 0, 0, None, None, None) for b in done])
    assert end is not None, f"the stream ended without its last line: {answers[-3:]}"
    assert [a["line"] for a in answers] == list(range(1, len(answers) + 1)), "stream answers out of order"
    assert end["records"] == len(answers) and end["written"] == sum(a["statusCode"] == "200" for a in answers), end
    if end["statusCode"] != "200":
        first_failed = min(a["line"] for a in answers if a["statusCode"] != "200")
        assert end["stoppedAtLine"] == first_failed, (end, first_failed)
    assert sacc["lost"] == [] and sacc["misplaced"] == [] and sacc["duplicates"] == [], \
        (sacc["lost"][:5], sacc["misplaced"][:5], sacc["duplicates"][:5])
    assert sacc["unknown"] == [], sacc["unknown"][:5]
