#!/bin/bash
# Builds (once) and prints the Debian 12 root the real-systemd test boots
# with systemd-nspawn: debootstrap --variant=minbase from the mirror apt on
# this machine already uses, cached in a fixed directory outside the repo,
# keyed by a hash of the suite, the package list and the setup version
# below (bump it when the setup after debootstrap changes). Built in a
# temporary directory and renamed into place only when complete, under a
# lock, so an interrupted or concurrent run never leaves or uses a half root.
#
#   build-root.sh            prints the root's path (builds it if needed)
#   GPR_TEST_ROOT_CACHE=DIR  cache directory (default /var/cache/go-proxy-rewriter-test)
set -euo pipefail

suite=bookworm
# What the test needs inside: systemd as PID 1 (systemd-sysv), dynamic
# users in getent as on a standard Debian install (libnss-systemd), the bus
# systemctl talks over (dbus), the interception recipe (nftables, iproute2
# for the test addresses), curl for requests, procps for kill/ps, and the
# C++ runtime the bind-mounted node binary links against.
packages=systemd,systemd-sysv,libnss-systemd,dbus,nftables,iproute2,curl,ca-certificates,procps,libstdc++6
setup_version=1
cache=${GPR_TEST_ROOT_CACHE:-/var/cache/go-proxy-rewriter-test}

key=$(printf '%s\n' "$suite" "$packages" "$setup_version" | sha256sum | cut -c1-12)
root=$cache/$suite-$key

[ "$(id -u)" -eq 0 ] || { echo "build-root.sh: needs root (debootstrap)" >&2; exit 1; }
for tool in debootstrap systemd-nspawn; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
		{ echo "build-root.sh: $tool missing: run scripts/ensure-tools.sh" >&2; exit 1; }
done

# The mirror apt uses for $suite: "deb URI SUITE ..." lines and deb822
# .sources stanzas (URIs:/Suites:), first match wins.
mirror() {
	local file
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$file" ] || continue
		awk -v s="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($(i+1) == s) { print $i; exit } ; break } }' "$file"
	done
	for file in /etc/apt/sources.list.d/*.sources; do
		[ -r "$file" ] || continue
		awk -v s="$suite" '
			/^[[:space:]]*$/ { if (t && u && ok) { print u; exit } t = 0; u = ""; ok = 0; next }
			/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") t = 1 }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (t && u && ok) print u }' "$file"
	done
}

if [ ! -x "$root/usr/lib/systemd/systemd" ]; then
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	if [ ! -x "$root/usr/lib/systemd/systemd" ]; then
		url=$(mirror | head -n1)
		[ -n "$url" ] || { echo "build-root.sh: no apt source for $suite in /etc/apt" >&2; exit 1; }
		tmp=$(mktemp -d "$cache/.build-$suite-XXXXXX")
		trap 'rm -rf --one-file-system "$tmp"' EXIT
		echo "build-root.sh: debootstrap $suite from $url into $tmp (minutes, once)" >&2
		start=$SECONDS
		debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$url" >"$cache/.build.log" 2>&1 ||
			{ tail -n 30 "$cache/.build.log" >&2; exit 1; }
		# Boot settings: no login prompt on the console, no network
		# configuration (the container has loopback only).
		chroot "$tmp" systemctl mask console-getty.service getty@.service systemd-networkd.service \
			systemd-resolved.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
			fstrim.timer >/dev/null 2>&1 || true
		echo gpr-test >"$tmp/etc/hostname"
		: >"$tmp/etc/machine-id"
		rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
		echo "build-root.sh: built in $((SECONDS - start)) s" >&2
		# mktemp made it 0700; as / of the container it must be 0755, or
		# no unprivileged (dynamic) user could reach anything in it.
		chmod 0755 "$tmp"
		mv -T "$tmp" "$root"
		trap - EXIT
	fi
fi
echo "$root"
