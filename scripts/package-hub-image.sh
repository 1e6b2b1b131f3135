#!/usr/bin/env bash
# The hub as an OCI image, built by Podman from the hub artifact, with no registry and no base image:
#
#   scripts/package-hub-image.sh [--version V] [--tag NAME] [--save FILE]   (npm run package:hub-image)
#
# tags localhost/tether-hub:<version> (and :latest, or --tag's name) for this machine's architecture;
# --save also writes it as an OCI archive (docker load -i FILE / podman load -i FILE). The image is
# FROM scratch: the hub artifact (scripts/package-hub.mjs, built first when missing) unpacked at
# /opt/tether-hub, and the C runtime it links, copied from this machine's installed Debian packages
# libc6, libgcc-s1 and libstdc++6 (their libraries and copyright files; no docs, locales or gconv).
# It runs as uid 10001 (tether), keeps its state in the volume /var/lib/tether, listens on 8080:
#
#   docker run -d -p 8080:8080 -v tether:/var/lib/tether localhost/tether-hub:<version>
#
# The first admin password is printed in the container's log and written to
# /var/lib/tether/initial-admin-password; TETHER_ADMIN_PASSWORD (-e) sets it instead. Every hub
# option is a TETHER_* variable (-e TETHER_PUBLIC_URL=https://hub.example.com, TETHER_DB=postgres://…).
# Reproducible layers: one timestamp (SOURCE_DATE_EPOCH, else the artifacts' fixed one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
die() { printf 'package-hub-image: %s\n' "$*" >&2; exit 1; }
say() { printf 'package-hub-image: %s\n' "$*" >&2; }

version='' tag='' save=''
while [ $# -gt 0 ]; do
  case $1 in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --save) save=${2:?--save needs a file}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
command -v podman >/dev/null || die "podman not found: apt-get install podman (test/fleet/setup.sh up installs it)"
command -v dpkg >/dev/null || die "dpkg not found: the image's C runtime comes from this machine's Debian packages"
version=${version:-$(node -p "require('$root/package.json').version")}
case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) die "no hub artifact for $(uname -m)" ;;
esac
epoch=${SOURCE_DATE_EPOCH:-1767225600}
name=tether-hub-$version-linux-$arch
artifact=$root/dist/artifacts/$name.tar.gz
node "$root/scripts/package-hub.mjs" --arch "$arch" --version "$version" >&2 || die "scripts/package-hub.mjs failed"
(cd "$(dirname "$artifact")" && sha256sum -c --quiet --strict "$name.tar.gz.sha256") || die "$artifact does not match its .sha256"

t0=$SECONDS
ctx=$(mktemp -d "${TMPDIR:-/tmp}/tether-hub-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
rootfs=$ctx/rootfs
mkdir -p "$rootfs"/{etc,opt,tmp,usr/bin,usr/lib,usr/sbin,usr/local/bin} "$ctx/state"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$ctx/state"
# Debian's merged /usr, as on this machine
for l in bin lib lib64 sbin; do
  if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" "$rootfs/$l"; mkdir -p "$rootfs/$(readlink -f "/$l")"; fi
done
for pkg in libc6 libgcc-s1 libstdc++6; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || die "$pkg is not installed here"
  dpkg -L "$pkg" | while IFS= read -r f; do
    case $f in
      /usr/share/doc/*/copyright) ;;
      /usr/share/*|*/gconv/*|/etc/*|/usr/libexec/*|/usr/bin/*|/usr/sbin/*|/sbin/*|/bin/*) continue ;;
    esac
    if [ -L "$f" ] || [ -f "$f" ]; then
      dir=$(readlink -f "$(dirname "$f")")
      mkdir -p "$rootfs$dir"
      cp -P --preserve=mode "$f" "$rootfs$dir/"
    fi
  done
done
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\ntether:x:10001:10001:Tether hub:/var/lib/tether:/usr/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\ntether:x:10001:\n' > "$rootfs/etc/group"
tar -xzf "$artifact" -C "$rootfs/opt" --no-same-owner
mv "$rootfs/opt/$name" "$rootfs/opt/tether-hub"
# `docker exec CONTAINER tether …`: the command line, on the hub's runtime (there is no shell)
printf '#!/opt/tether-hub/runtime/node\nimport("/opt/tether-hub/lib/tether.mjs");\n' > "$rootfs/usr/local/bin/tether"
chmod 0755 "$rootfs/usr/local/bin/tether"
find "$rootfs" -exec touch -h -d "@$epoch" {} +
cp "$root/packaging/hub-image/Containerfile" "$ctx/Containerfile"

image=localhost/tether-hub:$version
podman build --quiet --format docker --timestamp "$epoch" \
  --label org.opencontainers.image.title="Tether hub" --label org.opencontainers.image.version="$version" \
  -t "$image" -t "${tag:-localhost/tether-hub:latest}" -f "$ctx/Containerfile" "$ctx" >"$ctx/id" || die "podman build failed"
size=$(podman image inspect -f '{{.Size}}' "$image")
say "$image ($(cut -c1-12 "$ctx/id")): $((size / 1000000)) MB in $((SECONDS - t0)) s"
if [ -n "$save" ]; then
  podman save --format oci-archive -o "$save" "$image" || die "podman save failed"
  say "saved $image to $save ($(($(stat -c %s "$save") / 1000000)) MB)"
fi
echo "$image"
