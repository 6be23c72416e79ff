# Fuzzing (see scripts/fuzz.sh and README "Fuzzing"): the cargo-fuzz targets of rust-core/fuzz (nightly
# Rust; cargo-fuzz is installed when missing) and the Go fuzz test of the message-headers parser, each
# for FUZZ_SECONDS. Not part of `make test`. `make fuzz FUZZ_TARGETS="wire headers"` runs some only.
# Included by the root Makefile (include mk/*.mk).

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: fuzz

fuzz: ## run every fuzz target for FUZZ_SECONDS (default 60) each; needs the nightly toolchain
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO=$(CARGO) GO=$(GO) scripts/fuzz.sh $(FUZZ_TARGETS)
