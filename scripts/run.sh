#!/usr/bin/env bash
# `make run`: the example gateway on :8080 with the local Kafka and krakend/schemas as registry.
# Uses build/krakend when it exists, else build/kdhost (the stand-in host; see krakend/README.md).
# Ctrl-C stops the gateway, and Kafka too if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8080}"
gateway=build/kdhost
[ -x build/krakend ] && gateway=build/krakend

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

cat <<MSG

topicgate example gateway ($gateway) on http://127.0.0.1:$PORT, Kafka at $KAFKA_BOOTSTRAP

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

Read it back (use the partition and offset from the answer):
  java -cp '$KAFKA_CLASSPATH' tests/kafka/ReadBack.java $KAFKA_BOOTSTRAP MyTopic 0 0 1

Ctrl-C stops the gateway$( [ "$started_kafka" = 1 ] && echo " and Kafka").

MSG

stop() {
  [ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
  [ "$started_kafka" = 1 ] && scripts/kafka.sh down
  exit 0
}
trap stop INT TERM
"$gateway" run -c krakend/krakend.json -p "$PORT" &
gw_pid=$!
wait "$gw_pid" || true
gw_pid=
stop
