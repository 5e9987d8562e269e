#!/usr/bin/env bash
# Captures a real offer (before and after ICE gathering), an answer to it, and an answer to the
# captured Chromium offer from Debian's headless Firefox ESR (apt-get install firefox-esr) into
# the Fixtures folder. Runs as root in a new network namespace whose only device is loopback,
# so nothing can leave the machine.
#
# Firefox 153 gathers no UDP host candidate on 127.0.0.1, even with
# media.peerconnection.ice.loopback, and stalls gathering when it finds no default route. So
# loopback also gets 192.0.2.1 (TEST-NET-1) and the default route, from that address: the host
# candidates are 192.0.2.1 on the namespace's `lo`, and a packet to any other address is dropped
# (no forwarding, no other device).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec unshare --net bash -c '
  ip link set lo up
  ip addr add 192.0.2.1/32 dev lo
  ip route add default dev lo src 192.0.2.1
  exec python3 "$1/capture-firefox.py"' capture "$here"
