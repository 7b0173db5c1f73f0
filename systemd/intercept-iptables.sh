#!/bin/bash
# go-proxy-rewriter: the iptables/ip6tables equivalent of intercept.nft, for
# hosts whose firewall is managed with iptables (or iptables-nft). Same rules:
# redirect TCP 443 to the Go proxy hosts' addresses to the local proxy,
# except for the users in GPR_BYPASS_USERS (see intercept.nft for why a uid
# match, and for the shared-address caveat).
#   intercept-iptables.sh apply    (re)build the chains with current addresses
#   intercept-iptables.sh remove   delete the chains and their jumps
#   intercept-iptables.sh print    show the iptables-restore input, change nothing
# To use it instead of nftables, point go-proxy-rewriter-intercept.service's
# ExecStart=/ExecReload=/ExecStop= at this script.
# Settings: see intercept-common.sh. Must not touch other chains than
# GPR_OUTPUT and GPR_PREROUTING in the nat table, and their jumps.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=intercept-common.sh
. "$here/intercept-common.sh"

IPTABLES=${IPTABLES:-iptables}
IP6TABLES=${IP6TABLES:-ip6tables}

# iptables-restore --noflush input for one family: declaring a chain flushes
# it, and the whole input is committed at once, so a re-apply is atomic.
rules() {
	local addresses=$1 uid addr
	echo '*nat'
	echo ':GPR_OUTPUT - [0:0]'
	echo ':GPR_PREROUTING - [0:0]'
	for uid in $GPR_UIDS; do
		echo "-A GPR_OUTPUT -m owner --uid-owner $uid -j RETURN"
	done
	for addr in $addresses; do
		echo "-A GPR_OUTPUT -d $addr -p tcp --dport 443 -j REDIRECT --to-ports $GPR_HTTPS_PORT"
		echo "-A GPR_PREROUTING -d $addr -p tcp --dport 443 -j REDIRECT --to-ports $GPR_HTTPS_PORT"
	done
	echo 'COMMIT'
}

jump() {
	local tool=$1 action=$2 chain=$3 target=$4
	case $action in
	add) "$tool" -w -t nat -C "$chain" -j "$target" 2>/dev/null || "$tool" -w -t nat -I "$chain" -j "$target" ;;
	del) while "$tool" -w -t nat -D "$chain" -j "$target" 2>/dev/null; do :; done ;;
	esac
}

case ${1:-} in
apply)
	gpr_resolve
	rules "$GPR_V4" | "$IPTABLES-restore" -w --noflush
	rules "$GPR_V6" | "$IP6TABLES-restore" -w --noflush
	for tool in "$IPTABLES" "$IP6TABLES"; do
		jump "$tool" add OUTPUT GPR_OUTPUT
		jump "$tool" add PREROUTING GPR_PREROUTING
	done
	;;
print)
	gpr_resolve
	echo "# $IPTABLES-restore --noflush"
	rules "$GPR_V4"
	echo "# $IP6TABLES-restore --noflush"
	rules "$GPR_V6"
	;;
remove)
	for tool in "$IPTABLES" "$IP6TABLES"; do
		jump "$tool" del OUTPUT GPR_OUTPUT
		jump "$tool" del PREROUTING GPR_PREROUTING
		for chain in GPR_OUTPUT GPR_PREROUTING; do
			if "$tool" -w -t nat -F "$chain" 2>/dev/null; then "$tool" -w -t nat -X "$chain"; fi
		done
	done
	;;
*)
	echo "usage: $0 apply|remove|print" >&2
	exit 2
	;;
esac
