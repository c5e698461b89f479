#!/bin/sh
# The server side of deploy/node/install.sh, run as root with the unpacked bundle's folder:
# replaces /opt/x0t, installs the unit and /etc/x0t/<NODE_ID>.env (0600), starts the service.
# X0T_INSTALL_ROOT (tests) installs under that folder and leaves systemctl alone.
set -eu
src=$1
root=${X0T_INSTALL_ROOT:-}
node_id=$(sed -n 's/^NODE_ID=//p' "$src/node.env" | tail -n 1)
[ -n "$node_id" ] || { echo "remote-install.sh: node.env has no NODE_ID" >&2; exit 2; }
umask 022

install -d -m 0755 "$root/opt" "$root/etc/x0t" "$root/etc/systemd/system"
rm -rf "$root/opt/x0t.new" "$root/opt/x0t.old"
cp -R "$src/release" "$root/opt/x0t.new"
chmod -R u=rwX,go=rX "$root/opt/x0t.new"
[ "$(id -u)" = 0 ] && chown -R root:root "$root/opt/x0t.new"
[ -d "$root/opt/x0t" ] && mv "$root/opt/x0t" "$root/opt/x0t.old"
mv "$root/opt/x0t.new" "$root/opt/x0t"
rm -rf "$root/opt/x0t.old"

install -m 0600 "$src/node.env" "$root/etc/x0t/$node_id.env"
install -m 0644 "$src/x0t-node@.service" "$root/etc/systemd/system/x0t-node@.service"
[ "$(id -u)" = 0 ] && chown root:root "$root/etc/x0t/$node_id.env"

if [ -n "$root" ]; then
  echo "remote-install.sh: installed under $root (X0T_INSTALL_ROOT): systemctl not run"
  exit 0
fi
systemctl daemon-reload
systemctl enable "x0t-node@$node_id.service"
systemctl restart "x0t-node@$node_id.service"
systemctl --no-pager --lines=5 status "x0t-node@$node_id.service" || true
