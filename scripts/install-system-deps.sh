#!/usr/bin/env bash
# Debian packages the tests use (real Linux peers for the TAP tests: ping, arping, socat, curl, nc, ab,
# hping3, tcpdump, tshark, ss, iperf3, wrk, ethtool; tmux for slabnet top, dig, python3 for raw frames). Root only.
set -euo pipefail
need=()
for pkg in iproute2 iputils-ping iputils-arping socat tcpdump tshark tmux bind9-dnsutils python3 curl netcat-openbsd apache2-utils hping3 coreutils iperf3 wrk ethtool; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
