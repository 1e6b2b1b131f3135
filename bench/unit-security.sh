#!/usr/bin/env bash
# `systemd-analyze security` exposure of the agent's unit in each profile, next to Beszel's agent
# unit, scored offline by the systemd of the fleet's host image (Debian 12, systemd 252).
# Needs test/fleet/setup.sh (the image) and a build. Writes bench/results/unit-security.md.
#
#   npm run build && bash bench/unit-security.sh
set -euo pipefail
cd "$(dirname "$0")/.."
image=$(node -e "console.log(require('./.fleet/env.json').image)")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf 'hub = "http://hub:8080"\n' > "$work/metrics.toml"
printf 'hub = "http://hub:8080"\ncapabilities = ["metrics", "docker", "systemd", "process", "cron"]\n' > "$work/confined.toml"
printf 'hub = "http://hub:8080"\ncapabilities = ["metrics", "exec", "files", "terminal", "systemd"]\nfile_roots = ["/srv"]\n' > "$work/full.toml"
for p in metrics confined full; do
  sh packages/cli/bin/tether agent-unit --config "$work/$p.toml" > "$work/tether-$p.service"
done
# The hub's unit as install.sh --hub writes it
sed -e 's#{{PREFIX}}#/opt/tether-hub#g' -e 's#{{ETC}}#/etc/tether#g' packaging/hub/share/tether-hub.service > "$work/tether-hub.service"
# Beszel's agent unit as its install-agent.sh writes it (henrygd/beszel, supplemental/scripts), settings only.
cat > "$work/beszel-agent.service" <<'EOF'
[Unit]
Description=Beszel Agent Service
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/opt/beszel-agent/beszel-agent
User=beszel
Restart=on-failure
RestartSec=5
StateDirectory=beszel-agent
KeyringMode=private
LockPersonality=yes
ProtectClock=yes
ProtectHome=read-only
ProtectHostname=yes
ProtectKernelLogs=yes
ProtectSystem=strict
RemoveIPC=yes
RestrictSUIDSGID=true

[Install]
WantedBy=multi-user.target
EOF

podman run --rm -v "$work:/u:ro" "$image" sh -c '
  systemd --version | head -n 1
  for f in tether-metrics tether-confined tether-full beszel-agent tether-hub; do
    score=$(systemd-analyze security --offline=yes --no-pager /u/$f.service 2>/dev/null | sed -n "s/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p")
    echo "$f $score"
  done' > "$work/scores"

{
  echo "# Agent and hub units: systemd-analyze security"
  echo
  echo "Exposure scores (0 = locked down, 10 = unprotected) of the agent's unit as \`tether agent-unit\`"
  echo "derives it from agent.toml, next to Beszel's agent unit, scored offline by $(head -n 1 "$work/scores" | cut -d ' ' -f 1-2)"
  echo "in the fleet's Debian 12 host image. Reproduce: \`npm run build && bash bench/unit-security.sh\` ($(date -u +%Y-%m-%d))."
  echo
  echo "| unit | capabilities | exposure |"
  echo "|---|---|---|"
  tail -n +2 "$work/scores" | while read -r name score level; do
    case $name in
      tether-metrics) caps='metrics (the default)' ;;
      tether-confined) caps='metrics, docker, systemd, process, cron' ;;
      tether-full) caps='metrics, exec, files, terminal, systemd' ;;
      beszel-agent) caps='(Beszel: monitoring only)' ;;
      tether-hub) caps='the hub (install.sh --hub)' ;;
    esac
    echo "| $name | $caps | **$score** $level |"
  done
  echo
  echo "- **metrics**: the unprivileged \`tether-agent\` user, an empty capability bounding set, no new"
  echo "  privileges, a read-only system and home, private /tmp, the system-call filter"
  echo "  \`@system-service\`, address families limited to IP, unix and netlink, devices closed but the"
  echo "  NVIDIA ones the GPU collector opens. It is what \`install.sh\` installs unless \`--allow\` says more."
  echo "- **confined**: root, because Docker's socket, systemctl, crontabs and other users' processes"
  echo "  are root's, but with only the Linux capabilities those use and a read-only system outside"
  echo "  the paths they write (\`ReadWritePaths=\`)."
  echo "- **full** (exec or terminal): root without a file-system sandbox. Commands and shells are the"
  echo "  operator's and must see the real system (package installs, sudo, /tmp); what stays is the"
  echo "  kernel's protection (modules, logs, clock). Choosing exec or terminal is the whole-host trust"
  echo "  decision the capability lock makes explicit; the unit says so in its header."
  echo
  echo "The units, as written:"
  for p in metrics confined full; do
    echo
    echo "<details><summary>tether-$p</summary>"
    echo
    echo '```ini'
    grep -v '^#' "$work/tether-$p.service" | sed "s#$work/$p.toml#/etc/tether/agent.toml#"
    echo '```'
    echo
    echo "</details>"
  done
} > bench/results/unit-security.md
cat "$work/scores"
