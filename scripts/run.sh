#!/usr/bin/env bash
# `make run`: the example gateway on :8080 with the local Kafka and krakend/schemas as registry.
# The gateway is the one scripts/gateway.sh picks: real KrakenD CE where it is built or can be
# built, else build/kdhost (the KrakenD-compatible test host; see krakend/README.md).
# Ctrl-C stops the gateway, and Kafka too if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8080}"
gateway=$(scripts/gateway.sh)

started_kafka=0
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  scripts/kafka.sh up
  started_kafka=1
fi
set -a
. .run/kafka.env
set +a
export TOPICGATE_SCHEMA_DIR="$PWD/krakend/schemas"
# KrakenD CE sends anonymous usage statistics to an outside host unless this is set.
export USAGE_DISABLE=1
# As in the Dockerfile's image: fewer garbage collections for KrakenD's per-request copy buffers.
export GOGC="${GOGC:-400}"

stop() {
  [ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
  [ "$started_kafka" = 1 ] && scripts/kafka.sh down
  exit "${1:-0}"
}
trap stop INT TERM
"$gateway" run -c krakend/krakend.json -p "$PORT" &
gw_pid=$!

# Wait for the gateway (its health check, KrakenD's GET /__health), then publish a first record,
# so that a working set-up shows itself end to end.
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/__health" 2>/dev/null && break
  kill -0 "$gw_pid" 2>/dev/null || { echo "run: the gateway exited while starting" >&2; gw_pid=; stop 1; }
  sleep 0.5
done
first=$(curl -sS -X POST "http://127.0.0.1:$PORT/v1/event/MyTopic" -H 'Content-Type: application/json' \
  -H 'message-key: messageKey' -H 'message-headers: source=make-run' -d '{"sample_message":"hello from make run"}' 2>&1 || true)
where=$(sed -n 's/.*"partition":\([0-9]*\).*"offset":\([0-9]*\).*/\1 \2/p' <<<"$first")

cat <<MSG

topicgate example gateway ($gateway) on http://127.0.0.1:$PORT, Kafka at $KAFKA_BOOTSTRAP

A first record, published by make run: $first

Publish (server-plugin route; /v2/event/MyTopic is the same through an ordinary endpoint):
  curl -i -X POST http://127.0.0.1:$PORT/v1/event/MyTopic \\
    -H 'Content-Type: application/json' -H 'message-key: messageKey' \\
    -H 'message-headers: my_key=myvalue,my_other_key=42' \\
    -d '{"sample_message":"hello world"}'

A batch, one record per line (/v1/atomic/MyTopic writes it as one Kafka transaction):
  printf '{"sample_message":"a"}\\n{"sample_message":"b"}\\n' | curl -i -X POST \\
    http://127.0.0.1:$PORT/v1/event/MyTopic -H 'Content-Type: application/x-ndjson' --data-binary @-

Confluent REST Proxy v3:
  curl -i -X POST http://127.0.0.1:$PORT/kafka/v3/clusters/local/topics/MyTopic/records \\
    -H 'Content-Type: application/json' \\
    -d '{"key":{"type":"STRING","data":"k"},"value":{"data":{"sample_message":"hello"}}}'

Read MyTopic back, decoded to JSON (a page from the first record; then follow it as Server-Sent Events):
  curl -sS 'http://127.0.0.1:$PORT/v1/event/MyTopic?start=earliest&limit=10'
  curl -N -H 'Accept: text/event-stream' http://127.0.0.1:$PORT/v1/event/MyTopic

Read the first record back with Kafka's own consumer (arguments: topic, partition, offset, count):
  java -cp '$KAFKA_CLASSPATH' tests/kafka/ReadBack.java $KAFKA_BOOTSTRAP MyTopic ${where:-0 0} 1

Ctrl-C stops the gateway$( [ "$started_kafka" = 1 ] && echo " and Kafka").

MSG

wait "$gw_pid" || true
gw_pid=
stop
