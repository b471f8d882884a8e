#!/usr/bin/env bash
# Installs what netns-fixture's tests and examples use on Debian/Ubuntu:
# iproute2 and nftables (to inspect labs; the library itself needs neither),
# tcpdump (the tests read capture files with it), libpcap-dev (tcpdump filter
# compilation), iptables (rules under test), python3 (web servers in examples),
# chromium (a test renders the failure report page headless).
set -euo pipefail
packages=(build-essential pkg-config iproute2 nftables iptables tcpdump libpcap-dev python3 iputils-ping curl sudo chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
  echo "Rust installed: run 'source \$HOME/.cargo/env' or open a new shell."
fi
