"""Shared fetches and bounds of the read side (issue #22): 1,000 event streams of one topic read
through one follower (its fetch rounds counted, not one per client), a client that never reads
is cut for falling behind while the gateway's memory stays bounded, readers over a topic's limit
get 503.

A page stops before the record that would pass read.max_page_bytes and its next position
resumes exactly there.

Its own gateway (routes /f/event/ for many readers, /f/small/ with small bounds) on the test Kafka.
"""

import asyncio
import json
import socket
import time

import pytest

from conftest import metric, running
from test_read import PARTITIONS, ReadGateway, get, produce, proto_event, readable_topics

CLIENTS = 1000
RECORDS = 40
PER_TOPIC = 2  # read.max_readers_per_topic of /f/small/
CLIENT_BUFFER = 65536  # read.max_client_buffer_bytes of /f/small/
PAGE_BYTES = 4096  # read.max_page_bytes of /f/small/
RSS_GROWTH_BOUND = 96 << 20  # what a never-reading client may add to the gateway's RSS
MAX_CUT_BATCHES = 20  # of 500 records of ~10 KB, written at most until a stream is cut


class FanoutGateway(ReadGateway):
    """The gateway with only the routes these tests use."""

    def routes(self):
        return [
            {"path_prefix": "/f/event/", "topics": [self.topic],
             "read": {"topics": [self.topic], "max_readers": CLIENTS + 100, "keep_alive_ms": 1000}},
            {"path_prefix": "/f/small/", "topics": [self.json_topic, self.avro_topic],
             "read": {"topics": [self.json_topic, self.avro_topic], "max_readers_per_topic": PER_TOPIC,
                      "max_client_buffer_bytes": CLIENT_BUFFER, "max_page_bytes": PAGE_BYTES, "max_stall_ms": 30000, "keep_alive_ms": 1000}},
        ]

    def rss(self):
        """The gateway process's resident set, in bytes (from /proc)."""
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def fgw():
    yield from running(FanoutGateway, "topicgate-fanout-")


@pytest.fixture(scope="module")
def ftopics(fgw):
    return readable_topics(fgw, [f"/f/event/{fgw.topic}", f"/f/small/{fgw.json_topic}", f"/f/small/{fgw.avro_topic}"])


async def sse_events(port, path, last_id, opened, want, got):
    """One event stream on a raw socket: records its (partition, offset, event id) triples in got
    until it holds want of them or the stream ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                     f"Last-Event-ID: {last_id}\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        assert b" 200 " in status, status
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        opened.set_result(True)
        buf, event_id = b"", None
        while len(got) < want:
            size = await reader.readline()
            if not size or int(size.split(b";")[0], 16) == 0:
                return
            buf += await reader.readexactly(int(size.split(b";")[0], 16))
            await reader.readexactly(2)
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.startswith(b"id: "):
                    event_id = line[4:].decode()
                elif line.startswith(b"data: "):
                    d = json.loads(line[6:])
                    got.append((d["partition"], d["offset"], event_id))
    finally:
        if not opened.done():
            opened.set_result(False)
        writer.close()


def test_a_thousand_streams_share_one_follower_and_get_every_record(fgw, ftopics):
    topic = fgw.topic
    r = get(fgw, f"/f/event/{topic}?limit=1")
    assert r.status == 200, r
    start = r.json()["next"]

    async def run():
        got = [[] for _ in range(CLIENTS)]
        opened = [asyncio.get_running_loop().create_future() for _ in range(CLIENTS)]
        tasks = []
        # Opening in waves bounds the pages read at once (each new stream reads one page first).
        for i in range(CLIENTS):
            tasks.append(asyncio.create_task(
                sse_events(fgw.port, f"/f/event/{topic}", start, opened[i], RECORDS, got[i])))
            if i % 50 == 49:
                await asyncio.wait_for(asyncio.gather(*opened[i - 49:i + 1]), 60)
        assert all(await asyncio.wait_for(asyncio.gather(*opened), 60))
        snap = fgw.metrics()
        followers = metric(snap, "topicgate_read_followers")
        fetches0 = metric(snap, "topicgate_read_follower_fetches_total", topic=topic)
        t0 = time.monotonic()
        recs = [(i % PARTITIONS, f"k{i}".encode(), proto_event(f"m{i}", i, "x"), []) for i in range(RECORDS)]
        placed = await asyncio.to_thread(produce, fgw.bootstrap, topic, recs)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        elapsed = time.monotonic() - t0
        snap = fgw.metrics()
        fetches = metric(snap, "topicgate_read_follower_fetches_total", topic=topic) - fetches0
        lag = [v for (n, ls), v in snap.items() if n == "topicgate_read_lag_records" and ("topic", topic) in set(ls)]
        return got, placed, followers, fetches, elapsed, lag

    got, placed, followers, fetches, elapsed, lag = asyncio.run(run())
    rss = fgw.rss()
    print(f"\n{CLIENTS} streams: gateway RSS {rss / (1 << 20):.1f} MiB; {fetches:.0f} follower fetch rounds "
          f"for {RECORDS} records in {elapsed:.1f} s")
    assert followers == 1
    # The follower reported its lag from the ends its last round saw; every record was delivered.
    assert lag == [0], lag
    want = sorted(placed)
    for i, g in enumerate(got):
        assert sorted((p, o) for p, o, _ in g) == want, f"client {i} got {len(g)} of {len(want)} records"
    # A round ends at its first record or after its wait (5 s) while idle: bounded by the records
    # plus the idle rounds, and far below one per client.
    assert fetches <= RECORDS + elapsed / 5 + 2, fetches
    assert fetches < CLIENTS / 10, fetches


def open_unread_stream(fgw, topic, partition=None):
    """An event stream of topic (of one partition, if given) from its end whose client reads
    nothing past the head. Its receive buffer is small, so the gateway's writes block after a few
    MB whatever the machine's TCP tuning."""
    path = f"/f/small/{topic}" if partition is None else f"/f/small/{topic}?partition={partition}"
    r = get(fgw, path + ("?" if partition is None else "&") + "limit=1")
    assert r.status == 200, r
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(60)
    s.connect(("127.0.0.1", fgw.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
              f"Last-Event-ID: {r.json()['next']}\r\n\r\n".encode())
    # The answer's head goes out after the stream's first page: from then on it is at the end and
    # follows the topic's follower. (Records written before that page would make it catch up on its
    # own pages, where a client that takes nothing is cut only at the stall deadline.)
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 4096:
        chunk = s.recv(1)
        assert chunk, f"the stream ended before its head: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200 "), head
    return s


def write_until_cut(fgw, topic, cuts0, pad, partition=None):
    """Writes batches of 500 records of ~10 KB until the follower has dropped the one stream that
    reads nothing for falling behind; the records written. How many rounds that takes depends on
    how much the sockets absorbed before the handler's write blocked (one round is then being
    written, one queued, the next passes read.max_client_buffer_bytes), so it is not fixed. The
    records go to every partition in turn, or all to `partition`."""
    def cut():
        return metric(fgw.metrics(), "topicgate_read_stream_cuts_total", reason="slow") >= cuts0 + 1

    written = 0
    deadline = time.monotonic() + 120
    for _ in range(MAX_CUT_BATCHES):
        if cut() or time.monotonic() > deadline:
            break
        produce(fgw.bootstrap, topic,
                [(i % PARTITIONS if partition is None else partition, None,
                  json.dumps({"n": written + i, "pad": pad * 10000}).encode(), [])
                 for i in range(500)])
        written += 500
        # A follower round picks the batch up at once (it waits for records, not for time).
        until = time.monotonic() + 3
        while not cut() and time.monotonic() < until:
            time.sleep(0.1)
    assert metric(fgw.metrics(), "topicgate_read_stream_cuts_total", reason="slow") == cuts0 + 1, \
        f"no slow cut after {written} records of ~10 KB"
    return written


def read_answer(s):
    """What the stream sends until the connection closes (the handler's blocked write gave up at
    its 30 s deadline) or the chunked body ends (the handler was not blocked when it was cut: its
    final event went out, and the connection stays for another request)."""
    s.settimeout(60)
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def test_a_client_that_never_reads_is_cut_for_falling_behind_and_memory_stays_bounded(fgw, ftopics):
    topic = fgw.json_topic
    cuts0 = metric(fgw.metrics(), "topicgate_read_stream_cuts_total", reason="slow")
    s = open_unread_stream(fgw, topic)
    rss0 = fgw.rss()
    written = write_until_cut(fgw, topic, cuts0, "x")
    # The handler notices when its blocked write passes the 30 s stall deadline, and logs why.
    deadline = time.monotonic() + 90
    while "bytes of events behind (read.max_client_buffer_bytes)" not in fgw.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"fell more than {CLIENT_BUFFER} bytes of events behind (read.max_client_buffer_bytes)" in fgw.log()
    assert metric(fgw.metrics(), "topicgate_read_stream_cuts_total", reason="slow") == cuts0 + 1
    rss1 = fgw.rss()
    print(f"\nnever-reading client: {written} records of ~10 KB written; gateway RSS {rss0 / (1 << 20):.1f} -> {rss1 / (1 << 20):.1f} MiB")
    assert rss1 - rss0 < RSS_GROWTH_BOUND
    # What was in the sockets drains, then the answer ends.
    data = read_answer(s)
    assert 0 < len(data) < written * 10000, len(data)


def test_a_slow_client_is_cut_with_a_final_event_saying_why(fgw, ftopics):
    topic = fgw.json_topic
    cuts0 = metric(fgw.metrics(), "topicgate_read_stream_cuts_total", reason="slow")
    s = open_unread_stream(fgw, topic)
    # The client reads nothing until the follower has dropped it (counted when it happens)...
    written = write_until_cut(fgw, topic, cuts0, "z")
    # ...then reads on, within the stall deadline: what was queued, then the final event with why.
    data = read_answer(s)
    tail = data[-2000:].decode(errors="replace")
    assert "event: end" in tail, tail[-500:]
    assert f"fell more than {CLIENT_BUFFER} bytes of events behind (read.max_client_buffer_bytes)" in tail, tail[-500:]
    assert data.count(b"event: record") < written


def test_readers_over_the_topics_limit_get_503(fgw, ftopics):
    topic = fgw.avro_topic
    held = []
    try:
        for _ in range(PER_TOPIC):
            s = socket.create_connection(("127.0.0.1", fgw.port), timeout=30)
            s.sendall(f"GET /f/small/{topic} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
            assert b" 200 " in s.recv(4096)
            held.append(s)
        r = get(fgw, f"/f/small/{topic}?limit=1")
        assert r.status == 503, r
        assert r.headers.get("Retry-After"), r
        assert "read.max_readers_per_topic" in r.json()["message"] and topic in r.json()["message"], r
        # Another topic of the route is not held by this one's readers.
        r = get(fgw, f"/f/small/{fgw.json_topic}?limit=1")
        assert r.status == 200, r
    finally:
        for s in held:
            s.close()
    # Once they are gone, the topic is readable again (bounded wait for the handlers to end).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = get(fgw, f"/f/small/{topic}?limit=1")
        if r.status == 200:
            break
        time.sleep(0.2)
    assert r.status == 200, r


def test_a_page_ends_before_its_byte_bound_and_next_resumes_exactly(fgw, ftopics):
    topic = fgw.json_topic
    r = get(fgw, f"/f/small/{topic}?limit=1")
    assert r.status == 200, r
    position = r.json()["next"]
    pad = "y" * 1000
    placed = produce(fgw.bootstrap, topic,
                     [(i % PARTITIONS, None, json.dumps({"n": i, "pad": pad}).encode(), []) for i in range(10)])
    seen, pages = [], []
    for _ in range(20):
        if len(seen) >= len(placed):
            break
        r = get(fgw, f"/f/small/{topic}?position={position}&limit=10")
        assert r.status == 200, r
        recs = r.json()["records"]
        pages.append(len(recs))
        size = sum(len(json.dumps(e, separators=(",", ":"))) for e in recs)
        assert len(recs) == 1 or size <= PAGE_BYTES, (len(recs), size)
        seen += [(e["partition"], e["offset"]) for e in recs]
        position = r.json()["next"]
    # Ten records of ~1 KB never fit one 4 KiB page; together the pages hold each exactly once.
    assert pages[0] < len(placed), pages
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(placed), (pages, seen)


PARTITION_CLIENTS = 200


def test_partition_streams_share_the_topics_follower_and_resume_exactly(fgw, ftopics):
    topic = fgw.topic
    # The earlier tests' followers stop after their last round (5 s at most while idle).
    deadline = time.monotonic() + 30
    while metric(fgw.metrics(), "topicgate_read_followers") != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(fgw.metrics(), "topicgate_read_followers") == 0
    r = get(fgw, f"/f/event/{topic}?limit=1")
    assert r.status == 200, r
    start = r.json()["next"]  # every partition's end
    p0 = dict(kv.split(":") for kv in start.split(","))["0"]

    async def run():
        got = [[] for _ in range(PARTITION_CLIENTS)]
        opened = [asyncio.get_running_loop().create_future() for _ in range(PARTITION_CLIENTS)]
        tasks = []
        for i in range(PARTITION_CLIENTS):
            tasks.append(asyncio.create_task(
                sse_events(fgw.port, f"/f/event/{topic}?partition=0", f"0:{p0}", opened[i], RECORDS // 2, got[i])))
            if i % 50 == 49:
                await asyncio.wait_for(asyncio.gather(*opened[i - 49:i + 1]), 60)
        assert all(await asyncio.wait_for(asyncio.gather(*opened), 60))
        # A stream joins once its first page found the end: all of them, one follower.
        deadline = time.monotonic() + 30
        while metric(fgw.metrics(), "topicgate_read_followers") < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        by_partition_streams = metric(fgw.metrics(), "topicgate_read_followers")
        # A stream of every partition follows a follower of its own beside it.
        every, every_opened = [], asyncio.get_running_loop().create_future()
        tasks.append(asyncio.create_task(
            sse_events(fgw.port, f"/f/event/{topic}", start, every_opened, RECORDS, every)))
        assert await asyncio.wait_for(every_opened, 60)
        snap = fgw.metrics()
        followers = metric(snap, "topicgate_read_followers")
        fetches0 = metric(snap, "topicgate_read_follower_fetches_total", topic=topic)
        t0 = time.monotonic()
        recs = [(i % PARTITIONS, f"k{i}".encode(), proto_event(f"p{i}", i, "x"), []) for i in range(RECORDS)]
        placed = await asyncio.to_thread(produce, fgw.bootstrap, topic, recs)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        elapsed = time.monotonic() - t0
        fetches = metric(fgw.metrics(), "topicgate_read_follower_fetches_total", topic=topic) - fetches0
        return got, every, placed, (by_partition_streams, followers), fetches, elapsed

    got, every, placed, followers, fetches, elapsed = asyncio.run(run())
    print(f"\n{PARTITION_CLIENTS} partition streams: {fetches:.0f} follower fetch rounds for {RECORDS} records "
          f"in {elapsed:.1f} s")
    # One follower for the 200 partition streams (before: none, each read its own pages), one more
    # for the stream of every partition.
    assert followers == (1, 2), followers
    want = sorted(o for p, o in placed if p == 0)
    assert len(want) == RECORDS // 2
    for i, g in enumerate(got):
        # Only partition 0, every record once, each id naming only that partition, after the event.
        assert [(p, o) for p, o, _ in g] == [(0, o) for o in want], f"client {i}: {g}"
        assert [e for _, _, e in g] == [f"0:{o + 1}" for o in want], f"client {i}: {g}"
    assert sorted((p, o) for p, o, _ in every) == sorted(placed)
    # Rounds end at their first record, or after 5 s idle: per follower at most its records plus
    # the idle rounds (partition 0's 20, all 40), not one per client.
    assert fetches <= RECORDS // 2 + RECORDS + 2 * (elapsed / 5 + 2), fetches
    assert fetches < PARTITION_CLIENTS / 2, fetches

    # Resume: a client that reconnects with the id of its 5th event gets exactly the ones after it.
    last_id = got[0][4][2]

    async def resume():
        rest, opened = [], asyncio.get_running_loop().create_future()
        await asyncio.wait_for(
            sse_events(fgw.port, f"/f/event/{topic}?partition=0", last_id, opened, len(want) - 5, rest), 60)
        return rest

    rest = asyncio.run(resume())
    assert [(p, o) for p, o, _ in rest] == [(0, o) for o in want[5:]], rest


def test_a_partition_stream_that_never_reads_is_cut_for_falling_behind(fgw, ftopics):
    topic = fgw.json_topic
    cuts0 = metric(fgw.metrics(), "topicgate_read_stream_cuts_total", reason="slow")
    followers0 = metric(fgw.metrics(), "topicgate_read_followers")
    s = open_unread_stream(fgw, topic, partition=0)
    # Its first page found the end: it joins partition 0's follower, then reads nothing more.
    deadline = time.monotonic() + 30
    while metric(fgw.metrics(), "topicgate_read_followers") <= followers0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(fgw.metrics(), "topicgate_read_followers") == followers0 + 1
    # Partition 0's records fill its queue past read.max_client_buffer_bytes (64 KiB).
    write_until_cut(fgw, topic, cuts0, "w", partition=0)
    assert read_answer(s)
    why = f"fell more than {CLIENT_BUFFER} bytes of events behind (read.max_client_buffer_bytes)"
    deadline = time.monotonic() + 30
    while why not in fgw.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert why in fgw.log()
