#!/usr/bin/env python3
"""A DNS server for one network namespace that answers from a hosts file (testnet/deploy).

Chromium's WebRTC stack resolves STUN/TURN host names through DNS only, not through
/etc/hosts: so the namespace's hosts file (/etc/netns/NS/hosts) is served here, on
127.0.0.1:53, for A queries (RFC 1035 §4.1); every other name or type gets NXDOMAIN / an
empty answer. Bounded: one datagram at a time, names of at most 255 bytes.

usage: hostsdns.py HOSTS_FILE
"""
import socket
import struct
import sys


def load(path):
    table = {}
    with open(path) as hosts:
        for line in hosts:
            fields = line.split("#")[0].split()
            if len(fields) >= 2 and fields[0].count(".") == 3:
                for name in fields[1:]:
                    table[name.lower().rstrip(".")] = socket.inet_aton(fields[0])
    return table


def parse_question(packet):
    labels, offset = [], 12
    while offset < len(packet) and packet[offset] != 0:
        length = packet[offset]
        if length > 63 or offset + 1 + length > len(packet):
            return None
        labels.append(packet[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    if offset + 5 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[offset + 1:offset + 5])
    return ".".join(labels).lower(), qtype, qclass, offset + 5


def main():
    table = load(sys.argv[1])
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    print("hostsdns: serving", ", ".join(sorted(table)), flush=True)
    while True:
        packet, client = server.recvfrom(512)
        if len(packet) < 17 or packet[2] & 0x80:
            continue
        question = parse_question(packet)
        if question is None:
            continue
        name, qtype, qclass, end = question
        address = table.get(name)
        flags = 0x8180 if address is not None else 0x8183  # response, RD, RA; NXDOMAIN when unknown
        answers = b""
        if address is not None and qtype == 1 and qclass == 1:
            answers = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + address
        header = struct.pack("!HHHHHH", struct.unpack("!H", packet[:2])[0], flags, 1, 1 if answers else 0, 0, 0)
        server.sendto(header + packet[12:end] + answers, client)


if __name__ == "__main__":
    main()
