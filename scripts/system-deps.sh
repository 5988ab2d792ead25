#!/usr/bin/env bash
# System packages the test suite uses, from Debian's packages (never a downloaded browser):
#   chromium    the real browser the UI test drives with Playwright;
#   postgresql  the server binaries for the PostgreSQL-metadata topology test and the postgres
#               target's tests (each starts its own throwaway cluster; nothing is configured
#               system-wide);
#   openjdk-17-jre-headless  Java for Spark (pyspark's local session: the spark target's tests);
#   slapd       OpenLDAP's server, which the tests' Spark Thrift Server authenticates against
#               (installed unconfigured: nothing is started or configured system-wide).
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)
[ "${java_major:-0}" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless)
[ -x /usr/sbin/slapd ] || missing+=(slapd)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system packages missing for the tests: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# slapd's package would otherwise make a directory of its own and start it as a service
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
