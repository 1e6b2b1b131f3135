#!/usr/bin/env bash
# The recipe of the fleet's host image: a minimal Debian with systemd as PID 1, cron and D-Bus.
# setup.sh hashes THIS FILE to tag the image, so any edit here rebuilds it; keep everything that
# shapes the image in this file and nothing else.
#
# Usage: host-image.sh ROOTFS_DIR MIRROR_URL
set -euo pipefail

rootfs=$1
mirror=$2

suite=bookworm
# iproute2 and procps: tests look at addresses and processes from inside a host like an operator would.
# curl: the agent's one-line install (curl … | sh) is tested on these hosts; no Node.js is installed.
packages=systemd,systemd-sysv,cron,dbus,iproute2,procps,curl

# (A cache of the downloaded .debs saves nothing measurable: the time goes into unpacking.)
debootstrap --variant=minbase "--include=$packages" "$suite" "$rootfs" "$mirror"

# Units that only cost CPU in a test host (timers for apt, fs maintenance, hardware, time sync).
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
            fstrim.timer e2scrub_reap.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-timesyncd.service systemd-networkd-wait-online.service getty@tty1.service \
            console-getty.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
ln -sf /lib/systemd/system/multi-user.target "$rootfs/etc/systemd/system/default.target"

# An empty machine-id makes systemd generate a fresh one at boot: every host gets its own.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

# journald: keep logs in memory and small.
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
cat > "$rootfs/etc/systemd/journald.conf.d/tether-fleet.conf" <<'EOF'
[Journal]
Storage=volatile
RuntimeMaxUse=16M
EOF

# Where the helper mounts the project and the Node binary.
mkdir -p "$rootfs/opt/tether" "$rootfs/var/lib/tether-agent"

# Size: no docs, no apt lists, no cached debs.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
