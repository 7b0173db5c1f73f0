#!/bin/bash
# go-proxy-rewriter: applies or removes the nftables interception
# (intercept.nft, beside this script) for go-proxy-rewriter-intercept.service.
#   intercept-nft.sh apply    load the table with the hosts' current addresses
#                             (run again to re-resolve: `systemctl reload`)
#   intercept-nft.sh remove   delete the table
#   intercept-nft.sh print    show what apply would load, change nothing
# Settings: see intercept-common.sh. Must not touch any other table.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=intercept-common.sh
. "$here/intercept-common.sh"

NFT=${NFT:-nft}
TABLE='inet go_proxy_rewriter'

# One nft transaction: the table from intercept.nft plus its set elements,
# so a re-apply never leaves a moment without (or with half) the rules.
transaction() {
	cat "$here/intercept.nft"
	[ -z "$GPR_V4" ] || echo "add element $TABLE goproxy_v4 { ${GPR_V4// /, } }"
	[ -z "$GPR_V6" ] || echo "add element $TABLE goproxy_v6 { ${GPR_V6// /, } }"
	[ -z "$GPR_UIDS" ] || echo "add element $TABLE bypass_uids { ${GPR_UIDS// /, } }"
}

case ${1:-} in
apply)
	gpr_resolve
	transaction | "$NFT" -D "https_port=$GPR_HTTPS_PORT" -f -
	;;
print)
	gpr_resolve
	transaction
	;;
remove)
	if "$NFT" list table $TABLE >/dev/null 2>&1; then
		"$NFT" delete table $TABLE
	fi
	;;
*)
	echo "usage: $0 apply|remove|print" >&2
	exit 2
	;;
esac
