#!/usr/bin/env bash
# Makes this machine ready for the whole suite, idempotently: the Debian packages the tests use,
# PostgreSQL running with a `test` database, and the fleet testbed (Podman + runc, the cached systemd
# host image, the Docker API socket). `npm test` runs this first when it runs as root; on a ready
# machine it takes about a second. TETHER_TEST_PREPARE=off skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
log() { printf '== prepare: %s\n' "$*" >&2; }

need=()
for p in $(cat .ci/apt-packages); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null

test/fleet/setup.sh up >&2
