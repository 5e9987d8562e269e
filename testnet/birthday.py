#!/usr/bin/env python3
"""Birthday hole punching between an apdm (per-destination mapping) and an eim-apdf NAT
(issue 18, item 5): a feasibility measurement with plain UDP sockets, outside meshnode.

RFC 4787 predicts no direct path between these two: the hard side's NAT gives each destination
a new random public port, and the easy side's NAT lets in only what comes from an address and
port it has sent to. The birthday method (as Tailscale describes it) gets one anyway: the hard
side opens N sockets and sends from each to the easy side's public address, so its NAT holds N
random ports that each let that one address and port in; the easy side sends probes from its one
(endpoint-independent) port to random ports of the hard side's public address. A probe that hits
one of the N ports goes through (and opens the easy side's NAT for that port on its way out), so
the hard side's reply from that socket comes back: a direct path.

Modes (each runs inside a peer's namespace; `testnet/birthday` drives them):
  hard EASY_IP EASY_PORT N SECONDS      open N sockets, send to EASY, print "ready", wait for a probe
  easy HARD_IP PORT MAX RATE SECONDS    from PORT, probe random ports of HARD_IP (at most MAX, RATE/s)
Each prints one JSON line with the outcome. Ports probed: 1024-65535 (where Linux puts a random
SNAT port for a source port above 1023).
"""
import json
import os
import random
import select
import socket
import sys
import time


def hard(easy_ip, easy_port, count, seconds):
    sockets = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        s.setblocking(False)
        sockets.append(s)
    # Two sends per socket, in case one is lost; the easy side's NAT drops them (it has not
    # sent to us yet): they only create the mappings.
    for _ in range(2):
        for s in sockets:
            s.sendto(b"open", (easy_ip, easy_port))
    print("ready", flush=True)
    began = time.monotonic()
    deadline = began + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select(sockets, [], [], max(0.0, deadline - time.monotonic()))
        for s in readable:
            data, sender = s.recvfrom(2048)
            if sender == (easy_ip, easy_port) and data.startswith(b"probe"):
                for _ in range(3):
                    s.sendto(b"ack " + data[6:], sender)
                print(json.dumps({"ok": True, "socket": sockets.index(s), "localPort": s.getsockname()[1],
                                  "ms": round((time.monotonic() - began) * 1000, 1), "probe": data.decode()}), flush=True)
                return
    print(json.dumps({"ok": False, "ms": round(seconds * 1000)}), flush=True)


def easy(hard_ip, port, most, rate, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.setblocking(False)
    began = time.monotonic()
    deadline = began + seconds
    sent = 0
    tried = set()
    interval = 1.0 / rate
    next_send = began
    while time.monotonic() < deadline:
        now = time.monotonic()
        if sent < most and now >= next_send:
            target = random.randint(1024, 65535)
            while target in tried:
                target = random.randint(1024, 65535)
            tried.add(target)
            s.sendto(f"probe {target}".encode(), (hard_ip, target))
            sent += 1
            next_send += interval
        readable, _, _ = select.select([s], [], [], max(0.0, min(next_send, deadline) - time.monotonic()))
        if readable:
            data, sender = s.recvfrom(2048)
            if sender[0] == hard_ip and data.startswith(b"ack"):
                print(json.dumps({"ok": True, "probes": sent, "ms": round((time.monotonic() - began) * 1000, 1),
                                  "hardPublicPort": sender[1]}), flush=True)
                return
    print(json.dumps({"ok": False, "probes": sent, "ms": round(seconds * 1000)}), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "hard":
        hard(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "easy":
        easy(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
    else:
        sys.exit(__doc__)
