#!/bin/bash
# go-proxy-rewriter: installs the systemd units, the recipe scripts and the
# example config. The application itself (dist/, node_modules/) is deployed
# to the app directory separately.
#
#   install.sh [--prefix DIR] [--app-dir DIR] [--node PATH]
#   DESTDIR=/tmp/root install.sh ...   stage into a root (packaging, tests)
#
#   --prefix DIR   scripts go to DIR/lib/go-proxy-rewriter (default /usr/local)
#   --app-dir DIR  where dist/src/main.js lives (default /opt/go-proxy-rewriter)
#   --node PATH    the node binary for ExecStart= and ExecReload= (default /usr/bin/node)
#
# Installs:
#   /etc/systemd/system/go-proxy-rewriter*.{service,socket}   (replaced)
#   PREFIX/lib/go-proxy-rewriter/*.sh, intercept.nft, recipes (replaced)
#   /etc/go-proxy-rewriter/config.json           (only if absent: never
#                                                 overwrites a real config)
# Then `systemctl daemon-reload`, only when systemd runs this system (PID 1)
# and DESTDIR is empty. It enables and starts nothing: see README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=/usr/local
app_dir=/opt/go-proxy-rewriter
node=/usr/bin/node
destdir=${DESTDIR:-}

# The header comment above, without the '# '.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
	case $1 in
	--prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--app-dir) app_dir=${2:?--app-dir needs a directory}; shift 2 ;;
	--app-dir=*) app_dir=${1#*=}; shift ;;
	--node) node=${2:?--node needs a path}; shift 2 ;;
	--node=*) node=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

# These end up in unit files through sed: absolute, and nothing sed or
# systemd would read specially.
for path in "$prefix" "$app_dir" "$node"; do
	case $path in
	/*) ;;
	*) echo "install.sh: '$path' must be an absolute path" >&2; exit 2 ;;
	esac
	case $path in
	*[!A-Za-z0-9/._+-]*) echo "install.sh: '$path' has characters unit files cannot take as they are" >&2; exit 2 ;;
	esac
done

libdir=$prefix/lib/go-proxy-rewriter
unitdir=/etc/systemd/system
confdir=/etc/go-proxy-rewriter

units=(
	go-proxy-rewriter.service
	go-proxy-rewriter-https.socket
	go-proxy-rewriter-http.socket
	go-proxy-rewriter-admin.socket
	go-proxy-rewriter-intercept.service
	go-proxy-rewriter-client-env.service
)
scripts=(intercept-nft.sh intercept-iptables.sh client-env.sh)
data=(intercept.nft intercept-common.sh go-proxy-rewriter.sysusers hosts.example dnsmasq-go-proxy.conf config.json README.md)

install -d -m 0755 "$destdir$unitdir" "$destdir$libdir" "$destdir$confdir"

for unit in "${units[@]}"; do
	sed -e "s#/usr/local/lib/go-proxy-rewriter/#$libdir/#g" \
		-e "s#/opt/go-proxy-rewriter/#$app_dir/#g" \
		-e "s#^\(Exec[A-Za-z]*=\)/usr/bin/node #\1$node #" \
		"$here/$unit" >"$destdir$unitdir/$unit.tmp"
	chmod 0644 "$destdir$unitdir/$unit.tmp"
	mv -f "$destdir$unitdir/$unit.tmp" "$destdir$unitdir/$unit"
done
for file in "${scripts[@]}"; do install -m 0755 "$here/$file" "$destdir$libdir/$file"; done
for file in "${data[@]}"; do install -m 0644 "$here/$file" "$destdir$libdir/$file"; done

if [ -e "$destdir$confdir/config.json" ]; then
	echo "install.sh: keeping the existing $confdir/config.json (example: $libdir/config.json)"
else
	install -m 0644 "$here/config.json" "$destdir$confdir/config.json"
fi

# /run/systemd/system exists exactly when systemd is PID 1 (sd_booted(3)).
if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
else
	echo "install.sh: not running systemctl daemon-reload (DESTDIR set or systemd is not PID 1)"
fi

cat <<NEXT
Installed. Next:
  1. edit $confdir/config.json (upstream, tls.hosts)
  2. create the CA and trust it (see $libdir/README.md)
  3. systemctl enable --now go-proxy-rewriter.service   (also enables its sockets)
NEXT
