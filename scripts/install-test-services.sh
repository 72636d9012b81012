#!/usr/bin/env bash
# Installs the services the tests start on loopback, when they are missing:
#   Azurite (Azure Storage emulator) from the npm registry into .tools/
#   PostgreSQL server binaries (initdb, pg_ctl) with apt-get
#   Java 17+ (the Spark engine's tests run PySpark in local mode) with apt-get
#   Redis server (the online feature store's tests) with apt-get
#   Chromium (the console's browser tests drive it with Playwright) with apt-get
#   wrk, with --bench only (the serving benchmarks; no test needs it)
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

# PostgreSQL: the tests (tests/conftest.py `postgres`) run initdb and pg_ctl from PATH or
# the newest /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so as root the
# tests run them as the `postgres` OS user, which the package creates (created here if not).
have_initdb() { have initdb || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
if ! have_initdb; then
  echo "installing PostgreSQL with apt-get"
  apt_install postgresql || true
  if ! have_initdb; then
    missing+=("PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql (as root)")
  fi
fi
if have_initdb && [ "$(id -u)" = "0" ] && ! id -u postgres >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres \
    || missing+=("a non-root 'postgres' OS user to run PostgreSQL as: useradd --system postgres")
fi

# Java: PySpark (pip-installed with the test extra) needs a JVM, 17 or newer.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! have java || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  echo "installing Java 17 with apt-get"
  apt_install openjdk-17-jre-headless || true
  if ! have java; then
    missing+=("Java 17+ for the Spark tests: apt-get install openjdk-17-jre-headless (as root)")
  fi
fi

# Redis: the online store's tests (tests/conftest.py `redis_url`) start redis-server on loopback.
if ! have redis-server; then
  echo "installing Redis with apt-get"
  apt_install redis-server || true
  if ! have redis-server; then
    missing+=("redis-server for the online store tests: apt-get install redis-server (as root)")
  fi
fi

# Chromium: the console's browser tests (tests/e2e/test_console_browser.py) drive the
# system's headless Chromium through Playwright (never `playwright install`).
if ! have chromium && [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium with apt-get"
  apt_install chromium || true
  if ! have chromium && [ ! -x /usr/bin/chromium ]; then
    missing+=("chromium for the console's browser tests: apt-get install chromium (as root)")
  fi
fi

# wrk (HTTP load generator) only for the serving benchmarks (bench/serving.py, bench/soak.py):
# `scripts/install-test-services.sh --bench`. The tests never need it.
if [ "${1:-}" = "--bench" ] && ! have wrk; then
  apt_install wrk || missing+=("wrk for the serving benchmarks: apt-get install -y wrk")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "cannot install what the tests need:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "test services installed"
