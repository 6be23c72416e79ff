#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: the cargo-fuzz targets of rust-core/fuzz (nightly Rust,
# libFuzzer) and the Go native fuzz test of the plugin's message-headers parser. Called by `make fuzz`.
#
#   FUZZ_SECONDS=60 scripts/fuzz.sh [target...]     (default: every target)
#
# Each target runs alone for FUZZ_SECONDS; new inputs go to rust-core/fuzz/corpus/<target>/ (kept
# between runs, not committed), crashes to rust-core/fuzz/artifacts/<target>/, logs to
# rust-core/fuzz/logs/<target>.log. Prints the executions per target; exits 1 if any target failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_DIR=$ROOT/rust-core/fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
CARGO=${CARGO:-cargo}
GO=${GO:-go}
CARGO_FUZZ_VERSION=0.13.2
RUST_TARGETS=(headers json_to_protobuf wire config_text config_mutations ffi_publisher_new ffi_publish)
GO_TARGET=FuzzParseMessageHeaders

# Per-target libFuzzer options: dictionaries of the input's vocabulary, and a larger input for the C ABI
# (bodies up to and past its 8 KiB limit).
extra_args() {
  case $1 in
    json_to_protobuf) echo "-dict=$FUZZ_DIR/dicts/json.dict" ;;
    ffi_publish) echo "-dict=$FUZZ_DIR/dicts/json.dict -max_len=20000" ;;
    config_text | ffi_publisher_new) echo "-dict=$FUZZ_DIR/dicts/config.dict" ;;
  esac
}

if ! $CARGO +nightly --version >/dev/null 2>&1; then
  echo "error: make fuzz needs the nightly Rust toolchain (cargo-fuzz uses -Zsanitizer); install it with" >&2
  echo "       rustup toolchain install nightly" >&2
  exit 1
fi
if ! $CARGO fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  $CARGO install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${RUST_TARGETS[@]}" "$GO_TARGET")

cd "$FUZZ_DIR"
mkdir -p logs
needs_build=()
for t in "${targets[@]}"; do [ "$t" = "$GO_TARGET" ] || needs_build+=("$t"); done
if [ ${#needs_build[@]} -gt 0 ]; then
  echo "building the fuzz targets (rust-core/fuzz/target)"
  $CARGO +nightly fuzz build
fi

declare -A execs result
failed=0
for t in "${targets[@]}"; do
  log=$FUZZ_DIR/logs/$t.log
  echo "fuzzing $t for ${FUZZ_SECONDS}s (log: rust-core/fuzz/logs/$t.log)"
  if [ "$t" = "$GO_TARGET" ]; then
    # The pure-Go build (no Rust core linked): the parser under test is plain Go.
    if (cd "$ROOT" && $GO test -tags topicgate_nocore -run='^$' -fuzz="^$t\$" -fuzztime="${FUZZ_SECONDS}s" \
      -parallel=1 ./go-plugin/internal/request/) >"$log" 2>&1; then result[$t]=ok; else result[$t]=FAILED; failed=1; fi
    execs[$t]=$(grep -o 'execs: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2 || true)
  else
    mkdir -p "corpus/$t"
    # shellcheck disable=SC2046 # extra_args is a list of options
    if $CARGO +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$FUZZ_SECONDS" \
      -print_final_stats=1 -timeout=20 $(extra_args "$t") >"$log" 2>&1; then
      result[$t]=ok
    else
      result[$t]=FAILED
      failed=1
    fi
    execs[$t]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n1 | grep -o '[0-9]*$' || true)
  fi
  echo "  $t: ${execs[$t]:-?} executions, ${result[$t]}"
  if [ "${result[$t]}" != ok ]; then
    grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|Test unit written to|--- FAIL|Failing input written' "$log" \
      | head -n 6 | sed 's/^/    /' || true
  fi
done

echo
echo "fuzz summary (${FUZZ_SECONDS}s per target)"
printf '  %-26s %14s  %s\n' target executions result
for t in "${targets[@]}"; do
  printf '  %-26s %14s  %s\n' "$t" "${execs[$t]:-?}" "${result[$t]}"
done
if [ $failed -ne 0 ]; then
  echo "a target failed: crashing inputs are under rust-core/fuzz/artifacts/<target>/ (Go: go-plugin/internal/request/testdata/fuzz/)" >&2
  exit 1
fi
