"""`make run`'s script (scripts/run.sh): it starts the example gateway (krakend/krakend.json) on the
gateway this suite runs (TG_GATEWAY_BIN), publishes a first record, prints the answer, and stops
cleanly on Ctrl-C, leaving a Kafka it did not start running. The record is read back by Kafka's own
consumer.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from http.client import HTTPConnection

from conftest import ROOT, _free_port
from test_batch import value

def post_json(port, path, body, headers):
    """(status, body, Idempotent-Replayed) of a POST to the gateway on port."""
    c = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        r = c.getresponse()
        return r.status, r.read(), r.getheader("Idempotent-Replayed")
    finally:
        c.close()


FIRST = re.compile(rb"A first record, published by make run: (\{.*\})")


def test_make_run_publishes_a_first_record_and_stops_on_ctrl_c(gw):
    port = _free_port()
    proc = subprocess.Popen(
        ["scripts/run.sh"], cwd=ROOT, env={**os.environ, "PORT": str(port)},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    out = b""
    try:
        deadline = time.monotonic() + 120
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            out += line
            found = FIRST.search(line)
        assert found, f"no first record within 120 s (exit {proc.poll()}):\n{out.decode(errors='replace')[-4000:]}"
        answer = json.loads(found.group(1))
        assert answer["statusCode"] == "200" and answer["topic"] == "MyTopic", answer
        rec = gw.read_back("MyTopic", answer["partition"], answer["offset"], 1)[0]
        assert rec.value == value("hello from make run") and rec.key == b"messageKey", rec
        assert dict(rec.headers).get("source") == b"make-run", rec
        # The example serves MyTopic for reading: the first record, decoded.
        conn = HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/v1/event/MyTopic?partition={answer['partition']}&offset={answer['offset']}&limit=1")
        r = conn.getresponse()
        page = json.loads(r.read())
        conn.close()
        assert r.status == 200, page
        assert [(e["value"], e["key"]) for e in page["records"]] == [({"sample_message": "hello from make run"}, "messageKey")], page
        # It prints how to follow the topic.
        while b"curl -N" not in out and time.monotonic() < deadline and proc.poll() is None:
            out += proc.stdout.readline()
        assert b"curl -N -H 'Accept: text/event-stream' http://127.0.0.1:" in out, out.decode(errors="replace")
        # The example's routes take Idempotency-Key: the same key twice is one record, one offset.
        for path in ("/v1/event/MyTopic", "/v2/event/MyTopic"):
            key = f"make-run-{uuid.uuid4()}"
            answers = [post_json(port, path, b'{"sample_message":"once"}', {"Idempotency-Key": key}) for _ in range(2)]
            assert answers[0][0] == 200 and answers[1] == (200, answers[0][1], "true"), (path, answers)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()
        out += rest or b""
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{out.decode(errors='replace')[-4000:]}"
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        raise AssertionError(f"the gateway still listens on {port} after Ctrl-C")
    except ConnectionRefusedError:
        pass
    # The suite's Kafka, which run.sh did not start, is still there.
    assert gw.post(f"/v1/event/{gw.topic}").status == 200
