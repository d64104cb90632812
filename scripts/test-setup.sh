#!/usr/bin/env bash
# What the tests need from the system, installed with apt when it is missing (as root, or with
# sudo that asks no password): Chromium (browser tests), coturn (its test client and a TURN
# server to compare with), PostgreSQL and Redis binaries (test/global-setup.ts starts throwaway
# servers of both; no system service is used), iproute2 and util-linux (network namespaces).
# Elsewhere it prints one line naming what to install, and fails. `npm test` runs it first.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have chromium || need+=(chromium)
{ have turnserver && have turnutils_uclient; } || need+=(coturn)
{ compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || have initdb; } || need+=(postgresql)
have pg_dump || need+=(postgresql-client)
have redis-server || need+=(redis-server)
have ip || need+=(iproute2)
have unshare || need+=(util-linux)
[ "${#need[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then as_root=(); elif have sudo && sudo -n true 2>/dev/null; then as_root=(sudo); else as_root=(none); fi
if ! have apt-get || [ "${as_root[*]}" = none ]; then
  echo "the tests need these system packages: ${need[*]} (Debian/Ubuntu: sudo apt-get install -y ${need[*]}), then run npm test again" >&2
  exit 1
fi
echo "installing system packages for the tests: ${need[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
