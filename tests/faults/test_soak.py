"""Soak: SOAK_RECORDS uniquely numbered records (default 50,000 here; `make soak` sends 1,000,000)
through one gateway. RSS after warm-up (the first 10% of the records) grows by less than 10%, and
every record is accounted for: all answered 200, each on the topic exactly once, byte for byte."""

import os
import threading
import uuid

from faultkit import Load, account, file_core, read_topic, status_counts

RECORDS = int(os.environ.get("SOAK_RECORDS", "50000"))
THREADS = int(os.environ.get("SOAK_THREADS", "8"))
SAMPLES = 20  # RSS samples over the run
HANG_S = 30


def test_soak_memory_flat_and_every_record_accounted_for(servers, gateways, figures):
    topic = f"FaultSoak{uuid.uuid4().hex[:8]}"
    gw = gateways([topic], file_core(10000))
    curve = []  # (records answered, VmRSS KiB, threads)
    lock = threading.Lock()
    step = max(1, RECORDS // SAMPLES)
    answered = [0]

    def sample(_o):
        with lock:
            answered[0] += 1
            n = answered[0]
        if n % step == 0 or n == RECORDS:
            st = gw.proc_status()
            with lock:
                curve.append((n, st["VmRSS"], st["Threads"]))

    load = Load(gw, f"/f/{topic}", "k", threads=THREADS, timeout=HANG_S, total=RECORDS, on_outcome=sample).start()
    # Bounded: generous for 1,000,000 records on a slow shared machine (~300/s would still pass).
    outcomes = load.join(max(600, RECORDS / 300))
    curve.sort()
    wall = max(o.t1 for o in outcomes) - min(o.t0 for o in outcomes)
    warm = next(c for c in curve if c[0] >= RECORDS // 10)
    end = curve[-1]
    records = read_topic(gw, topic, timeout_s=max(300, RECORDS // 2000))
    acc = account(outcomes, records)
    figures.update({
        "records": RECORDS, "sent": acc["sent"], "acknowledged": acc["acknowledged"], "found on topic": acc["found"],
        "statuses": status_counts(outcomes),
        "wall s": round(wall, 1), "records/s": round(RECORDS / wall),
        "RSS MiB after warm-up (records)": f"{warm[1] / 1024:.1f} ({warm[0]})",
        "RSS MiB at end (records)": f"{end[1] / 1024:.1f} ({end[0]})",
        "RSS growth after warm-up %": round((end[1] - warm[1]) * 100 / warm[1], 1),
        "threads after warm-up / end": f"{warm[2]} / {end[2]}",
        "RSS curve MiB": [round(c[1] / 1024, 1) for c in curve],
    })
    assert all(o.status == 200 for o in outcomes), status_counts(outcomes)
    assert acc["acknowledged"] == RECORDS and acc["found"] == RECORDS, acc
    assert acc["lost"] == [] and acc["duplicates"] == [] and acc["misplaced"] == [] and acc["unknown"] == [], acc
    assert end[1] < warm[1] * 1.10, f"RSS grew from {warm[1]} KiB to {end[1]} KiB after warm-up"
