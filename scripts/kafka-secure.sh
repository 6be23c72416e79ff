#!/usr/bin/env bash
# Secure test broker for the security tests: Apache Kafka 4.1.1, KRaft, one node (broker+controller),
# separate from scripts/kafka.sh's broker (own ports, storage, files). Loopback only.
#
#   scripts/kafka-secure.sh up        start (or reuse a running one): fresh certificates, broker, SCRAM user
#   scripts/kafka-secure.sh down      stop it, remove its storage, certificates and .run/kafka-secure.*
#   scripts/kafka-secure.sh status    exit 0 and print the listeners when it answers, else exit 1
#   scripts/kafka-secure.sh selftest  compile and self-test the MSK IAM validator (no broker needed)
#
# Listeners, all bound to 127.0.0.1 and advertised as localhost:<port> (the broker certificate has
# SAN DNS:localhost only, so clients bootstrapping via 127.0.0.1 fail hostname verification):
#   PLAINTEXT  no security; inter-broker and admin, and for tests to read records back
#   SSL        TLS, server authentication only
#   MTLS       TLS, client certificate required (signed by the test CA)
#   SASL_SSL   TLS + SCRAM-SHA-512 / SCRAM-SHA-256 (users alice and carol, created through the Admin API)
#   OAUTH      SASL_PLAINTEXT + OAUTHBEARER, tokens checked by tests/kafka/MskIamValidator.java as AWS MSK
#              IAM would (SigV4 presigned URL, key AKIDTOPICGATETEST, region us-east-1). Sessions last at
#              most 10 s (listener.name.oauth.oauthbearer.connections.max.reauth.ms=10000), or less when the
#              token expires first: clients must re-authenticate on open connections (KIP-368), which
#              exercises the client's token refresh. A connection that does not is closed by the broker.
# ACLs (StandardAuthorizer): the PLAINTEXT principal (User:ANONYMOUS: inter-broker, controller, admin
# tools, read-back) is a super user, and a resource without ACLs is open to everyone, so only what a test
# means to deny is guarded: user alice may not write topics or use transactional ids that start with
# TG_DENIED_PREFIX (tg-denied), which gives the authorization tests their refusals.
#
# Files under .run/ (ignored by git):
#   kafka-secure.env    addresses, cert dir and test credentials (KEY=VALUE, shell- and Make-includable)
#   secure/             ca.pem, ca-wrong.pem (an unrelated CA), broker.pem/.key, client.pem/.key,
#                       client-encrypted.key (PKCS#8, password TG_CLIENT_KEY_PASSWORD), plus the PEM
#                       stores the broker reads (broker-keystore.pem) and client-keystore.pem (key + cert);
#                       ca.key stays too, so a test can sign more certificates (e.g. expired ones)
#   kafka-secure.pid    broker JVM pid; kafka-secure.state instance dir, ports, passwords
#   kafka-secure.log    broker log (MskIamValidator logs each rejected token with the reason), .out stdout
# The validator is compiled with javac into ${TOPICGATE_CACHE:-$HOME/.cache/topicgate}/msk-iam-validator/<hash>/
# (hash of its source and the javac version: a changed source recompiles). Jars as in scripts/kafka.sh.
# Environment: KAFKA_READY_TIMEOUT (seconds, default 90), KAFKA_HEAP (default 512m).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUN=$ROOT/.run
PIDF=$RUN/kafka-secure.pid
ENVF=$RUN/kafka-secure.env
STATEF=$RUN/kafka-secure.state
LOG=$RUN/kafka-secure.log
OUT=$RUN/kafka-secure.out
CERTS=$RUN/secure
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
HEAP=${KAFKA_HEAP:-512m}
LOG_TAG=kafka-secure.sh

# shellcheck source=scripts/lib/kafka-common.sh
source "$ROOT/scripts/lib/kafka-common.sh"

# Test-only credentials. The MSK secret is fixed because MskIamValidatorTest.java holds tokens the real
# signer made with it; the SCRAM and key passwords are new for every instance (kept in the state file).
MSK_ACCESS_KEY_ID=AKIDTOPICGATETEST
MSK_SECRET_ACCESS_KEY=topicgate-test-secret-0123456789abcdefXYZ
MSK_REGION=us-east-1
SCRAM_USER=alice
DENIED_PREFIX=tg-denied
# Bump when the broker's configuration changes: a running broker of another revision is restarted.
CONFIG_REV=3
# A second SCRAM user whose password holds `${` and `$${` (a fixed part + the instance's hex password):
# secrets must reach the broker as written after the one ${VAR} expansion. Kept out of the env file
# (it is sourced by shells and Make); tests build it the same way (rust-core/tests/security.rs).
SCRAM_DOLLAR_USER=carol
SCRAM_DOLLAR_PREFIX='tg${TG_NOT_A_VARIABLE}-$${x}-'
OAUTH_REAUTH_MS=10000
VALIDATOR_SRC=$ROOT/tests/kafka/MskIamValidator.java

# --- helpers --------------------------------------------------------------------------------

load_state() {
  [[ -f $STATEF ]] || return 1
  # shellcheck disable=SC1090
  source "$STATEF"
  [[ -n ${KAFKA_DIR:-} && -n ${P_PLAIN:-} && -n ${P_SSL:-} && -n ${P_MTLS:-} && -n ${P_SASL:-} \
    && -n ${P_OAUTH:-} && -n ${P_CTRL:-} && -n ${SCRAM_PASSWORD:-} && -n ${KEY_PASSWORD:-} ]]
}

all_ports_open() {
  local p
  for p in "$P_PLAIN" "$P_SSL" "$P_MTLS" "$P_SASL" "$P_OAUTH"; do port_open "$p" || return 1; done
}

write_env() {
  local tmp; tmp=$(mktemp "$RUN/.kafka-secure.env.XXXXXX")
  cat >"$tmp" <<EOF
KAFKA_SECURE_PLAINTEXT=localhost:$P_PLAIN
KAFKA_SSL=localhost:$P_SSL
KAFKA_MTLS=localhost:$P_MTLS
KAFKA_SASL_SSL=localhost:$P_SASL
KAFKA_OAUTH=localhost:$P_OAUTH
KAFKA_SECURE_PID=$1
TG_CERT_DIR=$CERTS
TG_SCRAM_USER=$SCRAM_USER
TG_SCRAM_PASSWORD=$SCRAM_PASSWORD
TG_SCRAM_DOLLAR_USER=$SCRAM_DOLLAR_USER
TG_CLIENT_KEY_PASSWORD=$KEY_PASSWORD
TG_MSK_ACCESS_KEY_ID=$MSK_ACCESS_KEY_ID
TG_MSK_SECRET_ACCESS_KEY=$MSK_SECRET_ACCESS_KEY
TG_MSK_REGION=$MSK_REGION
TG_DENIED_PREFIX=$DENIED_PREFIX
EOF
  mv "$tmp" "$ENVF"
}

# Class dir for the current validator source (keyed by source, javac version and Kafka version).
validator_dir() {
  local hash
  hash=$({ cat "$VALIDATOR_SRC"; javac -version 2>&1; echo "$KAFKA_VERSION"; } | sha256sum | cut -c1-16)
  echo "$CACHE/msk-iam-validator/$hash"
}

# Compiled validator classes for the current source; prints the class dir.
ensure_validator() {
  local dir tmp
  dir=$(validator_dir)
  if [[ ! -f $dir/MskIamValidator.class ]]; then
    mkdir -p "$CACHE/msk-iam-validator"
    # Compile beside the target and rename: a half-written dir is never used. Old dirs are kept
    # (a running broker may still load classes from one); they are a few kB each.
    tmp=$(mktemp -d "$CACHE/msk-iam-validator/.tmp.XXXXXX")
    if ! javac -nowarn -d "$tmp" -cp "$JARS/*" "$VALIDATOR_SRC" >&2; then
      rm -rf "$tmp"; die "javac failed for $VALIDATOR_SRC"
    fi
    chmod 755 "$tmp"
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"   # lost a race: the other copy is identical
  fi
  echo "$dir"
}

# --- certificates ---------------------------------------------------------------------------

# Fresh test PKI in $CERTS: CA, broker cert (SAN DNS:localhost only), client cert, unrelated CA.
gen_certs() {
  rm -rf "$CERTS"
  mkdir -p "$CERTS"
  chmod 700 "$CERTS"
  local c=$CERTS
  cat >"$c/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  # openssl chatter goes to a file, shown on failure.
  ossl() { openssl "$@" >>"$c/openssl.log" 2>&1 || { cat "$c/openssl.log" >&2; die "openssl $1 failed"; }; }
  # Unencrypted PKCS#8 keys ("BEGIN PRIVATE KEY"): what Kafka's PEM stores and librdkafka both read.
  local k
  for k in ca ca-wrong broker client; do
    ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$c/$k.key"
  done
  ossl req -config "$c/openssl.cnf" -x509 -new -key "$c/ca.key" -out "$c/ca.pem" -days 30 \
    -subj "/CN=topicgate test CA" -extensions ca
  ossl req -config "$c/openssl.cnf" -x509 -new -key "$c/ca-wrong.key" -out "$c/ca-wrong.pem" -days 30 \
    -subj "/CN=topicgate wrong CA" -extensions ca
  # The broker CN is not a host name on purpose: only the SAN (DNS:localhost) can match.
  ossl req -config "$c/openssl.cnf" -new -key "$c/broker.key" -out "$c/broker.csr" -subj "/CN=topicgate test broker"
  ossl req -config "$c/openssl.cnf" -new -key "$c/client.key" -out "$c/client.csr" -subj "/CN=topicgate-client"
  ossl x509 -req -in "$c/broker.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -extfile "$c/openssl.cnf" -extensions broker -out "$c/broker.pem"
  ossl x509 -req -in "$c/client.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -extfile "$c/openssl.cnf" -extensions client -out "$c/client.pem"
  # Same client key, encrypted PKCS#8 (PBES2/AES-256): for clients that take a key password.
  ossl pkcs8 -topk8 -v2 aes-256-cbc -in "$c/client.key" -out "$c/client-encrypted.key" -passout "pass:$KEY_PASSWORD"
  # Kafka PEM stores: key, then the certificate chain, in one file.
  cat "$c/broker.key" "$c/broker.pem" "$c/ca.pem" >"$c/broker-keystore.pem"
  cat "$c/client.key" "$c/client.pem" >"$c/client-keystore.pem"
  rm -f "$c/broker.csr" "$c/client.csr" "$c/ca-wrong.key"
  chmod 600 "$c"/*.key "$c"/*keystore.pem
  chmod 644 "$c"/ca.pem "$c"/ca-wrong.pem "$c"/broker.pem "$c"/client.pem
  chmod 755 "$c"   # tests running as another user may read the public parts
  ossl verify -CAfile "$c/ca.pem" "$c/broker.pem" "$c/client.pem"
}

# --- config ---------------------------------------------------------------------------------

write_configs() {
  local l=127.0.0.1 a=localhost
  cat >"$KAFKA_DIR/server.properties" <<EOF
# Generated by scripts/kafka-secure.sh for the security tests: single node, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$P_CTRL
listeners=PLAINTEXT://$l:$P_PLAIN,SSL://$l:$P_SSL,MTLS://$l:$P_MTLS,SASL_SSL://$l:$P_SASL,OAUTH://$l:$P_OAUTH,CONTROLLER://$l:$P_CTRL
# Advertised as localhost: that is the certificate's only name.
advertised.listeners=PLAINTEXT://$a:$P_PLAIN,SSL://$a:$P_SSL,MTLS://$a:$P_MTLS,SASL_SSL://$a:$P_SASL,OAUTH://$a:$P_OAUTH
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,OAUTH:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT

# TLS (SSL, MTLS, SASL_SSL): PEM stores, no keytool.
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
ssl.client.auth=none
listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$CERTS/ca.pem

# SASL_SSL: SCRAM (credentials live in the cluster metadata; user made by tests/kafka/ScramUsers.java).
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

# OAUTH: OAUTHBEARER with AWS MSK IAM tokens, checked by MskIamValidator (options from this JAAS entry).
# unsecuredLoginStringClaim_sub: the broker logs in with the same module at startup and needs some token
# of its own (never sent anywhere: inter-broker traffic is PLAINTEXT); without it startup fails.
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required accessKeyId="$MSK_ACCESS_KEY_ID" secretAccessKey="$MSK_SECRET_ACCESS_KEY" region="$MSK_REGION" unsecuredLoginStringClaim_sub="broker";
listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=MskIamValidator
# Short sessions force re-authentication on open connections (KIP-368), so token refresh is exercised.
listener.name.oauth.oauthbearer.connections.max.reauth.ms=$OAUTH_REAUTH_MS

# ACLs: only what the tests deny is guarded (see the top of scripts/kafka-secure.sh).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=true

log.dirs=$KAFKA_DIR/data
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
EOF
  write_log4j_configs
}

# --- instance -------------------------------------------------------------------------------

# Remove what a previous instance left (process, storage dir, certificates, files).
cleanup_instance() {
  local pid
  if pid=$(live_pid); then stop_pid "$pid"; fi
  if load_state; then
    # Only ever delete a dir this script made (mktemp template below).
    case $KAFKA_DIR in */topicgate-kafka-secure.*) rm -rf "$KAFKA_DIR" ;; esac
  fi
  rm -rf "$CERTS"
  rm -f "$PIDF" "$ENVF" "$STATEF"
  unset KAFKA_DIR P_PLAIN P_SSL P_MTLS P_SASL P_OAUTH P_CTRL SCRAM_PASSWORD KEY_PASSWORD CLASSES STATE_REV
}

cmd_up() {
  local pid t0=$SECONDS
  if pid=$(live_pid) && load_state && all_ports_open && [[ ${STATE_REV:-} != "$CONFIG_REV" ]]; then
    log "the running secure broker has an older configuration; restarting it"
  elif pid=$(live_pid) && load_state && all_ports_open; then
    write_env "$pid"
    log "reusing running secure broker (pid $pid); addresses in $ENVF"
    # A running broker keeps the validator it started with; say so when the source has changed since.
    if [[ ${CLASSES:-} != "$(validator_dir)" ]]; then
      log "note: tests/kafka/MskIamValidator.java changed since this broker started; 'down' then 'up' to load it"
    fi
    return 0
  fi
  ensure_jars
  cleanup_instance
  local classes; classes=$(ensure_validator)
  : >"$LOG"; : >"$OUT"
  KAFKA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/topicgate-kafka-secure.XXXXXX")
  read -r P_PLAIN P_SSL P_MTLS P_SASL P_OAUTH P_CTRL < <(free_ports 6)
  # Hex only: safe unquoted in the env file, in Make and in JAAS/properties.
  SCRAM_PASSWORD=$(openssl rand -hex 16)
  KEY_PASSWORD=$(openssl rand -hex 16)
  local v
  CLASSES=$classes
  STATE_REV=$CONFIG_REV
  for v in KAFKA_DIR P_PLAIN P_SSL P_MTLS P_SASL P_OAUTH P_CTRL SCRAM_PASSWORD KEY_PASSWORD CLASSES STATE_REV; do
    printf '%s=%s\n' "$v" "${!v}"
  done >"$STATEF"
  chmod 600 "$STATEF"
  gen_certs
  write_configs
  if ! format_storage; then
    show_tail; cleanup_instance; die "storage format failed"
  fi
  BROKER_CP="$classes:$JARS/*"
  pid=$(launch) || { cleanup_instance; die "broker failed to start"; }
  if ! wait_ready "$pid" "$P_PLAIN" "localhost:$P_PLAIN" || ! all_ports_open; then
    cleanup_instance; die "broker failed to start"
  fi
  # SCRAM user through the Admin API (password via env, not argv); waits until the broker lists it.
  # timeout: the tool bounds its own waits (30 s); this also bounds a JVM that would hang on exit.
  if ! SCRAM_PASSWORD=$SCRAM_PASSWORD timeout 90 java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" \
      "$ROOT/tests/kafka/ScramUsers.java" "localhost:$P_PLAIN" "$SCRAM_USER" - 30000 >>"$OUT" 2>&1; then
    show_tail; cleanup_instance; die "creating SCRAM user $SCRAM_USER failed"
  fi
  if ! SCRAM_PASSWORD=$SCRAM_DOLLAR_PREFIX$SCRAM_PASSWORD timeout 90 java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" \
      "$ROOT/tests/kafka/ScramUsers.java" "localhost:$P_PLAIN" "$SCRAM_DOLLAR_USER" - 30000 >>"$OUT" 2>&1; then
    show_tail; cleanup_instance; die "creating SCRAM user $SCRAM_DOLLAR_USER failed"
  fi
  # alice may not write topics or use transactional ids under $DENIED_PREFIX.
  if ! timeout 90 java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.xml" -cp "$JARS/*" org.apache.kafka.tools.AclCommand \
      --bootstrap-server "localhost:$P_PLAIN" --add --deny-principal "User:$SCRAM_USER" --operation Write \
      --topic "$DENIED_PREFIX" --transactional-id "$DENIED_PREFIX" --resource-pattern-type prefixed >>"$OUT" 2>&1; then
    show_tail; cleanup_instance; die "creating the ACLs failed"
  fi
  write_env "$pid"
  log "ready (pid $pid, $((SECONDS - t0))s): PLAINTEXT $P_PLAIN SSL $P_SSL MTLS $P_MTLS SASL_SSL $P_SASL OAUTH $P_OAUTH; env in $ENVF"
}

cmd_down() {
  cleanup_instance
  log "stopped"
}

cmd_status() {
  local pid
  if pid=$(live_pid) && load_state && all_ports_open; then
    echo "kafka-secure running: pid $pid, PLAINTEXT localhost:$P_PLAIN SSL localhost:$P_SSL" \
      "MTLS localhost:$P_MTLS SASL_SSL localhost:$P_SASL OAUTH localhost:$P_OAUTH"
    return 0
  fi
  echo "kafka-secure not running"
  return 1
}

cmd_selftest() {
  ensure_jars
  local classes; classes=$(ensure_validator)
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$classes:$JARS/*" \
    "$ROOT/tests/kafka/MskIamValidatorTest.java"
}

main() {
  mkdir -p "$RUN"
  case ${1:-} in
    up | down | status | selftest) ;;
    *) echo "usage: $0 up|down|status|selftest" >&2; exit 2 ;;
  esac
  # One kafka-secure.sh at a time per checkout; separate from kafka.sh's lock (both may run at once).
  take_lock "$RUN/kafka-secure.lock"
  "cmd_$1"
}

main "$@"
