#!/usr/bin/env bash
# `make deps`, and the first step of `make run` and `make test`: installs the Debian packages that
# the build and the tests need when any is missing, then checks the toolchains. On a machine that
# has everything it prints nothing and takes a few milliseconds.
#
# Packages are installed with apt-get (after apt-get update) as root, or through sudo where it
# works without a prompt; otherwise the script prints the one command to run and stops.
# Toolchains (Rust, Go, Java, Maven, Python) are not installed: each one missing is named with
# where to get it, and the script stops.
set -euo pipefail

# Package: why it is needed.
packages=(
  "cmake:librdkafka is built from source (rdkafka-sys cmake-build)"
  "g++:librdkafka's cmake project enables C++"
  "make:the build"
  "pkg-config:librdkafka finds OpenSSL, zlib and curl"
  "libssl-dev:librdkafka's TLS and SASL (OpenSSL headers)"
  "zlib1g-dev:librdkafka's compression"
  "libcurl4-openssl-dev:librdkafka's OAUTHBEARER/OIDC code includes curl.h"
  "curl:the tests reset moto through its HTTP API"
  "openssl:the secure test broker's test PKI"
  "iproute2:the test scripts look for free ports with ss"
)

# python3 from Debian needs python3-venv for the tests' virtualenv; a python3 from elsewhere
# (pyenv, a distribution build) brings venv with it.
if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  packages+=("python3-venv:the tests' virtualenv (.venv) needs ensurepip")
fi

missing=()
if command -v dpkg-query >/dev/null; then
  for entry in "${packages[@]}"; do
    pkg=${entry%%:*}
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
else
  echo "setup: not a Debian-based system; make sure the equivalents of these are installed:" >&2
  printf '  %s\n' "${packages[@]}" >&2
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    echo "setup: these Debian packages are missing and installing them needs root. Run:" >&2
    echo "  sudo sh -c 'apt-get update && apt-get install -y ${missing[*]}'" >&2
    echo "then run this command again." >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Toolchains: each one missing, or too old, is a line of problems.
problems=()
# need COMMAND WHAT HOW: COMMAND must be on PATH.
need() {
  local cmd=$1 what=$2 how=$3
  command -v "$cmd" >/dev/null || problems+=("$what: '$cmd' not found. $how")
}
# version_at_least HAVE WANT: dotted versions compared field by field.
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

need cargo "Rust" "Install it with rustup (https://rustup.rs), then open a new shell."
need cc "a C compiler" "apt-get install gcc"
need go "Go 1.26 or later" "Install it from https://go.dev/dl and put its bin/ on PATH."
if command -v go >/dev/null; then
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  version_at_least "${have:-0}" 1.26 || problems+=("Go 1.26 or later: found $have. KrakenD CE 2.13.8 and the plugin are built with Go 1.26.")
fi
need java "Java 17 or later" "apt-get install openjdk-17-jdk-headless (Kafka and the tests' Java tools run on it)."
need keytool "Java's keytool" "It comes with a JDK: apt-get install openjdk-17-jdk-headless."
if command -v java >/dev/null; then
  have=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  version_at_least "${have:-0}" 17 || problems+=("Java 17 or later: found ${have:-an unknown version}.")
fi
need mvn "Maven" "apt-get install maven (it fetches the Kafka jars the tests run)."
need python3 "Python 3.11 or later" "apt-get install python3 python3-venv"
if command -v python3 >/dev/null; then
  have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  version_at_least "$have" 3.11 || problems+=("Python 3.11 or later: found $have.")
fi

if [ "${#problems[@]}" -gt 0 ]; then
  echo "setup: missing toolchains:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
