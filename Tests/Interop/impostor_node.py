#!/usr/bin/env python3
"""A node that answers node links as someone it is not (issue 15, finding 2).

It listens on 127.0.0.1:PORT for WebSocket upgrades to /ws, sends a `challenge`, and answers
the dialler's `link` with a `linked` that names ADDRESS (which need not be its own) and the
Ed25519 key made from SEED, signed correctly over the dialler's nonce: a node at a URL that
claims another address, or a node that took over an address with another key. The dialling
meshnode must refuse both. Prints `linked-sent <dialler>` for every answer.

Usage: impostor_node.py PORT ADDRESS SEED_HEX
"""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def recv_exact(conn, count):
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(conn):
    """One frame from a client (always masked, RFC 6455 §5.3): (opcode, payload)."""
    first, second = recv_exact(conn, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", recv_exact(conn, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", recv_exact(conn, 8))[0]
    mask = recv_exact(conn, 4) if second & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(recv_exact(conn, length)))
    return first & 0x0F, payload


def send_text(conn, text):
    data = text.encode()
    header = bytes([0x81])
    if len(data) < 126:
        header += bytes([len(data)])
    elif len(data) < 65536:
        header += bytes([126]) + struct.pack("!H", len(data))
    else:
        header += bytes([127]) + struct.pack("!Q", len(data))
    conn.sendall(header + data)


def message(kind, body, id_="x"):
    return json.dumps({"type": kind, "id": id_, "from": "@node", "to": "", "body": body})


def serve(conn, address, key, public):
    try:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        # Header names are case-insensitive (RFC 9110 §5.1); clients send them in either case.
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in request.decode().split("\r\n")[1:])
            if value
        }
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        conn.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: meshnode.v1\r\n\r\n"
            ).encode()
        )
        send_text(conn, message("challenge", {"nonce": base64.b64encode(os.urandom(32)).decode(), "version": 1}))
        while True:
            opcode, payload = read_frame(conn)
            if opcode == 0x8:
                return
            if opcode != 0x1:
                continue
            frame = json.loads(payload)
            if frame.get("type") == "link":
                body = frame["body"]
                text = f"meshnode.v1 link\n{body['nonce']}\n{address}\n{body['node']}"
                sig = base64.b64encode(key.sign(text.encode())).decode()
                linked = {"node": address, "key": public, "sig": sig, "heartbeat": 15, "proven": True}
                send_text(conn, message("linked", linked, frame["id"]))
                print(f"linked-sent {body['node']}", flush=True)
            elif frame.get("type") == "ping":
                send_text(conn, message("pong", {}, frame["id"]))
    except (EOFError, ConnectionError, OSError):
        return
    finally:
        conn.close()


def main():
    port, address, seed = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(16)
    print(f"listening {port} as {address} key {public}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, address, key, public), daemon=True).start()


if __name__ == "__main__":
    main()
