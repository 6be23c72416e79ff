#!/usr/bin/env bash
# Test schema registry: Apicurio Registry 2.4.2.Final, which serves Confluent's Schema Registry API
# (ccompat) under /apis/ccompat/v7, with its default in-memory storage, on a free loopback port.
# Used by the tests that need a Confluent-compatible registry (tests/registry) and by Confluent's
# own serializers (confluent-kafka) as the reference.
#
#   scripts/registry.sh up      build the registry unless current, start it (or reuse a running one),
#                               wait until the ccompat API answers; writes .run/registry.env
#   scripts/registry.sh down    stop it, remove .run/registry.{env,pid}
#   scripts/registry.sh status  exit 0 and print the URL when it answers, else exit 1
#   scripts/registry.sh build   only build (or check) the registry in the cache
#
# The registry is a Quarkus application built from tests/registry/pom.xml (see the comments there)
# by Maven into a cache outside git, like the Kafka jars:
#   ${TOPICGATE_CACHE:-$HOME/.cache/topicgate}/apicurio-registry-2.4.2/   (runner jar + lib/)
# A hash of tests/registry/ is kept with the build: a changed pom, class or property rebuilds it.
#
# Files (under .run/, ignored by git; TOPICGATE_RUN_DIR=<dir> puts them in <dir> instead):
#   registry.env      SCHEMA_REGISTRY_URL=http://127.0.0.1:PORT/apis/ccompat/v7 (Confluent's API),
#                     REGISTRY_BASE_URL=http://127.0.0.1:PORT (Apicurio's own API under /apis/registry/v2),
#                     SCHEMA_REGISTRY_TLS_URL=https://127.0.0.1:TLSPORT/apis/ccompat/v7 (the same
#                     registry over TLS) and SCHEMA_REGISTRY_CA=<the test CA's certificate, PEM>.
#                     Shell- and Make-includable.
#   registry-pki/     the test CA and the server's certificate for 127.0.0.1, made anew at each start
#   registry.pid      pid of the registry JVM;  registry.log its output;  registry-mvn.log the build's
# The state is in memory: a restart starts empty (ids start at 1 again).
# Environment: REGISTRY_READY_TIMEOUT (seconds, default 90), REGISTRY_HEAP (default 384m),
# REGISTRY_PORT and REGISTRY_TLS_PORT (ports for a new registry, both or neither; default free
# ones: lets a fault test restart it where its clients point), TOPICGATE_CACHE, TOPICGATE_RUN_DIR
# (default .run; relative paths from the repo root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUN=${TOPICGATE_RUN_DIR:-.run}
[[ $RUN == /* ]] || RUN=$ROOT/$RUN
APICURIO_VERSION=2.4.2
CACHE=${TOPICGATE_CACHE:-$HOME/.cache/topicgate}
APP=$CACHE/apicurio-registry-$APICURIO_VERSION
SRC=$ROOT/tests/registry
PIDF=$RUN/registry.pid
ENVF=$RUN/registry.env
LOG=$RUN/registry.log
PKI=$RUN/registry-pki
MVNLOG=$RUN/registry-mvn.log
READY_TIMEOUT=${REGISTRY_READY_TIMEOUT:-90}
HEAP=${REGISTRY_HEAP:-384m}
RUNNER=registry-0-runner.jar

log() { echo "registry.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/lib/process.sh
source "$ROOT/scripts/lib/process.sh"

# --- build ----------------------------------------------------------------------------------

# Hash of what the build reads from the repository (pom, sources, properties).
src_hash() {
  (cd "$SRC" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
    sha256sum | cut -d' ' -f1
}

# Builds into a temp dir beside $APP and renames it: a half-finished build is never used.
ensure_built() {
  local want; want=$(src_hash)
  if [[ -f $APP/.src.sha256 && $(cat "$APP/.src.sha256") == "$want" && -f $APP/$RUNNER ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to build the registry from $SRC)"
  mkdir -p "$CACHE"
  local tmp; tmp=$(mktemp -d "$CACHE/.apicurio-registry-$APICURIO_VERSION.XXXXXX")
  log "building Apicurio Registry $APICURIO_VERSION from ${SRC#"$ROOT"/} into $APP (first time: a few minutes)"
  local t0=$SECONDS
  # -DskipDefault: switches off the Apicurio parent's profile that adds two repositories this
  # build does not need (one of them unreachable here). Output goes to the temp dir, never to git.
  if ! mvn -B -Dstyle.color=never -DskipDefault -DskipTests -f "$SRC/pom.xml" \
      -Dregistry.build.dir="$tmp/build" package >"$MVNLOG" 2>&1; then
    tail -n 40 "$MVNLOG" >&2
    rm -rf "$tmp"; die "building the registry failed (log: $MVNLOG)"
  fi
  [[ -f $tmp/build/$RUNNER && -d $tmp/build/lib ]] || { rm -rf "$tmp"; die "$RUNNER or lib/ missing after mvn"; }
  # Keep only what runs: the runner jar and its lib/ (its manifest names lib/ relative to itself).
  mv "$tmp/build/$RUNNER" "$tmp/build/lib" "$tmp/" && rm -rf "$tmp/build"
  echo "$want" >"$tmp/.src.sha256"
  chmod 755 "$tmp"   # mktemp makes it 0700
  if [[ -d $APP ]]; then
    # Stale build from older sources: swap it out (a running JVM keeps its open jars).
    local old="$APP.old.$$"
    mv "$APP" "$old" && mv "$tmp" "$APP" && rm -rf "$old"
  else
    mv -T "$tmp" "$APP" 2>/dev/null || rm -rf "$tmp"   # lost a race: someone else renamed first
  fi
  [[ -f $APP/$RUNNER ]] || die "registry build $APP is incomplete"
  log "built in $((SECONDS - t0))s"
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

# pid of our registry if the pid file names a live JVM running our runner jar.
live_pid() { live_pid_of "$PIDF" "$RUNNER"; }

# Port from the env file of the running instance.
env_port() {
  [[ -f $ENVF ]] || return 1
  sed -n 's|^REGISTRY_BASE_URL=http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$ENVF" | grep .
}

# The ccompat API answers a real call (list of subjects, a JSON array): storage and REST are up.
api_ok() {
  local body
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$1/apis/ccompat/v7/subjects" 2>/dev/null) || return 1
  [[ $body == \[* ]]
}

# $1 plain port, $2 TLS port.
# The TLS listener answers with a certificate the test CA signed.
tls_ok() {
  curl -fsS --max-time 5 --cacert "$PKI/ca.crt" "https://127.0.0.1:$1/apis/ccompat/v7/subjects" >/dev/null 2>&1
}

# $1 plain port, $2 TLS port.
write_env() {
  local tmp; tmp=$(mktemp "$RUN/.registry.env.XXXXXX")
  printf '%s\n' "SCHEMA_REGISTRY_URL=http://127.0.0.1:$1/apis/ccompat/v7" \
    "REGISTRY_BASE_URL=http://127.0.0.1:$1" \
    "SCHEMA_REGISTRY_TLS_URL=https://127.0.0.1:$2/apis/ccompat/v7" \
    "SCHEMA_REGISTRY_CA=$PKI/ca.crt" >"$tmp"
  mv "$tmp" "$ENVF"
}

# A fresh test CA and a server certificate for 127.0.0.1/localhost signed by it: TLS clients of
# the tests trust this CA only (a custom CA, as a private registry would have).
make_pki() {
  command -v openssl >/dev/null || die "openssl not found (make deps installs it)"
  rm -rf "$PKI"; mkdir -p "$PKI"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=topicgate test registry CA" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$PKI/server.key" -out "$PKI/server.csr" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$PKI/ext" &&
      openssl x509 -req -days 7 -in "$PKI/server.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -extfile "$PKI/ext" -out "$PKI/server.crt"
  } >"$PKI/openssl.log" 2>&1 || { cat "$PKI/openssl.log" >&2; die "making the test PKI failed"; }
}


show_tail() { { echo "---- tail of $LOG"; tail -n 40 "$LOG" 2>/dev/null || true; } >&2; }

# --- commands -------------------------------------------------------------------------------

cmd_up() {
  local pid port
  # An instance started before the TLS listener existed has no SCHEMA_REGISTRY_TLS_URL: restart it.
  if pid=$(live_pid) && port=$(env_port) && api_ok "$port" && grep -q '^SCHEMA_REGISTRY_TLS_URL=' "$ENVF"; then
    log "reusing running registry on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  ensure_built
  if pid=$(live_pid); then stop_pid "$pid"; fi
  rm -f "$PIDF" "$ENVF"
  local tls_port
  if [[ -n ${REGISTRY_PORT:-} || -n ${REGISTRY_TLS_PORT:-} ]]; then
    [[ ${REGISTRY_PORT:-} =~ ^[0-9]+$ && ${REGISTRY_TLS_PORT:-} =~ ^[0-9]+$ ]] ||
      die "REGISTRY_PORT and REGISTRY_TLS_PORT must both be port numbers"
    port=$REGISTRY_PORT tls_port=$REGISTRY_TLS_PORT
  else
    read -r port tls_port < <(free_ports)
  fi
  make_pki
  : >"$LOG"
  local t0=$SECONDS
  # 9>&-: the JVM must not inherit the lock fd. setsid: it outlives this script and gets no
  # terminal signals. The inner bash writes its own pid and then execs java, so the pid is java's.
  # quarkus.http.host: loopback only (also the built-in default, see application.properties),
  # for the plain and the TLS listener alike.
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDF" \
    java -Xms128m -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" -Dquarkus.http.ssl-port="$tls_port" \
    -Dquarkus.http.ssl.certificate.files="$PKI/server.crt" \
    -Dquarkus.http.ssl.certificate.key-files="$PKI/server.key" \
    -jar "$APP/$RUNNER" </dev/null >>"$LOG" 2>&1 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do   # the pid file appears within milliseconds; bound 10 s
    [[ -s $PIDF ]] && break
    sleep 0.1
  done
  [[ -s $PIDF ]] || die "registry did not start (no pid file)"
  pid=$(cat "$PIDF")
  local deadline=$((SECONDS + READY_TIMEOUT)) tries=0
  until api_ok "$port" && tls_ok "$tls_port"; do
    tries=$((tries + 1))
    if ! kill -0 "$pid" 2>/dev/null; then
      show_tail; rm -f "$PIDF"; die "registry process $pid exited during startup"
    fi
    if ((SECONDS >= deadline || tries >= 1000)); then
      show_tail; stop_pid "$pid"; rm -f "$PIDF"; die "registry not ready after ${READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
  write_env "$port" "$tls_port"
  log "ready on http://127.0.0.1:$port/apis/ccompat/v7 and https://127.0.0.1:$tls_port (pid $pid, $((SECONDS - t0))s)"
}

cmd_down() {
  local pid
  if pid=$(live_pid); then stop_pid "$pid"; fi
  rm -f "$PIDF" "$ENVF"
  rm -rf "$PKI"
  log "stopped"
}

cmd_status() {
  local pid port
  if pid=$(live_pid) && port=$(env_port) && api_ok "$port"; then
    echo "registry running: pid $pid, http://127.0.0.1:$port/apis/ccompat/v7"
    return 0
  fi
  echo "registry not running"
  return 1
}

main() {
  mkdir -p "$RUN"
  # One registry.sh at a time per checkout (parallel make targets); bounded wait. A first build
  # takes minutes, so the bound is generous.
  take_lock "$RUN/registry.lock" 900
  case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    build) ensure_built ;;
    *) echo "usage: $0 up|down|status|build" >&2; exit 2 ;;
  esac
}

main "$@"
