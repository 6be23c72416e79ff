# make bench: topicgate against its ceiling, KrakenD's built-in Kafka publisher (a stand-in plugin
# on kdhost), the C ABI and a bare rdkafka producer, in one run (bench/run.py; how to read it: bench/README.md).
# BENCH_SECONDS=N sets each step's length, BENCH_ROUNDS=N the saturation rounds (medians are
# reported), BENCH_CONCURRENCY the closed-loop levels. The load generator (vegeta, a Go module) is
# installed into $(BENCH_TOOLS) the first time. `make bench-core` (criterion) stays separate.
# Included by the root Makefile (include mk/*.mk).

BENCH_SECONDS     ?= 6
BENCH_CONCURRENCY ?= 32
BENCH_ROUNDS      ?= 3
BENCH_TOOLS       ?= $(HOME)/.cache/topicgate/tools
VEGETA_VERSION    := v12.13.0
VEGETA            := $(BENCH_TOOLS)/vegeta-$(VEGETA_VERSION)/vegeta
BENCH_BIN          = $(BUILD_DIR)/bench

.PHONY: bench bench-tools bench-bins

bench: plugin kdhost bench-bins bench-tools kafka-up ## HTTP, C-ABI and producer benchmark of every contender (BENCH_SECONDS, BENCH_ROUNDS), then the read side (bench-read); writes bench/results/latest.json and read-latest.json
	$(WITH_GATEWAY) set -a && . $(RUN_DIR)/kafka.env && set +a && VEGETA=$(VEGETA) VEGETA_VERSION=$(VEGETA_VERSION) BENCH_SECONDS=$(BENCH_SECONDS) \
		BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_CONCURRENCY=$(BENCH_CONCURRENCY) python3 bench/run.py
	@$(MAKE) --no-print-directory bench-read

# The read side (issue #22, bench/read.py): SSE fan-out, a paged GET of 1,000 records, one SSE
# client, against a bare rdkafka consumer (bench/rdkafka-bare's rdkafka_bare_consume). Its
# Kafka client is confluent-kafka, so it runs in .venv. BENCH_READ_FANOUT etc.: bench/read.py.
.PHONY: bench-read
bench-read: plugin kdhost bench-bins kafka-up ## read-side benchmark: SSE fan-out 100/1,000, paged GET, one SSE client vs a bare rdkafka consumer; writes bench/results/read-latest.json
	$(WITH_GATEWAY) set -a && . $(RUN_DIR)/kafka.env && set +a && .venv/bin/python bench/read.py

bench-tools: $(VEGETA)

$(VEGETA):
	GOBIN=$(dir $@) $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

# rdkafka-bare is built together with the core: on its own, cargo would resolve its dependencies'
# features apart (cc, log, futures) and build librdkafka a second time. core_ffi links the static
# core. The pubsub stand-in (used on kdhost only) is a client plugin for the same host as topicgate.so, in its own Go
# module (gocloud.dev, sarama), built with the same flags as the host.
bench-bins: core-release
	@mkdir -p $(BENCH_BIN)
	$(CARGO) build --release -p topicgate -p rdkafka-bare
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -Iinclude bench/core_ffi.c $(CORE_LIB) \
		-lssl -lcrypto -lz -lm -ldl -lpthread -o $(BENCH_BIN)/core_ffi
	$(GO) build -o $(BENCH_BIN)/streamload ./bench/streamload
	cd bench/pubsubplugin && CGO_ENABLED=1 $(GO) build -buildmode=plugin -o $(CURDIR)/$(BENCH_BIN)/krakend-pubsub-standin.so .
