#!/bin/bash
# go-proxy-rewriter: the client-side recipe, run by
# go-proxy-rewriter-client-env.service. Points the go command at the proxy
# with GOPROXY instead of intercepting its traffic (no CA trust needed for
# plain HTTP):
#   1. writes GPR_PROFILE (default /etc/profile.d/goproxy.sh) exporting
#      GOPROXY for login shells;
#   2. if GPR_GO_USER is set, runs `go env -w GOPROXY=...` as that user, for
#      what does not read profile.d (services, cron, IDEs).
# Settings (environment):
#   GPR_GOPROXY   the value (default http://127.0.0.1:80,direct: the proxy's
#                 HTTP socket; ",direct" lets go fetch from the origin when
#                 the proxy answers 404/410, e.g. onUpstreamFailure=notfound)
#   GPR_GO_USER   user to run `go env -w` for (default: none)
#   GPR_GO        go binary (default: go in that user's PATH as set here,
#                 /usr/local/go/bin first)
#   GPR_PROFILE   file to write
# Must not: touch other profile files, or anything when a setting is invalid.
set -euo pipefail

value=${GPR_GOPROXY:-http://127.0.0.1:80,direct}
profile=${GPR_PROFILE:-/etc/profile.d/goproxy.sh}
user=${GPR_GO_USER:-}
go=${GPR_GO:-go}

# A GOPROXY list is URLs and the words direct/off joined by , or |; refuse
# anything a shell would interpret before writing it into a sourced file.
case $value in
'' | *[!A-Za-z0-9:/.,_\|@%+~=-]*)
	echo "$(basename "$0"): GPR_GOPROXY has characters a GOPROXY list cannot: '$value'" >&2
	exit 1
	;;
esac

umask 022
tmp=$(mktemp "$profile.XXXXXX")
trap 'rm -f "$tmp"' EXIT
printf '# Written by go-proxy-rewriter-client-env.service (client-env.sh); change it there.\nexport GOPROXY='"'"'%s'"'"'\n' "$value" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$profile"
trap - EXIT

if [ -n "$user" ]; then
	id -u "$user" >/dev/null || exit 1
	# runuser (util-linux) sets HOME to the user's, where go env -w writes
	# ($HOME/.config/go/env).
	runuser -u "$user" -- env PATH="/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin" \
		"$go" env -w "GOPROXY=$value"
fi
