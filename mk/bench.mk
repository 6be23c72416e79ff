# make bench: topicgate against its ceiling, a KrakenD-pubsub stand-in, the C ABI and a bare
# rdkafka producer, in one run (bench/run.py; how to read it: bench/README.md).
# BENCH_SECONDS=N shortens each step (default 10). The load generator (vegeta, a Go module) is
# installed into $(BENCH_TOOLS) the first time. `make bench-core` (criterion) stays separate.
# Included by the root Makefile (include mk/*.mk).

BENCH_SECONDS     ?= 10
BENCH_CONCURRENCY ?= 8,32
BENCH_TOOLS       ?= $(HOME)/.cache/topicgate/tools
VEGETA_VERSION    := v12.13.0
VEGETA            := $(BENCH_TOOLS)/vegeta-$(VEGETA_VERSION)/vegeta
BENCH_BIN          = $(BUILD_DIR)/bench

.PHONY: bench bench-tools bench-bins

bench: plugin kdhost bench-bins bench-tools kafka-up ## HTTP, C-ABI and producer benchmark of every contender (BENCH_SECONDS=N per step); writes bench/results/latest.json
	set -a && . $(RUN_DIR)/kafka.env && set +a && VEGETA=$(VEGETA) VEGETA_VERSION=$(VEGETA_VERSION) BENCH_SECONDS=$(BENCH_SECONDS) \
		BENCH_CONCURRENCY=$(BENCH_CONCURRENCY) python3 bench/run.py

bench-tools: $(VEGETA)

$(VEGETA):
	GOBIN=$(dir $@) $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

# core_ffi links the static core; pubsubhost is its own Go module (gocloud.dev, sarama).
bench-bins: core-release
	@mkdir -p $(BENCH_BIN)
	$(CARGO) build --release -p rdkafka-bare
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -Iinclude bench/core_ffi.c $(CORE_LIB) \
		-lssl -lcrypto -lz -lm -ldl -lpthread -o $(BENCH_BIN)/core_ffi
	cd bench/pubsubhost && CGO_ENABLED=0 $(GO) build -o $(CURDIR)/$(BENCH_BIN)/pubsubhost .
