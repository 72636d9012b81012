#!/usr/bin/env bash
# Installs the services the tests start on loopback, when they are missing:
#   Azurite (Azure Storage emulator) from the npm registry into .tools/
# The tests start and stop them; this script only installs. It says exactly what is
# missing when it cannot install something (no npm, no root for apt).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if [ "$(id -u)" = "0" ] && have apt-get; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
  else
    return 1
  fi
}

# Azurite: the tests look for .tools/node_modules/.bin/azurite-blob, then azurite-blob on PATH.
if [ ! -x .tools/node_modules/.bin/azurite-blob ] && ! have azurite-blob; then
  if ! have npm; then
    apt_install nodejs npm || true
  fi
  if have npm; then
    echo "installing Azurite from the npm registry into .tools/"
    npm install --silent --no-audit --no-fund --prefix .tools azurite >/dev/null
  else
    missing+=("npm (Node.js) to install Azurite: apt-get install nodejs npm")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "cannot install what the tests need:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "test services installed"
