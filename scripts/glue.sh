#!/usr/bin/env bash
# Test stand-in for the AWS Glue API (schema registry): moto in server mode, on a free loopback
# port, from the project-local virtualenv .venv/ (which also holds the other Python test tools).
#
#   scripts/glue.sh up      create/refresh .venv if needed, start moto (or reuse a running one), wait until it answers
#   scripts/glue.sh down    stop it, remove .run/glue.{env,pid}
#   scripts/glue.sh status  exit 0 and print the endpoint when it answers, else exit 1
#   scripts/glue.sh venv    only create/refresh .venv from tests/requirements.txt
#
# Files (under .run/, ignored by git; TOPICGATE_RUN_DIR=<dir> puts them in <dir> instead, which
# gives an independent instance, e.g. the fault tests' own moto under .run/faults):
#   glue.env   AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:PORT, test credentials, AWS_REGION and
#              AWS_DEFAULT_REGION (boto3 reads only the latter; the Rust/Go SDKs the former).
#              Shell- and Make-includable.
#   glue.pid   pid of moto_server;  glue.log its output
# .venv/.requirements.sha256 records which tests/requirements.txt the venv was installed from;
# a changed file (new pins) triggers a reinstall, an unchanged one costs nothing.
# Environment: GLUE_READY_TIMEOUT (seconds, default 60), TOPICGATE_RUN_DIR (default .run; relative
# paths are taken from the repo root), GLUE_PORT (port for a new moto, default a free one: lets a
# stopped moto come back on the same endpoint).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

VENV=$ROOT/.venv
REQ=$ROOT/tests/requirements.txt
STAMP=$VENV/.requirements.sha256
RUN=${TOPICGATE_RUN_DIR:-.run}
[[ $RUN == /* ]] || RUN=$ROOT/$RUN
PIDF=$RUN/glue.pid
ENVF=$RUN/glue.env
LOG=$RUN/glue.log
READY_TIMEOUT=${GLUE_READY_TIMEOUT:-60}

log() { echo "glue.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/lib/process.sh
source "$ROOT/scripts/lib/process.sh"

ensure_venv() {
  local want; want=$(sha256sum "$REQ" | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    return 0
  fi
  # A venv whose interpreter is gone (python moved/upgraded) cannot be repaired in place.
  if [[ -d $VENV ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
    log "removing broken $VENV"; rm -rf "$VENV"
  fi
  if [[ ! -x $VENV/bin/python ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  log "installing $REQ into $VENV"
  rm -f "$STAMP"   # written again only after a complete install
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >&2 ||
    die "pip install -r $REQ failed"
  echo "$want" >"$STAMP"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pid of our moto if the pid file names a live moto_server process.
live_pid() { live_pid_of "$PIDF" moto_server; }

# Port from the env file of the running instance.
env_port() {
  [[ -f $ENVF ]] || return 1
  sed -n 's|^AWS_ENDPOINT_URL_GLUE=http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$ENVF" | grep .
}

# moto's own HTTP API answers once the server is up (any HTTP status counts).
http_ok() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/data.json"; }

# A real Glue call through boto3: the Glue backend, not just the HTTP server, is working.
glue_ok() {
  AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:$1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 timeout 30 "$VENV/bin/python" -c \
    'import boto3; boto3.client("glue").list_registries()' >/dev/null 2>>"$LOG"
}

write_env() {
  local tmp; tmp=$(mktemp "$RUN/.glue.env.XXXXXX")
  printf '%s\n' "AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:$1" AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 >"$tmp"
  mv "$tmp" "$ENVF"
}


show_tail() { { echo "---- tail of $LOG"; tail -n 30 "$LOG" 2>/dev/null || true; } >&2; }

cmd_up() {
  local pid port
  if pid=$(live_pid) && port=$(env_port) && http_ok "$port"; then
    log "reusing running moto on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  ensure_venv
  if pid=$(live_pid); then stop_pid "$pid" 10; fi
  rm -f "$PIDF" "$ENVF"
  : >"$LOG"
  port=${GLUE_PORT:-$(free_port)}
  local t0=$SECONDS
  # setsid: moto outlives this script and its make/shell; 9>&-: it must not hold our lock fd.
  # The inner bash writes its own pid, then execs moto_server, so the pid file names moto.
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDF" \
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >>"$LOG" 2>&1 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do   # pid file appears within milliseconds; bound 10 s
    [[ -s $PIDF ]] && break
    sleep 0.1
  done
  [[ -s $PIDF ]] || die "moto did not start (no pid file)"
  pid=$(cat "$PIDF")
  local deadline=$((SECONDS + READY_TIMEOUT)) tries=0 ready=0
  while ((SECONDS < deadline && tries < 1000)); do
    tries=$((tries + 1))
    if ! kill -0 "$pid" 2>/dev/null; then log "moto_server exited during startup"; break; fi
    if http_ok "$port" && glue_ok "$port"; then ready=1; break; fi
    sleep 0.3
  done
  if ((!ready)); then
    show_tail
    stop_pid "$pid" 10; rm -f "$PIDF"
    die "moto not ready within ${READY_TIMEOUT}s"
  fi
  write_env "$port"
  log "ready on 127.0.0.1:$port (pid $pid, $((SECONDS - t0))s)"
}

cmd_down() {
  local pid
  if pid=$(live_pid); then stop_pid "$pid" 10; fi
  rm -f "$PIDF" "$ENVF"
  log "stopped"
}

cmd_status() {
  local pid port
  if pid=$(live_pid) && port=$(env_port) && http_ok "$port"; then
    echo "glue (moto) running: pid $pid, endpoint http://127.0.0.1:$port"
    return 0
  fi
  echo "glue (moto) not running"
  return 1
}

main() {
  mkdir -p "$RUN"
  # One glue.sh at a time per checkout (parallel make targets); bounded wait for the lock.
  take_lock "$RUN/glue.lock" 300
  case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    venv) ensure_venv ;;
    *) echo "usage: $0 up|down|status|venv" >&2; exit 2 ;;
  esac
}

main "$@"
