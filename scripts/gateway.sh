#!/usr/bin/env bash
# Prints the path of the gateway binary that `make run` and the tests use, in this order:
#   1. $TG_GATEWAY_BIN, when set (it must be executable);
#   2. build/krakend, KrakenD CE, when it is built;
#   3. build/krakend after `make krakend` builds it (where the Go module proxy serves KrakenD's modules);
#   4. build/kdhost, the KrakenD-compatible test host (krakend/kdhost), with one line on stderr
#      saying why KrakenD could not be built.
# The caller builds build/kdhost (make kdhost) beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."

krakend=${KRAKEND_BIN:-build/krakend}
kdhost=${KDHOST_BIN:-build/kdhost}

if [ -n "${TG_GATEWAY_BIN:-}" ]; then
  [ -x "$TG_GATEWAY_BIN" ] || { echo "gateway: TG_GATEWAY_BIN=$TG_GATEWAY_BIN is not an executable file" >&2; exit 1; }
  echo "$TG_GATEWAY_BIN"
  exit 0
fi
if [ -x "$krakend" ]; then
  echo "$krakend"
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if make --no-print-directory krakend >"$log" 2>&1 && [ -x "$krakend" ]; then
  echo "gateway: built $krakend (make krakend)" >&2
  echo "$krakend"
  exit 0
fi
# The reason is go's own error line (e.g. a module the proxy refuses), else make's last line.
why=$(grep -v '^go: downloading' "$log" | grep -m1 -E '^go: .*:' || true)
[ -n "$why" ] || why=$(grep -v '^\s*$' "$log" | tail -n1)
echo "gateway: using $kdhost, the KrakenD-compatible test host: make krakend failed: ${why:-no output}" >&2
[ -x "$kdhost" ] || { echo "gateway: $kdhost is not built either (make kdhost)" >&2; exit 1; }
echo "$kdhost"
