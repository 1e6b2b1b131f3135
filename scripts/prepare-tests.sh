#!/usr/bin/env bash
# Makes this machine ready for the whole suite, idempotently: the Debian packages the tests use,
# PostgreSQL running with a `test` database, the terminal tests' user, and the fleet testbed
# (Podman + runc, the cached systemd host image, the Docker API socket). `npm test` runs this first
# when it runs as root; on a ready machine it takes about a second. TETHER_TEST_PREPARE=off skips it.
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

# NATS with JetStream for the cluster tests (each test uses a subject prefix of its own). Debian's
# package does not start it without systemd as PID 1; the machine's own, when running, is used as is.
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  log "starting nats-server on 127.0.0.1:4222"
  mkdir -p /var/lib/nats-server
  setsid nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log </dev/null >/dev/null 2>&1 &
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi

# The terminal tests log in as this account, not as root: root's login profile is the machine's
# (here it runs `pyenv rehash`, which leaves a lock behind when a login is hung up mid-start and then
# holds every root login for 60 s). It also has a group of its own to show that a terminal gets the
# user's groups. Debian's /etc/skel gives it an ordinary profile.
getent group tether-term-x >/dev/null || groupadd --system tether-term-x
if ! id -u tether-term >/dev/null 2>&1; then
  log "adding the terminal tests' user tether-term"
  useradd --create-home --shell /bin/bash --comment 'Tether terminal tests' tether-term
fi
id -nG tether-term | tr ' ' '\n' | grep -qx tether-term-x || usermod -aG tether-term-x tether-term

test/fleet/setup.sh up >&2

# The hub artifacts, both architectures, with the agents they carry (scripts/package-hub.mjs: cached
# by its inputs; about 4 minutes on a fresh clone, most of it compiling SQLite twice). The hub's
# install, image and packaging tests use them; the build does not make them (npm start needs none).
node scripts/package-hub.mjs >&2
