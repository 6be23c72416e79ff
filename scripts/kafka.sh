#!/usr/bin/env bash
# Test broker: Apache Kafka 4.1.1, KRaft mode, one node that is both broker and controller,
# listening on free loopback ports only. Used by the integration tests and benchmarks.
#
#   scripts/kafka.sh up            start (or reuse a running one), wait until it answers metadata
#   scripts/kafka.sh down          stop it, remove its storage, .run/kafka.{env,pid,state}
#   scripts/kafka.sh status        exit 0 and print the bootstrap address when it answers, else exit 1
#   scripts/kafka.sh stop-broker   stop the broker process only; keeps storage, ports and .run/kafka.env
#   scripts/kafka.sh start-broker  start it again after stop-broker (same storage, same ports)
#
# Files (all under .run/, ignored by git):
#   kafka.env    KAFKA_BOOTSTRAP=127.0.0.1:PORT and KAFKA_CLASSPATH=<jar dir>/* (shell- and Make-includable)
#   kafka.pid    pid of the broker JVM (absent while the broker is stopped); `kill -STOP`/`-CONT` on it
#                simulates a hung broker, `stop-broker` a dead one
#   kafka.state  storage dir and ports of the current instance (read by down/start-broker)
#   kafka.log    broker log (log4j2), kafka.out its stdout/stderr
#
# Jars come from tests/kafka/pom.xml through Maven into a cache outside git:
#   ${TOPICGATE_CACHE:-$HOME/.cache/topicgate}/kafka-4.1.1/
# Environment: KAFKA_READY_TIMEOUT (seconds, default 90), KAFKA_HEAP (default 512m).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

KAFKA_VERSION=4.1.1
CACHE=${TOPICGATE_CACHE:-$HOME/.cache/topicgate}
JARS=$CACHE/kafka-$KAFKA_VERSION
POM=$ROOT/tests/kafka/pom.xml
RUN=$ROOT/.run
PIDF=$RUN/kafka.pid
ENVF=$RUN/kafka.env
STATEF=$RUN/kafka.state
LOG=$RUN/kafka.log
OUT=$RUN/kafka.out
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
HEAP=${KAFKA_HEAP:-512m}

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# --- jars -----------------------------------------------------------------------------------

# The pom's hash is kept next to the jars so that a changed pom (same version) refetches.
pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

ensure_jars() {
  local want; want=$(pom_hash)
  if [[ -f $JARS/.pom.sha256 && $(cat "$JARS/.pom.sha256") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  mkdir -p "$CACHE"
  # Copy into a temp dir beside the target, then rename: a half-finished copy is never used.
  local tmp; tmp=$(mktemp -d "$CACHE/.kafka-$KAFKA_VERSION.XXXXXX")
  log "fetching Kafka $KAFKA_VERSION jars into $JARS"
  # Maven's output goes to a file (it prints colour codes even with -q -B); shown on failure.
  if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" \
      >"$RUN/kafka-mvn.log" 2>&1; then
    tail -n 30 "$RUN/kafka-mvn.log" >&2
    rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed (log: $RUN/kafka-mvn.log)"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; die "kafka jar missing after mvn"; }
  echo "$want" >"$tmp/.pom.sha256"
  chmod 755 "$tmp"   # mktemp makes it 0700
  if [[ -d $JARS ]]; then
    # Stale copy from an older pom: swap it out (a running broker keeps its open jars).
    local old="$JARS.old.$$"
    mv "$JARS" "$old" && mv "$tmp" "$JARS" && rm -rf "$old"
  else
    mv -T "$tmp" "$JARS" 2>/dev/null || rm -rf "$tmp"   # lost a race: someone else renamed first
  fi
  [[ -f $JARS/kafka_2.13-$KAFKA_VERSION.jar ]] || die "jar cache $JARS is incomplete"
}

# --- helpers --------------------------------------------------------------------------------

# Two distinct free loopback ports (both sockets open at once, so they differ).
free_ports() {
  python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])'
}

# A KRaft cluster id: 16 random bytes, base64url without padding (what `random-uuid` prints).
cluster_id() {
  python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))'
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# pid of our broker if the pid file names a live kafka.Kafka process (guards against pid reuse).
live_pid() {
  [[ -f $PIDF ]] || return 1
  local pid; pid=$(cat "$PIDF" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

load_state() {
  [[ -f $STATEF ]] || return 1
  # shellcheck disable=SC1090
  source "$STATEF"
  [[ -n ${KAFKA_DIR:-} && -n ${KAFKA_PORT:-} && -n ${KAFKA_CONTROLLER_PORT:-} ]]
}

write_env() {
  local tmp; tmp=$(mktemp "$RUN/.kafka.env.XXXXXX")
  printf 'KAFKA_BOOTSTRAP=127.0.0.1:%s\nKAFKA_CLASSPATH=%s/*\n' "$KAFKA_PORT" "$JARS" >"$tmp"
  mv "$tmp" "$ENVF"
}

# Short-lived tool JVMs: quick start flags, quiet logging.
tool_java() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" "$@"
}

# Metadata round trip through the admin client: the broker is really serving, not just listening.
metadata_ok() {
  timeout 30 java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list \
    >/dev/null 2>>"$OUT"
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + READY_TIMEOUT)) tries=0
  while ((SECONDS < deadline && tries < 1000)); do
    tries=$((tries + 1))
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup"; show_tail; return 1
    fi
    if port_open "$KAFKA_PORT" && metadata_ok; then
      return 0
    fi
    sleep 0.5
  done
  log "broker not ready after ${READY_TIMEOUT}s"; show_tail; return 1
}

show_tail() {
  { echo "---- tail of $LOG"; tail -n 40 "$LOG" 2>/dev/null || true
    echo "---- tail of $OUT"; tail -n 20 "$OUT" 2>/dev/null || true; } >&2
}

# TERM, bounded wait for a clean shutdown, then KILL.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do   # 300 x 0.1 s = 30 s
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored TERM for 30s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "pid $pid still alive after KILL"
}

# --- config ---------------------------------------------------------------------------------

write_configs() {
  cat >"$KAFKA_DIR/server.properties" <<EOF
# Generated by scripts/kafka.sh for tests: single node, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions than the defaults (50): faster first group/transaction use on 2 cores.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
EOF
  # Broker log goes to .run/kafka.log (size-capped), not to the console.
  cat >"$KAFKA_DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="$LOG" filePattern="$LOG.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
  </Loggers>
</Configuration>
EOF
  # Tools run by this script (readiness check): warnings only, on stderr.
  cat >"$KAFKA_DIR/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="err" target="SYSTEM_ERR"><PatternLayout pattern="%p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="err"/></Root></Loggers>
</Configuration>
EOF
}

# --- broker process -------------------------------------------------------------------------

launch() {
  rm -f "$PIDF"
  # 9>&-: the broker must not inherit the lock fd (it would hold the lock for its lifetime).
  # setsid: the broker outlives this script and the make/shell that ran it, and gets no
  # terminal signals. The inner bash writes its own pid and then execs java, so the pid is java's.
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDF" \
    java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -Dkafka.logs.dir="$RUN" \
    -cp "$JARS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    </dev/null >>"$OUT" 2>&1 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do   # pid file appears within milliseconds; bound 10 s
    [[ -s $PIDF ]] && break
    sleep 0.1
  done
  [[ -s $PIDF ]] || die "broker did not start (no pid file)"
  cat "$PIDF"
}

start_and_wait() {
  local t0=$SECONDS pid
  pid=$(launch) || return 1
  if ! wait_ready "$pid"; then
    stop_pid "$pid"; rm -f "$PIDF"
    return 1
  fi
  log "ready on 127.0.0.1:$KAFKA_PORT (pid $pid, $((SECONDS - t0))s)"
}

# Remove what a previous instance left (dead process, storage dir, files).
cleanup_instance() {
  local pid
  if pid=$(live_pid); then stop_pid "$pid"; fi
  if load_state; then
    # Only ever delete a dir this script made (mktemp template below).
    case $KAFKA_DIR in */topicgate-kafka.*) rm -rf "$KAFKA_DIR" ;; esac
  fi
  rm -f "$PIDF" "$ENVF" "$STATEF"
  unset KAFKA_DIR KAFKA_PORT KAFKA_CONTROLLER_PORT
}

cmd_up() {
  local pid
  if pid=$(live_pid) && load_state && port_open "$KAFKA_PORT"; then
    write_env
    log "reusing running broker on 127.0.0.1:$KAFKA_PORT (pid $pid)"
    return 0
  fi
  ensure_jars
  cleanup_instance
  : >"$LOG"; : >"$OUT"
  KAFKA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/topicgate-kafka.XXXXXX")
  read -r KAFKA_PORT KAFKA_CONTROLLER_PORT < <(free_ports)
  printf 'KAFKA_DIR=%s\nKAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\n' \
    "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" >"$STATEF"
  write_configs
  # Format the fresh storage (static one-voter quorum from controller.quorum.voters).
  if ! tool_java kafka.tools.StorageTool format --config "$KAFKA_DIR/server.properties" \
      --cluster-id "$(cluster_id)" >>"$OUT" 2>&1; then
    show_tail; cleanup_instance; die "storage format failed"
  fi
  if ! start_and_wait; then cleanup_instance; die "broker failed to start"; fi
  write_env
}

cmd_down() {
  cleanup_instance
  log "stopped"
}

cmd_status() {
  local pid
  if pid=$(live_pid) && load_state && port_open "$KAFKA_PORT"; then
    echo "kafka running: pid $pid, bootstrap 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  if load_state && [[ ! -f $PIDF ]]; then
    echo "kafka broker stopped (stop-broker); storage $KAFKA_DIR kept"
  else
    echo "kafka not running"
  fi
  return 1
}

cmd_stop_broker() {
  local pid
  load_state || die "no instance (run: scripts/kafka.sh up)"
  if pid=$(live_pid); then stop_pid "$pid"; fi
  rm -f "$PIDF"
  log "broker stopped; storage and ports kept (start-broker to resume)"
}

cmd_start_broker() {
  local pid
  load_state || die "no instance (run: scripts/kafka.sh up)"
  if pid=$(live_pid) && port_open "$KAFKA_PORT"; then
    log "broker already running (pid $pid)"; return 0
  fi
  [[ -d $KAFKA_DIR/data ]] || die "storage $KAFKA_DIR is gone; run: scripts/kafka.sh down && scripts/kafka.sh up"
  start_and_wait || die "broker failed to restart"
  write_env
}

main() {
  mkdir -p "$RUN"
  # One kafka.sh at a time per checkout (e.g. parallel make targets); bounded wait for the lock.
  exec 9>"$RUN/kafka.lock"
  flock -w 180 9 || die "another kafka.sh still holds $RUN/kafka.lock after 180s"
  case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    stop-broker) cmd_stop_broker ;;
    start-broker) cmd_start_broker ;;
    *) echo "usage: $0 up|down|status|stop-broker|start-broker" >&2; exit 2 ;;
  esac
}

main "$@"
