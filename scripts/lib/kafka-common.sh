# Shared parts of the test-broker scripts (scripts/kafka.sh, kafka-secure.sh, kafka-cluster.sh); sourced, not run.
#
# The sourcing script sets, before calling anything here:
#   ROOT  repo root          RUN   its .run dir       LOG_TAG  prefix of log lines (e.g. kafka.sh)
#   PIDF  broker pid file    LOG   broker log file    OUT      broker stdout/stderr file
#   KAFKA_DIR  the instance's temp dir (configs, storage); HEAP broker heap; READY_TIMEOUT seconds
# and may set BROKER_CP (broker classpath; default: the Kafka jars).
# Jars: tests/kafka/pom.xml through Maven into ${TOPICGATE_CACHE:-$HOME/.cache/topicgate}/kafka-4.1.1/.

KAFKA_VERSION=4.1.1
CACHE=${TOPICGATE_CACHE:-$HOME/.cache/topicgate}
JARS=$CACHE/kafka-$KAFKA_VERSION
POM=$ROOT/tests/kafka/pom.xml

log() { echo "$LOG_TAG: $*" >&2; }
die() { log "$*"; exit 1; }

# --- jars -----------------------------------------------------------------------------------

# shellcheck source=scripts/lib/maven-jars.sh
source "$ROOT/scripts/lib/maven-jars.sh"
# shellcheck source=scripts/lib/process.sh
source "$ROOT/scripts/lib/process.sh"

ensure_jars() {
  maven_jars "$POM" "$JARS" "kafka_2.13-$KAFKA_VERSION.jar" "$RUN/kafka-mvn.log"
}

# --- helpers --------------------------------------------------------------------------------

# N (default 2) distinct free loopback ports (all sockets open at once, so they differ).
free_ports() {
  python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])' "${1:-2}"
}

# A KRaft cluster id: 16 random bytes, base64url without padding (what `random-uuid` prints).
cluster_id() {
  # Like Kafka's Uuid.randomUuid: never start with '-', which kafka-storage's parser takes for an option.
  python3 -c '
import base64, os
for _ in range(1000):  # each try starts with "-" 1 time in 64
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# pid of our broker if the pid file names a live kafka.Kafka process.
live_pid() { live_pid_of "$PIDF" 'kafka\.Kafka'; }

# Short-lived tool JVMs: quick start flags, quiet logging.
tool_java() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" "$@"
}

# Metadata round trip through the admin client: the broker is really serving, not just listening.
# $1: bootstrap address of a PLAINTEXT listener.
metadata_ok() {
  timeout 30 java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --list \
    >/dev/null 2>>"$OUT"
}

# $1 pid, $2 port to probe, $3 PLAINTEXT bootstrap for the metadata check.
wait_ready() {
  local pid=$1 port=$2 bootstrap=$3 deadline=$((SECONDS + READY_TIMEOUT)) tries=0
  while ((SECONDS < deadline && tries < 1000)); do
    tries=$((tries + 1))
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup"; show_tail; return 1
    fi
    if port_open "$port" && metadata_ok "$bootstrap"; then
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


# --- config ---------------------------------------------------------------------------------

# Broker log4j2 (to $LOG, size-capped, not the console) and the tools' (warnings on stderr).
write_log4j_configs() {
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
  cat >"$KAFKA_DIR/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="err" target="SYSTEM_ERR"><PatternLayout pattern="%p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="err"/></Root></Loggers>
</Configuration>
EOF
}

# Format the instance's fresh storage (static quorum from controller.quorum.voters).
# $1: cluster id (default: a new one); the nodes of one cluster share it.
format_storage() {
  tool_java kafka.tools.StorageTool format --config "$KAFKA_DIR/server.properties" \
    --cluster-id "${1:-$(cluster_id)}" >>"$OUT" 2>&1
}

# --- broker process -------------------------------------------------------------------------

# Starts $KAFKA_DIR/server.properties in the background; prints the broker pid.
launch() {
  rm -f "$PIDF"
  # 9>&-: the broker must not inherit the lock fd (it would hold the lock for its lifetime).
  # setsid: the broker outlives this script and the make/shell that ran it, and gets no
  # terminal signals. The inner bash writes its own pid and then execs java, so the pid is java's.
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDF" \
    java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -Dkafka.logs.dir="$RUN" \
    -cp "${BROKER_CP:-$JARS/*}" kafka.Kafka "$KAFKA_DIR/server.properties" \
    </dev/null >>"$OUT" 2>&1 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do   # pid file appears within milliseconds; bound 10 s
    [[ -s $PIDF ]] && break
    sleep 0.1
  done
  [[ -s $PIDF ]] || die "broker did not start (no pid file)"
  cat "$PIDF"
}

