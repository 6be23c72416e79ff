# topicgate — build, run and test. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
# Test servers write their addresses here (scripts/kafka.sh, scripts/glue.sh, scripts/registry.sh).
RUN_DIR := .run
# Exports the test servers' addresses into a recipe's shell.
WITH_SERVERS := set -a && . $(RUN_DIR)/kafka.env && . $(RUN_DIR)/glue.env && . $(RUN_DIR)/kafka-secure.env && . $(RUN_DIR)/registry.env && set +a &&
# The gateway binary a recipe runs, exported as TG_GATEWAY_BIN: scripts/gateway.sh picks it
# ($$TG_GATEWAY_BIN, build/krakend, `make krakend`, else build/kdhost with a line saying why).
WITH_GATEWAY := export TG_GATEWAY_BIN=$$(scripts/gateway.sh) &&
# Test binaries that need the secure broker (make test-security runs just these).
SECURITY_TESTS := --test security --test msk_iam --test msk_iam_wrong_secret

.PHONY: help deps build core core-release header run test test-core test-gateway test-security lint clean

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install the Debian packages the build and tests need (when missing) and check the toolchains
	scripts/setup.sh

build: core-release ## build the Rust core (release)

core: ## build the Rust core (debug)
	$(CARGO) build -p topicgate

core-release: ## build target/release/libtopicgate.{a,so}
	$(CARGO) build --release -p topicgate

header: ## regenerate include/topicgate.h from rust-core/src/ffi.rs
	TOPICGATE_WRITE_HEADER=1 $(CARGO) test -p topicgate --test header

run: deps plugin kdhost ## the example gateway on :8080 with a local Kafka and krakend/schemas (Ctrl-C stops it)
	scripts/run.sh

test: deps lint test-core kafka-secure-selftest test-gateway test-e2e test-faults test-stream test-registry test-cluster ## run every test (starts the test brokers, moto, the registry and the three-broker cluster if needed)

test-core: kafka-up glue-up kafka-secure-up registry-up ## Rust unit tests, header check, Rust-API, C-ABI and security tests on real brokers and registries
	@# moto keeps state in memory and caps registries and schemas: start each run empty.
	$(WITH_SERVERS) curl -fsS -X POST "$$AWS_ENDPOINT_URL_GLUE/moto-api/reset" >/dev/null
	@# cargo test builds only the rlib; the C ABI test links the staticlib.
	$(CARGO) build -p topicgate
	$(WITH_SERVERS) $(CARGO) test -p topicgate --features test-hooks

test-security: kafka-up glue-up kafka-secure-up registry-up ## TLS, mTLS, SCRAM and MSK IAM tests against the secure test broker
	$(WITH_SERVERS) $(CARGO) test -p topicgate $(SECURITY_TESTS)
	$(MAKE) --no-print-directory kafka-secure-selftest

test-gateway: go-test test-plugin-load krakend-check hadolint ## the Go plugin: vet, unit tests, loading, example config, Dockerfile lint

lint: ## rustfmt and clippy
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p topicgate -p rdkafka-bare --all-targets --features topicgate/test-hooks -- -D warnings

clean: ## remove build output (keeps the Kafka jar cache and the venv)
	$(CARGO) clean
	rm -rf build

include $(wildcard mk/*.mk)

.PHONY: roundtrip bench-core
bench-core: ## criterion micro-benchmarks: JSON→Protobuf (100 B, 1 KB, 64 KB) and the cached-schema encode path
	$(CARGO) bench -p topicgate --bench encode

roundtrip: kafka-up ## print first/cached schema lookup and publish round-trip times on this machine
	set -a && . $(RUN_DIR)/kafka.env && set +a && $(CARGO) run -q --release -p topicgate --example roundtrip
