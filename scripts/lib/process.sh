# Process helpers shared by the test-server scripts (kafka, kafka-secure, kafka-cluster, glue, registry);
# sourced, not run. The sourcing script defines log and die.

# Prints the pid in pid file $1 if it names a live process whose command line matches $2
# (guards against pid reuse); fails otherwise.
live_pid_of() {
  [[ -f $1 ]] || return 1
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  echo "$pid"
}

# TERM, a bounded wait for a clean shutdown ($2 seconds, default 30), then KILL.
stop_pid() {
  local pid=$1 grace=${2:-30} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored TERM for ${grace}s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "pid $pid still alive after KILL"
}

# Takes lock file $1 on fd 9 (one instance of a script per checkout), waiting at most $2 seconds
# (default 180).
take_lock() {
  local wait=${2:-180}
  exec 9>"$1"
  flock -w "$wait" 9 || die "another ${0##*/} still holds $1 after ${wait}s"
}
