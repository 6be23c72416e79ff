"""Clients retrying with the same Idempotency-Key across two gateway replicas through a rolling
restart and a leader SIGKILL (issue #21; docs/design.md "Idempotency-Key", shared mode): two
gateway processes on different ports share one intent topic (core option `idempotency`, RF 3 on
the cluster, created by the core), core defaults otherwise. Each client posts records under a
fresh key each; on any non-2xx answer, timeout or connection error it retries the same key and
body on the other replica (bounded), as a careful client does. Meanwhile the three brokers are
rolled (SIGTERM, start, healthy, in turn), then partition 0's leader is killed and started again.
Afterwards Kafka's own consumer reads every partition: each key is on the topic exactly once (its
record header), where its 2xx answer said, and every key got a 2xx."""

import collections
import http.client
import json
import os
import re
import threading
import time
import uuid

from faultkit import Cluster, body, default_core, delivery_errors, metric, msg_of, read_records, wait_for

CLIENTS = 6
# A key's retries: at most this many attempts and this long, then the client gives up on it.
MAX_ATTEMPTS = 20
KEY_BUDGET_S = 120
# A client's own timeout per attempt: past the documented answer bound (delivery_timeout_ms 5 s
# + 5 s); a request waiting for another replica's in-flight owner may take longer and is retried.
CLIENT_TIMEOUT_S = 15
KEYS_PER_PHASE = 150
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
OUTCOMES = ("replayed", "waited", "conflict", "evicted", "found_written", "taken_over")

Attempt = collections.namedtuple("Attempt", "replica status t0 t1 replayed partition offset retry_after message error")


class KeyResult:
    """One key's attempts; final is its 2xx attempt, or None when the client gave up."""

    def __init__(self, key, msg):
        self.key, self.msg, self.attempts, self.final = key, msg, [], None

    def __repr__(self):
        tried = [(a.replica, a.status or a.error, round(a.t1 - self.attempts[0].t0, 2), (a.message or "")[:120])
                 for a in self.attempts]
        return f"<key {self.key} msg {self.msg} final {self.final and (self.final.partition, self.final.offset)} {tried}>"


class Clients:
    """`threads` clients posting one record per fresh key to `path`, alternating between the
    replicas `gws` on each retry of a key; stop() lets every client finish its current key."""

    def __init__(self, gws, path, prefix, threads):
        self.gws, self.path, self.prefix = gws, path, prefix
        self.done = []  # KeyResults, in the order their keys ended
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in range(threads)]

    def _run(self, c):
        conns = {}
        while not self._stop.is_set():
            with self._lock:
                n = self._next
                self._next += 1
            # Clients start on alternate replicas so that both serve first attempts.
            self.finished(send_key(self.gws, self.path, f"{self.prefix}-{uuid.uuid4()}", f"{self.prefix}-{n}",
                                   (c + n) % 2, conns))
        for conn in conns.values():
            conn.close()

    def finished(self, res):
        with self._lock:
            self.done.append(res)

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        # A key ends within its budget plus one attempt's timeout and one pause.
        deadline = time.monotonic() + KEY_BUDGET_S + CLIENT_TIMEOUT_S + 10
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self._threads)
        assert alive == 0, f"{alive} clients still busy with a key past its bound: a request hangs"
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            return list(self.done)

    def count_ok(self, since):
        """Keys answered 2xx whose first attempt began at or after `since` (monotonic)."""
        with self._lock:
            return sum(1 for r in self.done if r.final is not None and r.attempts[0].t0 >= since)


def attempt(gw, path, key, msg, replica, conns):
    """POSTs the key's record once to replica `replica` (a kept connection if it has one)."""
    conn = conns.pop(replica, None) or http.client.HTTPConnection("127.0.0.1", gw.port, timeout=CLIENT_TIMEOUT_S)
    t0 = time.monotonic()
    try:
        conn.request("POST", path, body=body(msg), headers={
            "Content-Type": "application/json", "message-key": msg, HEADER: key})
        r = conn.getresponse()
        raw = r.read()
        t1 = time.monotonic()
        try:
            b = json.loads(raw)
        except ValueError:
            b = {"message": raw[:200].decode(errors="replace")}
        if not r.will_close:
            conns[replica] = conn
        else:
            conn.close()
        return Attempt(replica, r.status, t0, t1, r.getheader(REPLAYED) == "true", b.get("partition"),
                       b.get("offset"), r.getheader("Retry-After"), b.get("message"), None)
    except Exception as e:  # a timeout or a refused/broken connection: retried like a 5xx
        conn.close()
        return Attempt(replica, None, t0, time.monotonic(), False, None, None, None, None, f"{type(e).__name__}: {e}")


def send_key(gws, path, key, msg, replica, conns):
    """Posts one record under `key` until a 2xx, retrying the same key and body on the other
    replica after anything else (Retry-After, or a short backoff), within MAX_ATTEMPTS and KEY_BUDGET_S."""
    res = KeyResult(key, msg)
    give_up = time.monotonic() + KEY_BUDGET_S
    for i in range(MAX_ATTEMPTS):
        a = attempt(gws[replica], path, key, msg, replica, conns)
        res.attempts.append(a)
        if a.status is not None and a.status // 100 == 2:
            res.final = a
            break
        pause = min(int(a.retry_after), 5) if (a.retry_after or "").isdigit() else min(0.1 * 2 ** i, 2)
        if time.monotonic() + pause > give_up:
            break
        time.sleep(pause)
        replica = 1 - replica
    return res


def shared_core(log_topic):
    """The core's defaults, with keys shared through `log_topic` for 10 minutes."""
    return {**default_core(), "idempotency": {"topic": log_topic, "window_ms": 600000}}


def idempotency_totals(gws):
    """topicgate_idempotency_total by outcome, summed over the replicas."""
    scrapes = [gw.metrics() for gw in gws]
    return {o: int(sum(metric(m, "topicgate_idempotency_total", outcome=o) or 0 for m in scrapes)) for o in OUTCOMES}


def reason(a):
    """An attempt's error message with its key left out, so that equal reasons count together."""
    return re.sub(r'"idem-[0-9a-f-]+"', "<key>", a.message or a.error or "")[:200]


def phase_of(t, phases):
    for name, t0, t1 in phases:
        if t0 <= t <= t1:
            return name
    return "steady"


def test_idempotent_clients_across_roll_and_leader_kill(cluster, gateways, figures):
    topic = f"ClusterIdem{uuid.uuid4().hex[:8]}"
    log_topic = f"tg-idem-{uuid.uuid4().hex[:8]}"
    t_start = time.monotonic()
    gws = [gateways([topic], shared_core(log_topic)) for _ in range(2)]
    path = f"/f/{topic}"
    # Each replica has created or found the intent topic and follows it: a keyed record passes there.
    warm = []
    for i, gw in enumerate(gws):
        conns = {}
        warm.append(send_key([gw, gw], path, f"warm-{uuid.uuid4()}", f"warm-{i}", 0, conns))
        for conn in conns.values():
            conn.close()
        assert warm[-1].final is not None, f"replica {i} answered no keyed record: {warm[-1]}"
    clients = Clients(gws, path, "idem", CLIENTS).start()
    phases = []  # (name, began, healthy again)
    victim = new_leader = None
    try:
        wait_for(lambda: clients.count_ok(0) >= KEYS_PER_PHASE, 120, f"{KEYS_PER_PHASE} keys answered before the roll")
        parts = cluster.partitions(topic)
        log_parts = cluster.partitions(log_topic)
        assert parts and all(len(p["replicas"]) == 3 for p in parts), f"the topic is not RF 3: {parts}"
        assert log_parts and all(len(p["replicas"]) == 3 for p in log_parts), f"the intent topic is not RF 3: {log_parts}"
        for n in Cluster.NODES:
            t_stop = time.monotonic()
            cluster.stop_broker(n)
            t_down = time.monotonic()
            wait_for(lambda: clients.count_ok(t_down) >= KEYS_PER_PHASE, 120,
                     f"{KEYS_PER_PHASE} keys answered while broker {n} is down")
            cluster.start_broker(n)
            cluster.wait_healthy()
            phases.append((f"roll broker {n}", t_stop, time.monotonic()))
        victim = cluster.leader(topic, 0)
        assert victim in Cluster.NODES, f"{topic}/0 has no leader before the kill"
        t_kill = time.monotonic()
        cluster.kill_broker(victim)
        leaders = []
        wait_for(lambda: leaders.append(cluster.leader(topic, 0)) or leaders[-1] not in (victim, -1), 90,
                 f"a new leader of {topic}/0 after broker {victim} was killed", step=0.5)
        new_leader = leaders[-1]
        t_elected = time.monotonic()
        wait_for(lambda: clients.count_ok(t_elected) >= KEYS_PER_PHASE, 120,
                 f"{KEYS_PER_PHASE} keys answered with broker {victim} dead")
        cluster.start_broker(victim)
        cluster.wait_healthy()
        phases.append((f"kill broker {victim}", t_kill, time.monotonic()))
        t_end = time.monotonic()
        wait_for(lambda: clients.count_ok(t_end) >= KEYS_PER_PHASE, 120, f"{KEYS_PER_PHASE} keys answered once healthy")
    finally:
        if victim is not None and not cluster.running(victim):
            cluster.start_broker(victim)
        results = warm + clients.stop()

    records = read_records(gws[0], topic)
    by_key = collections.defaultdict(list)  # key: [(partition, offset, msg)]
    unkeyed = []
    for r in records:
        keys = [v for k, v in r.headers if k == HEADER]
        if len(keys) != 1:
            unkeyed.append(r)
            continue
        by_key[keys[0].decode()].append((r.partition, r.offset, msg_of(r.value)))
    sent = {res.key: res for res in results}
    attempts = [a for res in results for a in res.attempts]
    failed = [a for a in attempts if a.status is None or a.status // 100 != 2]
    non2xx = collections.Counter(
        f"{phase_of(a.t1, phases)}: {a.status or 'no answer'} {reason(a)}" for a in failed)
    retried = [res for res in results if len(res.attempts) > 1]
    figures.update({
        "gateway": os.path.basename(gws[0].bin),
        "clients": CLIENTS, "partitions (topic, intent topic)": [len(parts), len(log_parts)],
        "keys": len(results), "keys answered 2xx": sum(res.final is not None for res in results),
        "attempts": len(attempts), "keys retried": len(retried),
        "attempts per retried key": dict(collections.Counter(len(res.attempts) for res in retried)),
        "retries answered replayed (Idempotent-Replayed)": sum(res.final is not None and res.final.replayed
                                                               for res in retried),
        "non-2xx by phase, status and message": dict(non2xx),
        "retried keys (replica, status, s since the first attempt, replayed, message), the first 20": [
            [(a.replica, a.status or "no answer", round(a.t1 - res.attempts[0].t0, 1), a.replayed, reason(a)[:70])
             for a in res.attempts]
            for res in retried[:20]],
        "idempotency outcomes, both replicas (metrics)": idempotency_totals(gws),
        "producer errors by kind and status, both replicas (metrics)": [delivery_errors(gw) for gw in gws],
        "records on the topic": len(records),
        "killed broker (leader of partition 0), new leader": [victim, new_leader],
        "phase s (stop/kill to healthy)": {name: round(t1 - t0, 1) for name, t0, t1 in phases},
        "longest key to its 2xx s": round(max((res.final.t1 - res.attempts[0].t0 for res in results if res.final),
                                              default=0), 2),
        "test min": round((time.monotonic() - t_start) / 60, 1),
    })

    # Nothing on the topic but the keys sent, each record carrying its key once.
    assert unkeyed == [], f"{len(unkeyed)} records without exactly one {HEADER} header, e.g. {unkeyed[:3]}"
    strangers = {k: v for k, v in by_key.items() if k not in sent}
    assert strangers == {}, f"records under keys nobody sent: {list(strangers.items())[:5]}"
    # No key written twice, whether or not its client got a 2xx.
    twice = {k: (v, sent[k]) for k, v in by_key.items() if len(v) > 1}
    assert twice == {}, f"{len(twice)} keys written more than once (records, attempts): {list(twice.values())[:5]}"
    # Every key got a 2xx within its bounds (else: which keys, and what each attempt was answered).
    gave_up = [res for res in results if res.final is None]
    assert gave_up == [], (f"{len(gave_up)} keys without a 2xx within {MAX_ATTEMPTS} attempts / {KEY_BUDGET_S} s "
                           f"(replica, status or error, s since the first attempt, message): {gave_up[:5]}")
    # Each key's 2xx names its one record, with the key's body.
    wrong = [(res, by_key.get(res.key)) for res in results
             if by_key.get(res.key) != [(res.final.partition, res.final.offset, res.msg)]]
    assert wrong == [], f"{len(wrong)} keys whose 2xx is not their one record on the topic: {wrong[:5]}"
    # A first attempt is never a replay (keys are fresh), and a 2xx is a 200 (single records).
    assert not [res for res in results if res.attempts[0].replayed], "a fresh key answered as a replay"
    assert {res.final.status for res in results} == {200}, {res.final.status for res in results}
    # Failures are retriable: 503 (with Retry-After), 504, 409 (in flight elsewhere), or no answer.
    bad = [a for a in failed if a.status not in (None, 409, 503, 504)]
    assert bad == [], f"{len(bad)} answers outside 2xx/409/503/504, e.g. {bad[:5]}"
    assert [a for a in failed if a.status == 503 and a.retry_after is None] == [], "503 without Retry-After"
