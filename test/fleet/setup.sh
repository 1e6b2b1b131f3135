#!/usr/bin/env bash
# Prepares this machine for the fleet tests (test/fleet/), idempotently, from a bare Debian 12:
#   - installs Podman + runc (+ debootstrap, iptables) and the engine settings this sandbox needs,
#   - builds the host image once (tag = hash of host-image.sh; rebuilt only when missing),
#   - starts Podman's Docker-compatible API on a unix socket,
#   - removes leftovers (containers, namespaces, bridges) of earlier test runs that crashed,
#   - writes .fleet/env.json and .fleet/env for the tests.
#
# Usage: test/fleet/setup.sh [up|down|status]
#   up      (default) all of the above; fast when everything is already in place
#   down    stops the API service this checkout started and removes every fleet container,
#           namespace and bridge of dead test runs; keeps the installed packages and the image
#   status  prints what is in place
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
state_dir="$root/.fleet"
# Unix socket paths are limited to 108 bytes: keep the socket under /run, one folder per checkout
# so several checkouts on one machine do not stop each other's service.
checkout_id=$(printf '%s' "$root" | sha256sum | cut -c1-8)
run_dir="/run/tether-fleet/$checkout_id"
sock="$run_dir/podman.sock"
image_repo=localhost/tether-fleet-host
recipe_hash=$(sha256sum "$here/host-image.sh" | cut -c1-12)
image="$image_repo:$recipe_hash"

log() { printf '[fleet-setup %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (podman, network namespaces, debootstrap)"

apt_mirror() {
  # The mirror apt is already configured with (deb822 or one-line format).
  local m=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $m && -f /etc/apt/sources.list ]]; then
    m=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [[ -n $m ]] || die "no Debian mirror found in the apt configuration"
  printf '%s\n' "$m"
}

install_packages() {
  local need=()
  command -v podman >/dev/null || need+=(podman)
  command -v runc >/dev/null || need+=(runc)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v iptables >/dev/null || need+=(iptables)
  command -v netavark >/dev/null || [[ -x /usr/lib/podman/netavark ]] || need+=(netavark)
  command -v nsenter >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)
  if ((${#need[@]} == 0)); then
    log "packages: already installed"
    return
  fi
  log "packages: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    podman runc conmon netavark iptables debootstrap util-linux iproute2 >/dev/null
}

configure_engine() {
  # crun refuses this sandbox's hybrid cgroups; runc works. Containers fail with
  # "setrlimit ... Operation not permitted" unless their nofile/nproc limits are at or below the
  # sandbox's own, hence default_ulimits. No systemd/journald on the machine: cgroupfs + file events.
  mkdir -p /etc/containers
  local conf=/etc/containers/containers.conf
  local want
  want=$(cat <<'CONF'
# Written by tether test/fleet/setup.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF
)
  if [[ -f $conf ]] && [[ $(cat "$conf") == "$want" ]]; then
    log "engine: configured"
    return
  fi
  if [[ -f $conf ]] && ! grep -q 'tether test/fleet/setup.sh' "$conf"; then
    cp "$conf" "$conf.before-tether"
    log "engine: kept the previous $conf as $conf.before-tether"
  fi
  printf '%s\n' "$want" > "$conf"
  log "engine: wrote $conf"
}

build_image() {
  if podman image exists "$image"; then
    log "image: $image cached"
    return
  fi
  local mirror tmp t0
  mirror=$(apt_mirror)
  t0=$(date +%s)
  tmp=$(mktemp -d /var/tmp/tether-fleet-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  log "image: building $image (debootstrap from the configured apt mirror)"
  bash "$here/host-image.sh" "$tmp/rootfs" "$mirror" > "$tmp/build.log" 2>&1 \
    || { tail -n 30 "$tmp/build.log" >&2; die "host image build failed"; }
  tar -C "$tmp/rootfs" -c . | podman import --quiet \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change "LABEL tether.fleet.recipe=$recipe_hash" \
    --message "tether fleet host, recipe $recipe_hash" - "$image" >/dev/null
  rm -rf "$tmp"
  trap - EXIT
  log "image: built $image in $(( $(date +%s) - t0 )) s"
  # Older recipes' images are dead weight (~250 MB each); drop those no container uses, once they
  # are a day old: several checkouts of different recipes (worktrees) share this machine's images.
  local old created
  for old in $(podman images --filter "reference=$image_repo" --format '{{.Repository}}:{{.Tag}}'); do
    [[ $old == "$image" ]] && continue
    created=$(date -d "$(podman image inspect -f '{{.Created}}' "$old" 2>/dev/null | cut -d ' ' -f 1,2)" +%s 2>/dev/null || echo 0)
    (( $(date +%s) - created > 86400 )) || continue
    podman rmi "$old" >/dev/null 2>&1 || true
  done
}

pid_alive() { [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null; }

clean_stale() {
  # Fleet containers carry the test process's pid in a label; a dead pid means a crashed run.
  local id pid n=0
  while read -r id pid; do
    [[ -n $id ]] || continue
    if ! pid_alive "$pid"; then
      podman rm -f -t 0 "$id" >/dev/null 2>&1 || true
      n=$((n + 1))
    fi
  done < <(podman ps -a --filter label=tether.fleet=1 --format '{{.ID}} {{index .Labels "tether.fleet.pid"}}' 2>/dev/null || true)
  # Namespace mode: namespaces tft<pid>-<n>, bridges tfbr<pid>, veths tfv<pid>-<n>.
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tft[0-9]+-' || true); do
    pid=${ns#tft}; pid=${pid%%-*}
    if ! pid_alive "$pid"; then
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns delete "$ns" 2>/dev/null || true
      n=$((n + 1))
    fi
  done
  local link
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^tf(br|v)[0-9]+' || true); do
    pid=${link#tfbr}; pid=${pid#tfv}; pid=${pid%%-*}
    if ! pid_alive "$pid"; then
      ip link delete "$link" 2>/dev/null || true
      n=$((n + 1))
    fi
  done
  log "cleanup: removed $n leftover(s) of earlier runs"
}

service_up() {
  mkdir -p "$run_dir"
  if [[ -f $run_dir/podman.pid ]] && pid_alive "$(cat "$run_dir/podman.pid")" \
     && curl -fsS --max-time 5 --unix-socket "$sock" http://d/v1.41/_ping >/dev/null 2>&1; then
    log "api: already serving on $sock"
    return
  fi
  rm -f "$sock"
  # setsid: the service must outlive this script (and CI's step) until `setup.sh down`.
  # 9>&-: it must not inherit the setup lock, or the next setup.sh waits forever.
  setsid podman system service --time=0 "unix://$sock" > "$run_dir/podman.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$run_dir/podman.pid"
  for _ in $(seq 1 100); do
    if curl -fsS --max-time 2 --unix-socket "$sock" http://d/v1.41/_ping >/dev/null 2>&1; then
      log "api: serving the Docker Engine API on $sock (pid $(cat "$run_dir/podman.pid"))"
      return
    fi
    sleep 0.1
  done
  cat "$run_dir/podman.log" >&2 || true
  die "podman system service did not answer on $sock"
}

service_down() {
  if [[ -f $run_dir/podman.pid ]]; then
    local pid
    pid=$(cat "$run_dir/podman.pid")
    if pid_alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
      if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
      log "api: stopped (pid $pid)"
    fi
    rm -f "$run_dir/podman.pid" "$sock"
  fi
}

write_env() {
  mkdir -p "$state_dir"
  local node
  node=$(command -v node || true)
  cat > "$state_dir/env.json" <<EOF
{
  "image": "$image",
  "dockerHost": "unix://$sock",
  "socket": "$sock",
  "node": "$node",
  "recipe": "$recipe_hash"
}
EOF
  cat > "$state_dir/env" <<EOF
TETHER_FLEET_IMAGE=$image
DOCKER_HOST=unix://$sock
EOF
}

smoke_test() {
  # One throwaway container proves the engine runs containers here (runtime, cgroups, ulimits).
  local out
  out=$(podman run --rm --network none --label tether.fleet=1 --label "tether.fleet.pid=$$" \
        --entrypoint /bin/true "$image" 2>&1) || { printf '%s\n' "$out" >&2; die "podman cannot run a container"; }
}

cmd=${1:-up}
case $cmd in
  up)
    t0=$EPOCHREALTIME
    mkdir -p /run/lock
    exec 9>/run/lock/tether-fleet-setup.lock
    flock 9
    install_packages
    configure_engine
    build_image
    clean_stale
    smoke_test
    service_up
    write_env
    log "ready in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s: image $image, DOCKER_HOST=unix://$sock"
    ;;
  down)
    service_down
    if command -v podman >/dev/null; then clean_stale; fi
    ;;
  status)
    command -v podman >/dev/null && podman --version || echo "podman: not installed"
    command -v podman >/dev/null && { podman image exists "$image" && echo "image: $image" || echo "image: $image missing"; }
    curl -fsS --max-time 2 --unix-socket "$sock" http://d/v1.41/_ping >/dev/null 2>&1 \
      && echo "api: unix://$sock" || echo "api: not running"
    ;;
  *)
    die "unknown command: $cmd (up|down|status)"
    ;;
esac
