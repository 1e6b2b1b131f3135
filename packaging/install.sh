#!/bin/sh
# Tether agent installer, served by the hub at GET /install.sh:
#
#   curl -fsSL https://HUB/install.sh | sudo sh -s -- --token TOKEN [options]
#
# Installs the agent built for this machine's architecture from the hub, runtime included (the host
# needs no Node.js), side by side under /opt/tether-agent/<version> with a `current` link; writes
# /etc/tether/agent.toml (root's, 0644: the capability lock is typed here, by this host's admin, and
# the hub can never change it); keeps state in /var/lib/tether-agent (0700); installs the systemd unit
# derived from the capabilities, with the limits as a drop-in; starts it and prints the host's id once
# it is online. Safe to run again. Everything is checked before anything is written: a wrong token, a
# hub that is down, an architecture the hub has no build for, or a damaged download change nothing.
#
# Options:
#   --token TOKEN       enrollment token (from the console's Add host page or `tether token create`)
#   --url URL           the hub (default: the hub that served this script)
#   --version V         agent version to install (default: the newest the hub holds)
#   --allow LIST        capabilities, comma-separated (default: metrics): metrics,exec,files,docker,
#                       systemd,cron,process,power,terminal
#   --file-root DIR     a directory the files capability may use (repeatable)
#   --cpu N%            CPUQuota for the agent itself (e.g. 20%)
#   --memory SIZE       MemoryMax for the agent itself (e.g. 128M)
#   --io-read RATE      IOReadBandwidthMax (e.g. 10M, bytes per second)
#   --io-write RATE     IOWriteBandwidthMax
#   --auto-update       let the hub upgrade this agent (off unless given: new code is a new trust decision)
#   --timeout SECONDS   how long to wait for the host to come online (default 60)
#   --uninstall         stop and remove the agent (its state is kept unless --purge)
#   --purge             with --uninstall: remove its state, identity and user too
#
# The hub, from its artifact (tether-hub-<version>-linux-<arch>.tar.gz, runtime included):
#
#   sudo ./tether-hub-<version>-linux-<arch>/share/install.sh --hub [--listen 0.0.0.0:8080]
#   sudo sh install.sh --hub --archive tether-hub-<version>-linux-<arch>.tar.gz
#
#   --hub               install (or upgrade to) the hub this script came with, or --archive's
#   --archive FILE      a hub artifact tarball (checked against FILE.sha256 when it is there)
#   --listen ADDR       where the hub listens (default 0.0.0.0:8080), for a new /etc/tether/hub.toml
#   --public-url URL    the URL hosts reach the hub at (public_url), for a new hub.toml
#   --timeout, --uninstall, --purge   as above, for the hub (its state: /var/lib/tether)
#
# Environment for tests: TETHER_PREFIX (/opt/tether-agent; /opt/tether-hub with --hub), TETHER_ETC (/etc/tether).
set -eu

TETHER_HUB_DEFAULT='@@TETHER_HUB@@'
TETHER_VERSION_DEFAULT='@@TETHER_VERSION@@'
# A hub with a self-issued TLS certificate fills these in: curl talks to it by the pin of its key
# (the line that fetched this script did too), and the agent pins its certificate (hub_fingerprint).
TETHER_PIN_DEFAULT='@@TETHER_PIN@@'
TETHER_FINGERPRINT_DEFAULT='@@TETHER_FINGERPRINT@@'

PREFIX=${TETHER_PREFIX:-/opt/tether-agent}
ETC=${TETHER_ETC:-/etc/tether}
STATE=/var/lib/tether-agent
UNIT=tether-agent.service
UNIT_FILE=/etc/systemd/system/$UNIT
DROPIN_DIR=/etc/systemd/system/$UNIT.d
AGENT_USER=tether-agent
KNOWN_CAPS='metrics exec files docker systemd cron process power terminal'

say() { printf 'tether-install: %s\n' "$*"; }
die() { printf 'tether-install: error: %s\n' "$*" >&2; exit 1; }

# remove_service UNIT DROPIN_DIR PREFIX STATE USER CONFIG...: --uninstall for the agent and the hub alike:
# the unit stopped and gone, the installed versions and config files gone; with --purge the state
# and the system user too. Prints nothing: the caller says what it removed.
remove_service() {
  r_unit=$1 r_dropin=$2 r_prefix=$3 r_state=$4 r_user=$5
  shift 5
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$r_unit" >/dev/null 2>&1 || true; fi
  rm -rf "$r_dropin"
  rm -f "/etc/systemd/system/$r_unit"
  command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload >/dev/null 2>&1 || true
  rm -rf "$r_prefix"
  rm -f "$@"
  rmdir "$ETC" 2>/dev/null || true
  if $purge; then
    rm -rf "$r_state"
    if getent passwd "$r_user" >/dev/null 2>&1; then userdel "$r_user" >/dev/null 2>&1 || true; fi
    if getent group "$r_user" >/dev/null 2>&1; then groupdel "$r_user" >/dev/null 2>&1 || true; fi
  fi
}

# --- arguments -----------------------------------------------------------------------------
token='' url='' version='' allow='metrics' roots='' cpu='' memory='' io_read='' io_write=''
auto_update=false timeout=60 uninstall=false purge=false
hub=false archive='' listen='' public_url=''
case $TETHER_HUB_DEFAULT in [@]*) TETHER_HUB_DEFAULT='' ;; esac
case $TETHER_VERSION_DEFAULT in [@]*) TETHER_VERSION_DEFAULT='' ;; esac
case $TETHER_PIN_DEFAULT in [@]*) TETHER_PIN_DEFAULT='' ;; esac
case $TETHER_FINGERPRINT_DEFAULT in [@]*) TETHER_FINGERPRINT_DEFAULT='' ;; esac
need_arg() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --token) need_arg "$@"; token=$2; shift 2 ;;
    --url) need_arg "$@"; url=$2; shift 2 ;;
    --version) need_arg "$@"; version=$2; shift 2 ;;
    --allow) need_arg "$@"; allow=$2; shift 2 ;;
    --file-root) need_arg "$@"; roots="$roots $2"; shift 2 ;;
    --cpu) need_arg "$@"; cpu=$2; shift 2 ;;
    --memory) need_arg "$@"; memory=$2; shift 2 ;;
    --io-read) need_arg "$@"; io_read=$2; shift 2 ;;
    --io-write) need_arg "$@"; io_write=$2; shift 2 ;;
    --auto-update) auto_update=true; shift ;;
    --timeout) need_arg "$@"; timeout=$2; shift 2 ;;
    --uninstall) uninstall=true; shift ;;
    --purge) purge=true; shift ;;
    --hub) hub=true; shift ;;
    --archive) need_arg "$@"; archive=$2; shift 2 ;;
    --listen) need_arg "$@"; listen=$2; shift 2 ;;
    --public-url) need_arg "$@"; public_url=$2; shift 2 ;;
    -h|--help) sed -n '2,43p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//' || true; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (curl … | sudo sh -s -- …)"
if $purge && ! $uninstall; then die "--purge goes with --uninstall"; fi

# --- the hub ---------------------------------------------------------------------------------
# (the agent's part follows; a hub install returns from here)
if $hub; then
  [ -z "$token$roots$cpu$memory$io_read$io_write" ] && [ "$allow" = metrics ] && ! $auto_update \
    || die "--token, --allow, --file-root, --cpu, --memory, --io-* and --auto-update are for agents, not with --hub"
  HUB_PREFIX=${TETHER_PREFIX:-/opt/tether-hub}
  HUB_STATE=/var/lib/tether
  HUB_UNIT=tether-hub.service
  HUB_UNIT_FILE=/etc/systemd/system/$HUB_UNIT
  HUB_DROPIN=/etc/systemd/system/$HUB_UNIT.d
  HUB_USER=tether
  if $uninstall; then
    [ -z "$archive$listen$public_url" ] || die "--uninstall takes no --archive, --listen or --public-url"
    remove_service "$HUB_UNIT" "$HUB_DROPIN" "$HUB_PREFIX" "$HUB_STATE" "$HUB_USER" "$ETC/hub.toml"
    if $purge; then
      say "removed the hub, its state (database, keys) and its user"
    else
      say "removed the hub; its state (database, keys) is kept in $HUB_STATE (--purge removes it)"
    fi
    exit 0
  fi

  # checks, before anything is written
  [ -d /run/systemd/system ] || die "systemd is not running on this host (the hub runs as a systemd service)"
  for tool in tar gzip sha256sum systemctl install mktemp; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing on this host"
  done
  case $(uname -m) in
    x86_64|amd64) arch=x64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) die "unsupported architecture $(uname -m): the Tether hub is built for x86_64 (x64) and aarch64 (arm64)" ;;
  esac
  listen=${listen:-0.0.0.0:8080}
  printf '%s' "$listen" | grep -Eq '^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' || die "--listen: expected HOST:PORT such as 0.0.0.0:8080, got $listen"
  port=${listen##*:}
  [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "--listen: no port $port"
  if [ -n "$public_url" ]; then
    printf '%s' "$public_url" | grep -Eq '^https?://[A-Za-z0-9.:[-]+\]?(:[0-9]+)?/?$' || die "--public-url: expected http(s)://host[:port], got $public_url"
  fi
  printf '%s' "$timeout" | grep -Eq '^[0-9]{1,4}$' || die "--timeout: expected seconds, got $timeout"

  work=$(mktemp -d /tmp/tether-install.XXXXXX)
  trap 'rm -rf "$work"' EXIT INT TERM
  if [ -n "$archive" ]; then
    [ -f "$archive" ] || die "--archive: no file $archive"
    file=${archive##*/}
    name=${file%.tar.gz}
    printf '%s' "$file" | grep -Eq '^tether-hub-[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?-linux-(x64|arm64)\.tar\.gz$' || die "--archive: $file is not a hub artifact (tether-hub-<version>-linux-<arch>.tar.gz)"
    if [ -f "$archive.sha256" ]; then
      want=$(cut -d ' ' -f 1 "$archive.sha256" | head -n 1)
      got=$(sha256sum "$archive" | cut -d ' ' -f 1)
      [ "$got" = "$want" ] || die "$file is damaged or tampered with: SHA-256 $got, its .sha256 says $want; nothing was installed"
    fi
    mkdir -p "$work/x"
    tar -xzf "$archive" -C "$work/x" --no-same-owner || die "$file does not unpack"
    src=$work/x/$name
  else
    here=$(cd "$(dirname "$0")" 2>/dev/null && pwd || true)
    src=${here%/share}
    [ -n "$here" ] && [ "$src" != "$here" ] && [ -f "$src/VERSION" ] && [ -x "$src/bin/tether-hub" ] \
      || die "--hub installs a hub artifact: run share/install.sh inside an unpacked tether-hub-<version>-linux-<arch>, or pass --archive FILE"
    name=${src##*/}
  fi
  case $name in
    tether-hub-*-linux-"$arch") ;;
    tether-hub-*-linux-*) die "$name is built for ${name##*-linux-}; this host is $arch" ;;
    *) die "$src is not a hub artifact (tether-hub-<version>-linux-<arch>)" ;;
  esac
  [ -f "$src/MANIFEST.sha256" ] || die "$name holds no MANIFEST.sha256"
  (cd "$src" && sha256sum -c --quiet --strict MANIFEST.sha256 >"$work/manifest.out" 2>&1) || die "$name: files differ from its manifest: $(head -c 300 "$work/manifest.out")"
  version=$(cat "$src/VERSION")
  [ "$name" = "tether-hub-$version-linux-$arch" ] || die "$name holds version $version"
  "$src/runtime/node" --version >/dev/null 2>&1 || die "$name: its runtime does not run on this host"

  # install, side by side with what is there
  if [ -x "$HUB_PREFIX/$version/bin/tether-hub" ] && (cd "$HUB_PREFIX/$version" && sha256sum -c --quiet --strict MANIFEST.sha256 >/dev/null 2>&1); then
    say "hub $version is already unpacked in $HUB_PREFIX/$version and intact"
  else
    mkdir -p "$HUB_PREFIX"
    chmod 0755 "$HUB_PREFIX"
    rm -rf "$HUB_PREFIX/.partial-$version"
    cp -R "$src" "$HUB_PREFIX/.partial-$version"
    chown -R 0:0 "$HUB_PREFIX/.partial-$version"
    rm -rf "$HUB_PREFIX/$version"
    mv "$HUB_PREFIX/.partial-$version" "$HUB_PREFIX/$version"
  fi
  if ! getent passwd "$HUB_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir "$HUB_STATE" --shell /usr/sbin/nologin "$HUB_USER" || die "cannot create the system user $HUB_USER"
  fi
  mkdir -p "$ETC"
  chmod 0755 "$ETC"
  if [ -f "$ETC/hub.toml" ]; then
    [ -z "$public_url" ] && [ "$listen" = 0.0.0.0:8080 ] || say "kept $ETC/hub.toml as it is (--listen and --public-url shape a new one; edit it to change them)"
  else
    {
      echo "# Written by the Tether installer (install.sh --hub). Options: tether hub --help; TOML keys"
      echo "# are the long options with _ for - (log_level, public_url, db, tls_cert, ...)."
      echo "# Apply a change: systemctl restart tether-hub"
      echo "listen = \"$listen\""
      echo "data = \"$HUB_STATE\""
      [ -z "$public_url" ] || echo "public_url = \"${public_url%/}\""
    } > "$work/hub.toml"
    install -m 0640 -o 0 -g "$HUB_USER" "$work/hub.toml" "$ETC/hub.toml"
  fi
  sed -e "s#{{PREFIX}}#$HUB_PREFIX#g" -e "s#{{ETC}}#$ETC#g" "$HUB_PREFIX/$version/share/tether-hub.service" > "$work/unit"
  install -m 0644 "$work/unit" "$HUB_UNIT_FILE"
  port=$(sed -n 's/^listen *= *"\(.*\):\([0-9]*\)"$/\2/p' "$ETC/hub.toml" | head -n 1)
  if [ -n "$port" ] && [ "$port" -lt 1024 ]; then
    install -d -m 0755 "$HUB_DROPIN"
    printf '[Service]\n# hub.toml listens on port %s, below 1024\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n' "$port" > "$HUB_DROPIN/low-port.conf"
  else
    rm -rf "$HUB_DROPIN"
  fi
  previous=$(readlink "$HUB_PREFIX/current" 2>/dev/null || true)
  ln -sfn "$version" "$HUB_PREFIX/.current.new"
  mv -T "$HUB_PREFIX/.current.new" "$HUB_PREFIX/current"
  # keep the version it replaces (to go back by hand: relink current, restart), nothing older
  for d in "$HUB_PREFIX"/*; do
    v=${d##*/}
    [ "$v" = current ] || [ "$v" = "$version" ] || [ "$v" = "$previous" ] || rm -rf "$d"
  done
  systemctl daemon-reload
  systemctl enable "$HUB_UNIT" >/dev/null 2>&1 || die "systemctl enable $HUB_UNIT failed"
  systemctl restart "$HUB_UNIT" || die "systemctl restart $HUB_UNIT failed: $(systemctl status --no-pager $HUB_UNIT 2>&1 | tail -n 5)"

  # healthy: GET /api/v1/health on the address it listens on, asked with its own runtime (no curl needed)
  host=$(sed -n 's/^listen *= *"\(.*\):[0-9]*"$/\1/p' "$ETC/hub.toml" | head -n 1)
  case $host in ''|0.0.0.0) host=127.0.0.1 ;; '[::]'|::) host='[::1]' ;; esac
  scheme=http
  if grep -Eq '^ *(tls_cert|tls_self_signed *= *true)' "$ETC/hub.toml"; then scheme=https; fi
  probe="$scheme://$host:${port:-8080}/api/v1/health"
  say "hub $version started; waiting for $probe"
  i=0
  while [ "$i" -lt $((timeout * 5)) ]; do
    # a local probe of this host's own hub: its certificate may be its own self-signed one
    if NODE_TLS_REJECT_UNAUTHORIZED=0 "$HUB_PREFIX/current/runtime/node" --no-warnings -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$probe" 2>/dev/null; then
      say "online: hub $version at $scheme://$(hostname 2>/dev/null || echo "$host"):${port:-8080} (config $ETC/hub.toml, state $HUB_STATE)"
      if [ -f "$HUB_STATE/initial-admin-password" ]; then say "first login: user admin, the password is in $HUB_STATE/initial-admin-password"; fi
      exit 0
    fi
    if [ "$(systemctl is-active "$HUB_UNIT" 2>/dev/null)" = failed ]; then break; fi
    sleep 0.2
    i=$((i + 1))
  done
  printf 'tether-install: error: the hub did not answer %s within %ss; its log:\n' "$probe" "$timeout" >&2
  journalctl -u "$HUB_UNIT" --no-pager -n 15 -o cat >&2 2>/dev/null || true
  exit 1
fi
if [ -n "$archive$listen$public_url" ]; then die "--archive, --listen and --public-url go with --hub"; fi

# --- uninstall -----------------------------------------------------------------------------
if $uninstall; then
  remove_service "$UNIT" "$DROPIN_DIR" "$PREFIX" "$STATE" "$AGENT_USER" "$ETC/agent.toml" "$ETC/agent.toml.new"
  if $purge; then
    say "removed the agent, its state and its user"
  else
    say "removed the agent; its state (identity) is kept in $STATE (--purge removes it)"
  fi
  exit 0
fi

# --- checks, before anything is written ----------------------------------------------------
[ -d /run/systemd/system ] || die "systemd is not running on this host (the agent runs as a systemd service)"
for tool in tar gzip sha256sum systemctl install mktemp; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing on this host"
done
if command -v curl >/dev/null 2>&1; then fetcher=curl
elif command -v wget >/dev/null 2>&1; then fetcher=wget
else die "neither curl nor wget is installed"; fi
pin=$TETHER_PIN_DEFAULT fingerprint=$TETHER_FINGERPRINT_DEFAULT curl_pin=''
if [ -n "$pin" ]; then
  printf '%s' "$pin" | grep -Eq '^sha256//[A-Za-z0-9+/]{43}=$' || die "not a public key pin: $pin"
  printf '%s' "$fingerprint" | grep -Eq '^sha256:[0-9a-f]{64}$' || die "not a certificate fingerprint: $fingerprint"
  [ $fetcher = curl ] || die "this hub's TLS certificate is its own (self-signed): install curl, which can pin its key (wget cannot)"
  # -k: no authority vouches for the certificate; --pinnedpubkey: its key must be this one (checked with -k too)
  curl_pin="-k --pinnedpubkey $pin"
fi

case $(uname -m) in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m): Tether agents are built for x86_64 (x64) and aarch64 (arm64)" ;;
esac

url=${url:-$TETHER_HUB_DEFAULT}
[ -n "$url" ] || die "no hub URL: pass --url https://hub.example:8080"
url=${url%/}
printf '%s' "$url" | grep -Eq '^https?://[A-Za-z0-9.:[-]+\]?(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$' || die "not a hub URL: $url"

version=${version:-$TETHER_VERSION_DEFAULT}

# Capabilities: known names only, written back normalised.
caps_toml=''
for c in $(printf '%s' "$allow" | tr ',' ' '); do
  case " $KNOWN_CAPS " in *" $c "*) ;; *) die "unknown capability \"$c\" (known: $(echo $KNOWN_CAPS | tr ' ' ','))" ;; esac
  case " $caps_toml " in *"\"$c\""*) continue ;; esac
  caps_toml="${caps_toml:+$caps_toml, }\"$c\""
done
[ -n "$caps_toml" ] || die "--allow: no capability given"
roots_toml=''
for r in $roots; do
  case $r in /*) ;; *) die "--file-root: not an absolute path: $r" ;; esac
  printf '%s' "$r" | grep -Eq '^/[A-Za-z0-9._@+=,:/-]*$' || die "--file-root: use a path of letters, digits and ._-@+=,:/ ($r)"
  case /$r/ in */../*|*/./*) die "--file-root: no . or .. in $r" ;; esac
  roots_toml="${roots_toml:+$roots_toml, }\"$r\""
done
if [ -n "$roots_toml" ]; then
  case " $(printf '%s' "$allow" | tr ',' ' ') " in *" files "*) ;; *) die "--file-root needs the files capability (--allow metrics,files)" ;; esac
fi
[ -z "$cpu" ] || printf '%s' "$cpu" | grep -Eq '^[0-9]{1,5}%$' || die "--cpu: expected a share such as 20% (of one CPU), got $cpu"
for v in "$memory" "$io_read" "$io_write"; do
  [ -z "$v" ] || printf '%s' "$v" | grep -Eq '^[0-9]{1,13}[KMGTkmgt]?$' || die "expected a size such as 128M, got $v"
done
printf '%s' "$timeout" | grep -Eq '^[0-9]{1,4}$' || die "--timeout: expected seconds, got $timeout"

enrolled=''
if [ -f "$STATE/identity.json" ]; then
  enrolled=$(sed -n 's/.*"agentId": *"\([^"]*\)".*/\1/p' "$STATE/identity.json" | head -n 1)
fi
if [ -z "$enrolled" ]; then
  [ -n "$token" ] || die "--token is required to enroll this host (it is not enrolled yet)"
  printf '%s' "$token" | grep -Eq '^[A-Za-z0-9._~+/=-]{8,256}$' || die "--token: that is not an enrollment token"
fi

work=$(mktemp -d /tmp/tether-install.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

# fetch URL FILE: the body into FILE; prints the HTTP status (000: no answer).
fetch() {
  if [ $fetcher = curl ]; then
    # shellcheck disable=SC2086 # curl_pin is words on purpose
    curl -sS -L $curl_pin --connect-timeout 10 --max-time 300 -o "$2" -w '%{http_code}' "$1" 2>"$work/fetch.err" || true
  else
    if wget -q -T 30 -O "$2" "$1" 2>"$work/fetch.err"; then echo 200; else echo 404; fi
  fi
}
# post URL BODYFILE OUTFILE (the body from a file: a token on a command line is visible to every user)
post() {
  if [ $fetcher = curl ]; then
    # shellcheck disable=SC2086
    curl -sS $curl_pin --connect-timeout 10 --max-time 30 -o "$3" -w '%{http_code}' -H 'content-type: application/json' --data-binary "@$2" "$1" 2>"$work/fetch.err" || true
  else
    if wget -q -T 30 -O "$3" --header='content-type: application/json' --post-file="$2" "$1" 2>"$work/fetch.err"; then echo 200; else echo 401; fi
  fi
}

code=$(fetch "$url/api/v1/health" "$work/health")
case $code in
  200) ;;
  000) die "cannot reach the hub at $url ($(head -c 300 "$work/fetch.err" | tr '\n' ' '))" ;;
  *) die "the hub at $url is not healthy (HTTP $code: $(head -c 300 "$work/health"))" ;;
esac

if [ -z "$enrolled" ]; then
  (umask 077; printf '{"token":"%s"}' "$token" > "$work/check.json")
  code=$(post "$url/api/v1/enrollment-tokens/check" "$work/check.json" "$work/check")
  case $code in
    200) ;;
    401) die "the hub refused the token: $(sed -n 's/.*"message": *"\([^"]*\)".*/\1/p' "$work/check")" ;;
    *) die "the hub could not check the token (HTTP $code: $(head -c 300 "$work/check"))" ;;
  esac
fi

if [ -z "$version" ]; then die "the hub holds no agent build (on the hub: npm run package:agent), or pass --version"; fi
printf '%s' "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$' || die "--version: not a version: $version"
name=tether-agent-$version-linux-$arch
if [ -x "$PREFIX/$version/bin/tether-agent" ] && (cd "$PREFIX/$version" && sha256sum -c --quiet --strict MANIFEST.sha256 >/dev/null 2>&1); then
  say "agent $version is already unpacked in $PREFIX/$version and intact"
else
  say "downloading $name.tar.gz from $url"
  code=$(fetch "$url/dl/agent/$name.tar.gz.sha256" "$work/sum")
  case $code in
    200) ;;
    404) die "the hub holds no agent $version for $arch (linux-$arch)" ;;
    409) die "the hub refuses $name.tar.gz: $(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$work/sum"); nothing was installed" ;;
    *) die "downloading $name.tar.gz.sha256 failed (HTTP $code)" ;;
  esac
  code=$(fetch "$url/dl/agent/$name.tar.gz" "$work/$name.tar.gz")
  [ "$code" = 200 ] || die "downloading $name.tar.gz failed (HTTP $code)"
  want=$(cut -d ' ' -f 1 "$work/sum" | head -n 1)
  printf '%s' "$want" | grep -Eq '^[0-9a-f]{64}$' || die "the hub sent no SHA-256 for $name.tar.gz"
  got=$(sha256sum "$work/$name.tar.gz" | cut -d ' ' -f 1)
  [ "$got" = "$want" ] || die "$name.tar.gz is damaged or tampered with: SHA-256 $got, the hub says $want; nothing was installed"
  mkdir -p "$work/x"
  tar -xzf "$work/$name.tar.gz" -C "$work/x" --no-same-owner || die "$name.tar.gz does not unpack"
  [ -f "$work/x/$name/MANIFEST.sha256" ] || die "$name.tar.gz holds no $name/MANIFEST.sha256"
  (cd "$work/x/$name" && sha256sum -c --quiet --strict MANIFEST.sha256 >"$work/manifest.out" 2>&1) || die "$name: files differ from its manifest: $(head -c 300 "$work/manifest.out")"
  [ "$(cat "$work/x/$name/VERSION")" = "$version" ] || die "$name.tar.gz holds version $(cat "$work/x/$name/VERSION"), not $version"
  mkdir -p "$PREFIX"
  chmod 0755 "$PREFIX"
  rm -rf "$PREFIX/.partial-$version"
  mv "$work/x/$name" "$PREFIX/.partial-$version"
  chown -R 0:0 "$PREFIX/.partial-$version"
  rm -rf "$PREFIX/$version"
  mv "$PREFIX/.partial-$version" "$PREFIX/$version"
fi

# --- configuration ---------------------------------------------------------------------------
mkdir -p "$ETC"
chmod 0755 "$ETC"
{
  echo "# Written by the Tether installer. This file is the agent's capability lock: the hub cannot"
  echo "# change it. Edit it here (as root) and restart: systemctl restart tether-agent"
  echo "hub = \"$url\""
  [ -z "$fingerprint" ] || echo "hub_fingerprint = \"$fingerprint\""
  echo "state = \"$STATE\""
  echo "token_file = \"$STATE/enroll.token\""
  echo "capabilities = [$caps_toml]"
  echo "auto_update = $auto_update"
  [ -z "$roots_toml" ] || echo "file_roots = [$roots_toml]"
  if [ -n "$cpu$memory$io_read$io_write" ]; then
    echo ""
    echo "[limits]"
    [ -z "$cpu" ] || echo "cpu = \"$cpu\""
    [ -z "$memory" ] || echo "memory = \"$memory\""
    [ -z "$io_read" ] || echo "io_read = \"$io_read\""
    [ -z "$io_write" ] || echo "io_write = \"$io_write\""
  fi
} > "$work/agent.toml"
# The unit and the drop-in come from the agent itself: one reading of agent.toml for both.
tether="$PREFIX/$version/bin/tether"
"$tether" agent-unit --config "$work/agent.toml" --prefix "$PREFIX" > "$work/unit" 2>"$work/unit.err" || die "the configuration is refused: $(cat "$work/unit.err")"
"$tether" agent-unit --config "$work/agent.toml" --part limits > "$work/limits" 2>"$work/unit.err" || die "the limits are refused: $(cat "$work/unit.err")"
sed -i "s#--config $work/agent.toml#--config $ETC/agent.toml#; s#from $work/agent.toml#from $ETC/agent.toml#" "$work/unit"

# --- install ---------------------------------------------------------------------------------
if grep -q '^User=tether-agent$' "$work/unit" && ! getent passwd "$AGENT_USER" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir "$STATE" --shell /usr/sbin/nologin "$AGENT_USER" \
    || die "cannot create the system user $AGENT_USER"
fi
install -d -m 0700 "$STATE"
if [ -z "$enrolled" ]; then
  umask 077
  printf '%s\n' "$token" > "$STATE/enroll.token.new"
  mv "$STATE/enroll.token.new" "$STATE/enroll.token"
  umask 022
elif [ -n "$token" ]; then
  say "this host is already enrolled as $enrolled: the token is not used (to enroll it afresh: --uninstall --purge, then install)"
fi
rm -f "$STATE/status.json"
install -m 0644 "$work/agent.toml" "$ETC/agent.toml"
install -m 0644 "$work/unit" "$UNIT_FILE"
if [ -s "$work/limits" ]; then
  install -d -m 0755 "$DROPIN_DIR"
  install -m 0644 "$work/limits" "$DROPIN_DIR/limits.conf"
else
  rm -f "$DROPIN_DIR/limits.conf"
  rmdir "$DROPIN_DIR" 2>/dev/null || true
fi
ln -sfn "$version" "$PREFIX/.current.new"
mv -T "$PREFIX/.current.new" "$PREFIX/current"
# Self-update (--auto-update): the agent writes new versions, update.json and the link beside its own
# version; an unprivileged agent gets the prefix itself, never the versions install.sh put there.
if $auto_update && grep -q '^User=tether-agent$' "$work/unit"; then chown "$AGENT_USER:$AGENT_USER" "$PREFIX"; else chown 0:0 "$PREFIX"; fi
rm -f "$PREFIX/update.json"
systemctl daemon-reload
systemctl enable "$UNIT" >/dev/null 2>&1 || die "systemctl enable $UNIT failed"
systemctl restart "$UNIT" || die "systemctl restart $UNIT failed: $(systemctl status --no-pager $UNIT 2>&1 | tail -n 5)"

# --- online ----------------------------------------------------------------------------------
say "agent $version started ($(sed -n 's/^# Profile: \([a-z]*\).*/\1/p' "$UNIT_FILE") profile); waiting for it to come online"
i=0
while [ "$i" -lt $((timeout * 5)) ]; do
  pid=$(systemctl show -p MainPID --value "$UNIT" 2>/dev/null || echo 0)
  if [ -f "$STATE/status.json" ] && grep -q '"state":"online"' "$STATE/status.json" && grep -q "\"pid\":$pid," "$STATE/status.json"; then
    id=$(sed -n 's/.*"agentId":"\([^"]*\)".*/\1/p' "$STATE/status.json")
    say "online: host $id at $url (agent $version, capabilities: $(echo "$caps_toml" | tr -d '"'))"
    exit 0
  fi
  if [ "$(systemctl is-active "$UNIT" 2>/dev/null)" = failed ]; then break; fi
  sleep 0.2
  i=$((i + 1))
done
printf 'tether-install: error: the agent did not come online within %ss; its log:\n' "$timeout" >&2
journalctl -u "$UNIT" --no-pager -n 15 -o cat >&2 2>/dev/null || true
exit 1
