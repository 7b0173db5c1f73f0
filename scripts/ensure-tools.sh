#!/usr/bin/env bash
# Installs the system tools the tests (and, with --bench, the benchmarks) use,
# when they are missing. Idempotent and quick when everything is present.
# Needs root for apt-get; without it, prints the command to run and fails.
set -euo pipefail

# command -> Debian package
declare -A tools=(
  [go]=golang-go
  [systemd-socket-activate]=systemd
  [systemd-notify]=systemd
  [systemd-analyze]=systemd
  [ip]=iproute2
  [iptables]=iptables
  [nft]=nftables
  [openssl]=openssl
  [curl]=curl
  [python3]=python3
  [sysctl]=procps
  [setpriv]=util-linux
  # test/integration/workers-rollback.test.ts: leaves one worker no file descriptor
  [prlimit]=util-linux
  # test/system/: Debian 12 booted with systemd-nspawn on a debootstrap root
  [systemd-nspawn]=systemd-container
  [debootstrap]=debootstrap
  [nsenter]=util-linux
  # promtool checks the /metrics exposition (test/integration/metrics-promtool.test.ts);
  # Debian ships it only in the prometheus package (about 19 MB to download).
  [promtool]=prometheus
)
if [[ "${1:-}" == "--bench" ]]; then
  tools=([nginx]=nginx-light [openssl]=openssl [wrk]=wrk [go]=golang-go)
fi

missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || missing+=("${tools[$cmd]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  echo "missing tools; run as root: apt-get update && apt-get install -y ${packages[*]}" >&2
  exit 1
fi
echo "installing: ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The prometheus package also installs and starts a Prometheus server; the tests
# need only its promtool.
if [[ " ${packages[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
