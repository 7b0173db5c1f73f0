# go-proxy-rewriter: shared by intercept-nft.sh and intercept-iptables.sh
# (sourced, not run). Works out what to redirect: the Go proxy hosts, their
# current addresses, and the users never to redirect. Must not change any
# firewall state.
#
# Settings (environment; the intercept unit sets them):
#   GPR_CONFIG        config file to read tls.hosts from
#                     (default /etc/go-proxy-rewriter/config.json)
#   GPR_HOSTS         space-separated host names; overrides tls.hosts
#   GPR_HTTPS_PORT    the proxy's HTTPS port on this host (default 443)
#   GPR_BYPASS_USERS  users never redirected (default go-proxy-rewriter)
#   GPR_NODE          node binary used to read the config (default node)

GPR_CONFIG=${GPR_CONFIG:-/etc/go-proxy-rewriter/config.json}
GPR_HTTPS_PORT=${GPR_HTTPS_PORT:-443}
GPR_BYPASS_USERS=${GPR_BYPASS_USERS:-go-proxy-rewriter}
GPR_NODE=${GPR_NODE:-node}

gpr_die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

case $GPR_HTTPS_PORT in
'' | *[!0-9]*) gpr_die "GPR_HTTPS_PORT must be a port number, got '$GPR_HTTPS_PORT'" ;;
esac

# The Go proxy hosts, one per line: GPR_HOSTS, or tls.hosts from the config
# (read with node, which the proxy needs anyway; no jq dependency).
gpr_hosts() {
	if [ -n "${GPR_HOSTS:-}" ]; then
		printf '%s\n' $GPR_HOSTS
		return
	fi
	[ -r "$GPR_CONFIG" ] || gpr_die "cannot read $GPR_CONFIG (set GPR_CONFIG or GPR_HOSTS)"
	"$GPR_NODE" -e '
		const config = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
		const hosts = config.tls && config.tls.hosts;
		if (!Array.isArray(hosts) || hosts.length === 0) {
			console.error(process.argv[1] + ": tls.hosts is empty");
			process.exit(1);
		}
		console.log(hosts.join("\n"));
	' "$GPR_CONFIG"
}

# Current addresses of the hosts given as arguments, one per line, sorted
# and unique: gpr_addresses 4|6 HOST...  Loopback answers (a hosts-file
# recipe on this host) and IPv4-mapped IPv6 answers are left out.
gpr_addresses() {
	local family=$1 host
	shift
	for host in "$@"; do
		getent "ahostsv$family" "$host" | awk '{ print $1 }' ||
			echo "$(basename "$0"): warning: $host has no IPv$family address" >&2
	done | { grep -Ev '^(127\.|::1$|::ffff:)' || true; } | sort -u
}

# Numeric uids of GPR_BYPASS_USERS that exist, one per line.
gpr_bypass_uids() {
	local user
	for user in $GPR_BYPASS_USERS; do
		if ! id -u "$user" 2>/dev/null; then
			echo "$(basename "$0"): warning: user $user does not exist; not exempted" >&2
		fi
	done
}

# Sets GPR_V4, GPR_V6 (space-separated addresses) and GPR_UIDS, or exits
# when no host has an address (nothing would be intercepted).
gpr_resolve() {
	local hosts
	hosts=$(gpr_hosts)
	# shellcheck disable=SC2086 # host names have no spaces: split on purpose
	GPR_V4=$(gpr_addresses 4 $hosts | paste -sd' ' -)
	# shellcheck disable=SC2086
	GPR_V6=$(gpr_addresses 6 $hosts | paste -sd' ' -)
	GPR_UIDS=$(gpr_bypass_uids | paste -sd' ' -)
	[ -n "$GPR_V4$GPR_V6" ] || gpr_die "no address for any of: $(echo $hosts)"
}
