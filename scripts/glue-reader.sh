#!/usr/bin/env bash
# AWS's own Glue reader for the tests: the jars of tests/glue/pom.xml (AWS's Glue Schema Registry
# SerDe 1.1.27, Lombok, protobuf-java-util, slf4j-simple) through Maven into a cache outside git,
#   ${TOPICGATE_CACHE:-$HOME/.cache/topicgate}/glue-serde-1.1.27/
# as scripts/kafka.sh caches the Kafka jars (scripts/lib/maven-jars.sh). tests/glue/GlueRead.java
# runs on them.
#
#   scripts/glue-reader.sh jars   fetch the jars unless cached (the pom's hash is kept with them);
#                                 write .run/glue-reader.env: GLUE_READER_CLASSPATH=<jar dir>/*
#
# A failed fetch or a missing jar exits non-zero: the tests that need the reader never skip.
# Environment: TOPICGATE_CACHE, TOPICGATE_RUN_DIR (default .run; relative paths from the repo root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUN=${TOPICGATE_RUN_DIR:-.run}
[[ $RUN == /* ]] || RUN=$ROOT/$RUN
SERDE_VERSION=1.1.27
CACHE=${TOPICGATE_CACHE:-$HOME/.cache/topicgate}
JARS=$CACHE/glue-serde-$SERDE_VERSION
POM=$ROOT/tests/glue/pom.xml
ENVF=$RUN/glue-reader.env

log() { echo "glue-reader.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/lib/maven-jars.sh
source "$ROOT/scripts/lib/maven-jars.sh"

cmd_jars() {
  mkdir -p "$RUN"
  # One fetch at a time per checkout (parallel make targets); bounded wait.
  exec 9>"$RUN/glue-reader.lock"
  flock -w 600 9 || die "another glue-reader.sh still holds $RUN/glue-reader.lock after 600s"
  maven_jars "$POM" "$JARS" "schema-registry-serde-$SERDE_VERSION.jar" "$RUN/glue-reader-mvn.log"
  local jar
  for jar in schema-registry-serde lombok protobuf-java-util slf4j-simple kafka-clients; do
    compgen -G "$JARS/$jar-[0-9]*.jar" >/dev/null || die "$jar jar missing from $JARS"
  done
  local tmp; tmp=$(mktemp "$RUN/.glue-reader.env.XXXXXX")
  printf 'GLUE_READER_CLASSPATH=%s/*\n' "$JARS" >"$tmp"
  mv "$tmp" "$ENVF"
}

case ${1:-} in
  jars) cmd_jars ;;
  *) echo "usage: $0 jars" >&2; exit 2 ;;
esac
