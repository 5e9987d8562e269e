#!/usr/bin/env python3
"""Protocol conformance suite for a meshnode signaling node (docs/protocol.md, issue 18).

Written from docs/protocol.md alone, as an independent client would be: its own WebSocket
client (RFC 6455) on the standard library, Ed25519 from PyNaCl or `cryptography`. It runs
against any node URL, makes names of its own (random suffix, so runs against a long-lived node
do not meet), and prints one line per rule: `PASS [section] rule` or `FAIL [section] rule: why`.
Exit status 0 only if every check passed.

Usage: conformance.py --node ws://HOST:PORT/ws [--only GROUP]… [--verbose]

The node must run with its defaults for the checked limits (rate 50 frames/s, burst 200;
8 ringing calls per caller; ring 1-120 s). It must be reachable at exactly that URL: logins
sign `host:port` of it (docs/protocol.md "Login").
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
import uuid

try:
    import nacl.signing

    class Key:
        def __init__(self):
            self._key = nacl.signing.SigningKey.generate()
            self.public = base64.b64encode(bytes(self._key.verify_key)).decode()

        def sign(self, text):
            return self.sign_bytes(text.encode())

        def sign_bytes(self, data):
            return base64.b64encode(self._key.sign(data).signature).decode()

    def verify(public, sig, text):
        """Whether `sig` (base64) is `public`'s (base64) Ed25519 signature of `text`."""
        try:
            nacl.signing.VerifyKey(base64.b64decode(public)).verify(text.encode(), base64.b64decode(sig))
            return True
        except Exception:  # noqa: BLE001 - any failure is "does not verify"
            return False
except ImportError:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    class Key:
        def __init__(self):
            self._key = Ed25519PrivateKey.generate()
            raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            self.public = base64.b64encode(raw).decode()

        def sign(self, text):
            return self.sign_bytes(text.encode())

        def sign_bytes(self, data):
            return base64.b64encode(self._key.sign(data)).decode()

    def verify(public, sig, text):
        """Whether `sig` (base64) is `public`'s (base64) Ed25519 signature of `text`."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(base64.b64decode(sig), text.encode())
            return True
        except Exception:  # noqa: BLE001 - any failure is "does not verify"
            return False

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
SUBPROTOCOL = "meshnode.v1"
WAIT = 5.0  # seconds to wait for an answer the protocol promises


class Closed(Exception):
    """The node closed the WebSocket; `code` is its close code (None without one)."""

    def __init__(self, code, reason=""):
        super().__init__(f"closed with {code} {reason}".strip())
        self.code = code


class Timeout(Exception):
    pass


class Target:
    """The node under test: host, port, path and the `node` address logins sign."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "ws":
            raise SystemExit("only ws:// URLs (no TLS in this suite)")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        host = self.host.lower()
        # docs/protocol.md "Login": host in lower case, IPv6 in brackets, the port always written.
        self.authority = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def http_request(target, headers, timeout=WAIT):
    """Sends a GET of the WebSocket path with `headers`; returns (status, headers, socket)."""
    sock = socket.create_connection((target.host, target.port), timeout=timeout)
    lines = [f"GET {target.path} HTTP/1.1", f"Host: {target.authority}"] + [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    fields = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
    return status, fields, sock, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


def upgrade_headers(subprotocol=True, origin=None):
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if subprotocol:
        headers["Sec-WebSocket-Protocol"] = SUBPROTOCOL
    if origin:
        headers["Origin"] = origin
    return headers


class WebSocket:
    """A minimal RFC 6455 client: masked frames out, text/binary/close/ping in."""

    def __init__(self, target, origin=None):
        headers = upgrade_headers(origin=origin)
        status, fields, self.sock, self.buffer = http_request(target, headers)
        if status != 101:
            raise Closed(None, f"upgrade answered {status}")
        accept = base64.b64encode(hashlib.sha1((headers["Sec-WebSocket-Key"] + GUID).encode()).digest()).decode()
        if fields.get("sec-websocket-accept") != accept:
            raise Closed(None, "bad Sec-WebSocket-Accept")
        self.subprotocol = fields.get("sec-websocket-protocol")
        self.closed = None

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text):
        self._send(0x1, text.encode())

    def send_binary(self, data):
        self._send(0x2, data)

    def _read(self, count, deadline):
        while len(self.buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout()
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout()
            except OSError as error:
                raise Closed(None, str(error))
            if not chunk:
                raise Closed(None, "connection ended")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self, timeout=WAIT):
        """The next text message as a string; raises Closed or Timeout."""
        if self.closed is not None:
            raise Closed(self.closed)
        deadline = time.monotonic() + timeout
        message = b""
        while True:
            first, second = self._read(2, deadline)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2, deadline))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8, deadline))
            payload = self._read(length, deadline)
            opcode = first & 0x0F
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = code
                raise Closed(code, payload[2:].decode(errors="replace"))
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self):
        try:
            self._send(0x8, struct.pack("!H", 1000))
            self.sock.close()
        except OSError:
            pass


class Client:
    """One signaling connection speaking the envelope of docs/protocol.md."""

    def __init__(self, suite, origin=None):
        self.suite = suite
        self.ws = WebSocket(suite.target, origin=origin)
        self.name = None
        self.key = None
        self.challenge = self.next(lambda m: m["type"] == "challenge")

    def send(self, type_, body, to="@node", id_=None, from_=""):
        id_ = id_ or uuid.uuid4().hex
        self.send_raw(json.dumps({"type": type_, "id": id_, "from": from_, "to": to, "body": body}))
        return id_

    def send_raw(self, text):
        self.ws.send_text(text)

    def next(self, match=lambda m: True, timeout=WAIT, what="a message"):
        """The next message that `match`es, skipping others; raises Timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout(f"no {what} within {timeout} s")
            try:
                text = self.ws.receive(remaining)
            except Timeout:
                raise Timeout(f"no {what} within {timeout} s")
            message = json.loads(text)
            if self.suite.verbose:
                print(f"      {self.name or '-'} <- {text[:300]}")
            if match(message):
                return message

    def reply(self, id_, timeout=WAIT):
        """The node's answer to message `id_`: an ack, error, pong, welcome or members naming it."""
        def answers(m):
            body = m.get("body", {})
            return (m["type"] in ("ack", "error", "members", "history") and body.get("of") == id_) or \
                   (m["type"] in ("pong", "welcome", "proof") and m["id"] == id_)
        return self.next(answers, timeout, f"answer to {id_}")

    def error_code(self, id_, timeout=WAIT):
        answer = self.reply(id_, timeout)
        return answer["body"].get("code") if answer["type"] == "error" else f"{answer['type']} {json.dumps(answer['body'])[:80]}"

    def login_body(self, name, key, nonce=None, node=None):
        nonce = nonce or self.challenge["body"]["nonce"]
        node = node or self.suite.target.authority
        # docs/protocol.md "Login": the nonce is signed as its base64 text.
        sig = key.sign(f"meshnode.v1 login\n{nonce}\n{name}\n{node}")
        return {"name": name, "key": key.public, "node": node, "sig": sig}

    def login(self, name, key):
        id_ = self.send("login", self.login_body(name, key))
        answer = self.reply(id_)
        if answer["type"] != "welcome":
            raise AssertionError(f"login of {name} answered {answer}")
        self.name, self.key = name, key
        return answer

    def close(self):
        self.ws.close()


def signed(key, type_, from_, to, call, ts=None, **fields):
    """A call-setup body: payload JSON text, key, signature (docs/protocol.md "Call setup")."""
    payload = {"type": type_, "from": from_, "to": to, "call": call, "ts": time.time() if ts is None else ts}
    payload.update(fields)
    text = json.dumps(payload, separators=(",", ":"))
    return {"payload": text, "key": key.public, "sig": key.sign("meshnode.v1 call-setup\n" + text)}


class Suite:
    def __init__(self, url, verbose):
        self.target = Target(url)
        self.verbose = verbose
        self.run_id = uuid.uuid4().hex[:6]
        self.passed = 0
        self.failed = 0
        self.clients = []

    def name(self, base):
        return f"{base}-{self.run_id}"

    def check(self, section, rule, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS [{section}] {rule}")
        else:
            self.failed += 1
            print(f"FAIL [{section}] {rule}: {detail}")
        sys.stdout.flush()

    def expect(self, section, rule, got, want):
        self.check(section, rule, got == want, f"got {got!r}, want {want!r}")

    def client(self, name=None, key=None, origin=None):
        client = Client(self, origin=origin)
        self.clients.append(client)
        if name:
            client.login(name, key or Key())
        return client

    def close_all(self):
        for client in self.clients:
            client.close()
        self.clients = []

    def silent(self, client, what, marker_from, section, rule):
        """Checks that `client` got nothing matching `what` before a marker chat from `marker_from`."""
        marker = marker_from.send("chat", {"text": "marker"}, to=client.name)
        seen = client.next(lambda m: what(m) or (m["type"] == "chat" and m["id"] == marker), what="the marker chat")
        self.check(section, rule, seen["id"] == marker, f"got {json.dumps(seen)[:200]}")


# MARK: - Checks, one function per section of docs/protocol.md

def transport(s):
    sec = "Transport"
    status, _, sock, _ = http_request(s.target, {})
    sock.close()
    s.expect(sec, "a plain GET /ws gets 426 Upgrade Required", status, 426)
    status, _, sock, _ = http_request(s.target, upgrade_headers(subprotocol=False))
    sock.close()
    s.expect(sec, "a WebSocket upgrade without subprotocol meshnode.v1 gets 400", status, 400)
    client = s.client()
    s.expect(sec, "the node answers the subprotocol meshnode.v1", client.ws.subprotocol, SUBPROTOCOL)
    client.ws.send_binary(b"\x01\x02")
    s.expect(sec, "a binary frame gets error bad-frame",
             client.next(lambda m: m["type"] == "error")["body"].get("code"), "bad-frame")
    try:
        hostile = Client(s, origin="http://attacker.example")
        code = "open"
        hostile.next(timeout=2)
    except Closed as closed:
        code = closed.code
    except Timeout:
        code = "no close"
    s.expect(sec, "an upgrade from another site's Origin is closed with 1008", code, 1008)
    page = s.client(origin=f"http://{s.target.authority}")
    s.check(sec, "an upgrade from the page's own Origin gets a challenge", page.challenge["type"] == "challenge")


def envelope(s):
    sec = "Envelope"
    c = s.client()
    ch = c.challenge
    s.check(sec, "the first message is a challenge from @node",
            ch["type"] == "challenge" and ch["from"] == "@node" and set(ch) == {"type", "id", "from", "to", "body"}, json.dumps(ch))
    nonce = base64.b64decode(ch["body"].get("nonce", ""), validate=True)
    s.check("Login", "the challenge nonce is base64 of 32 bytes and version is 1",
            len(nonce) == 32 and ch["body"].get("version") == 1, json.dumps(ch["body"]))
    c.send_raw("this is not JSON")
    s.expect(sec, "not JSON gets bad-json", c.next(lambda m: m["type"] == "error")["body"].get("code"), "bad-json")
    c.send_raw("[1,2]")
    s.expect(sec, "not an object gets bad-json", c.next(lambda m: m["type"] == "error")["body"].get("code"), "bad-json")
    c.send_raw(json.dumps({"type": "ping", "id": "x" * 65, "from": "", "to": "@node", "body": {}}))
    s.expect(sec, "an id of 65 characters gets bad-field", c.next(lambda m: m["type"] == "error")["body"].get("code"), "bad-field")
    id_ = c.send("ping", {}, id_="p" * 64)
    s.expect("Liveness", "ping before login gets pong with the same id", c.reply(id_)["type"], "pong")
    id_ = c.send("teleport", {})
    s.expect("Login", "an unknown type before login gets not-logged-in", c.error_code(id_), "not-logged-in")
    id_ = c.send("chat", {"text": "hi"}, to="nobody")
    s.expect("Login", "chat before login gets not-logged-in", c.error_code(id_), "not-logged-in")
    id_ = c.send("chat", {"text": 7}, to="nobody")
    s.expect("Login", "a malformed chat before login gets not-logged-in", c.error_code(id_), "not-logged-in")

    alice = s.client(s.name("env-a"))
    id_ = alice.send("teleport", {})
    s.expect(sec, "an unknown type after login gets unknown-type with of", alice.error_code(id_), "unknown-type")
    id_ = alice.send("ping", {}, from_="somebody-else")
    s.expect(sec, "a from other than the logged-in name gets forbidden", alice.error_code(id_), "forbidden")
    id_ = alice.send("ping", {}, from_=alice.name)
    s.expect(sec, "from equal to the logged-in name is taken", alice.reply(id_)["type"], "pong")
    id_ = uuid.uuid4().hex
    alice.send_raw(json.dumps({"type": "ping", "id": id_, "from": "", "to": "@node", "body": {}, "extra": [1], "x": None}))
    s.expect(sec, "unknown fields are ignored", alice.reply(id_)["type"], "pong")
    id_ = alice.send("subscribe", {})
    s.expect(sec, "a missing body field gets bad-field", alice.error_code(id_), "bad-field")
    alice.send("ping", {"pad": "x" * (65 * 1024)})
    # The node does not read a frame over the limit, so the error names no id (docs: "when it could be read").
    s.expect("Limits", "a frame over 64 KiB gets too-large", alice.next(lambda m: m["type"] == "error")["body"].get("code"), "too-large")
    id_ = alice.send("ping", {})
    s.expect("Errors", "the connection stays open after an error", alice.reply(id_)["type"], "pong")


def login(s):
    sec = "Login"
    name = s.name("login")
    key = Key()
    c = s.client()
    first = c.challenge["body"]["nonce"]
    id_ = c.send("login", c.login_body(name, Key()) | {"key": key.public})
    s.expect(sec, "a signature by another key gets bad-signature", c.error_code(id_), "bad-signature")
    fresh = c.next(lambda m: m["type"] == "challenge", what="a fresh challenge")
    s.check(sec, "a failed login is followed by a fresh challenge with a new nonce", fresh["body"]["nonce"] != first)
    c.challenge = fresh
    id_ = c.send("login", c.login_body(name, key, nonce=first))
    s.expect(sec, "a login signing a used nonce gets bad-signature (one attempt per nonce)", c.error_code(id_), "bad-signature")
    c.challenge = c.next(lambda m: m["type"] == "challenge")
    id_ = c.send("login", c.login_body(name, key, node="203.0.113.9:8080"))
    s.expect(sec, "a login signed for another node's address gets bad-signature", c.error_code(id_), "bad-signature")
    c.challenge = c.next(lambda m: m["type"] == "challenge")
    nonce = c.challenge["body"]["nonce"]
    raw = base64.b64decode(nonce)
    body = c.login_body(name, key)
    body["sig"] = key.sign_bytes(b"meshnode.v1 login\n" + raw + f"\n{name}\n{s.target.authority}".encode())
    id_ = c.send("login", body)
    s.expect(sec, "a signature over the nonce's bytes (not its base64 text) gets bad-signature", c.error_code(id_), "bad-signature")
    c.challenge = c.next(lambda m: m["type"] == "challenge")
    id_ = c.send("login", c.login_body("-bad", key))
    s.expect(sec, "an invalid name gets bad-field", c.error_code(id_), "bad-field")
    c.challenge = c.next(lambda m: m["type"] == "challenge")
    id_ = c.send("login", c.login_body(name, key))
    welcome = c.reply(id_)
    b = welcome["body"]
    s.check(sec, "a correct login gets welcome with the login's id, name, key, heartbeat and iceServers",
            welcome["type"] == "welcome" and b.get("name") == name and b.get("key") == key.public
            and isinstance(b.get("heartbeat"), int) and b["heartbeat"] > 0
            and isinstance(b.get("iceServers"), list) and all(isinstance(x.get("urls"), list) for x in b["iceServers"]),
            json.dumps(welcome)[:300])
    c.name, c.key = name, key
    id_ = c.send("login", c.login_body(name, key))
    s.expect(sec, "a second login on a logged-in connection gets bad-field", c.error_code(id_), "bad-field")
    other = s.client()
    id_ = other.send("login", other.login_body(name, Key()))
    s.expect(sec, "the name with another key gets name-taken", other.error_code(id_), "name-taken")
    twin = s.client()
    twin.login(name, key)
    code, closed = None, False
    try:
        code = c.next(lambda m: m["type"] == "error")["body"].get("code")
        c.next(timeout=2)
    except Closed:
        closed = True
    except Timeout:
        pass
    s.check(sec, "the same name and key on another connection: the older gets replaced and is closed",
            code == "replaced" and closed, f"code {code}, closed {closed}")


def presence(s):
    sec = "Presence"
    alice = s.client(s.name("pres-a"))
    bob_name, ghost = s.name("pres-b"), s.name("ghost")
    bob_key = Key()
    # bob must have been seen once for his key to be known.
    s.client(bob_name, bob_key).close()
    time.sleep(0.2)
    id_ = alice.send("subscribe", {"names": [bob_name, ghost]})
    got = {}
    ack = None
    deadline = time.monotonic() + WAIT
    while (ack is None or len(got) < 2) and time.monotonic() < deadline:
        m = alice.next(lambda m: m["type"] in ("ack", "presence", "error"))
        if m["type"] == "presence":
            got[m["body"]["name"]] = m["body"]
        elif m["body"].get("of") == id_:
            ack = m
    s.check(sec, "subscribe is answered with ack ok", ack is not None and ack["body"].get("status") == "ok", json.dumps(ack))
    s.check(sec, "the current presence of each name follows: offline, with the bound key",
            got.get(bob_name, {}).get("status") == "offline" and got[bob_name].get("key") == bob_key.public, json.dumps(got))
    s.check(sec, "a name never seen: offline without key", got.get(ghost, {}).get("status") == "offline" and "key" not in got[ghost],
            json.dumps(got.get(ghost)))
    bob = s.client(bob_name, bob_key)
    online = alice.next(lambda m: m["type"] == "presence" and m["body"]["name"] == bob_name)
    s.check(sec, "a login is announced online with the key", online["body"].get("status") == "online" and online["body"].get("key") == bob_key.public,
            json.dumps(online))
    bob.close()
    offline = alice.next(lambda m: m["type"] == "presence" and m["body"]["name"] == bob_name)
    s.expect(sec, "a closed connection is announced offline", offline["body"].get("status"), "offline")
    id_ = alice.send("unsubscribe", {"names": [bob_name]})
    s.expect(sec, "unsubscribe is answered with ack", alice.reply(id_)["type"], "ack")
    id_ = alice.send("subscribe", {"names": [f"n{i}-{s.run_id}" for i in range(1001)]})
    s.expect("Limits", "more than 1000 subscriptions on a connection get bad-field", alice.error_code(id_), "bad-field")


def rooms(s):
    sec = "Rooms"
    alice, bob = s.client(s.name("room-a")), s.client(s.name("room-b"))
    room = "#" + s.name("r")
    id_ = alice.send("join", {"room": room, "rule": "open"})
    s.expect(sec, "join is answered with ack ok", alice.reply(id_)["body"].get("status"), "ok")
    event = alice.next(lambda m: m["type"] == "room")
    s.check(sec, "the joiner gets its own room event joined",
            event["body"] == {"room": room, "member": alice.name, "event": "joined"}, json.dumps(event))
    id_ = alice.send("join", {"room": room})
    s.expect(sec, "joining again is answered duplicate", alice.reply(id_)["body"].get("status"), "duplicate")
    id_ = bob.send("members", {"room": room})
    s.expect(sec, "members of a room one is not in gets not-member", bob.error_code(id_), "not-member")
    id_ = bob.send("chat", {"text": "hi"}, to=room)
    s.expect("Chat", "chat to a room one has not joined gets not-member", bob.error_code(id_), "not-member")
    id_ = bob.send("join", {"room": room})
    s.expect(sec, "anyone may join an open room", bob.reply(id_)["body"].get("status"), "ok")
    event = alice.next(lambda m: m["type"] == "room")
    s.check(sec, "every online member hears of a join", event["body"].get("member") == bob.name and event["body"].get("event") == "joined",
            json.dumps(event))
    id_ = alice.send("members", {"room": room})
    members = alice.reply(id_)
    names = {m.get("name"): m for m in members["body"].get("members", [])}
    s.check(sec, "members lists names, online and key for a member",
            members["type"] == "members" and set(names) == {alice.name, bob.name}
            and names[bob.name].get("online") is True and names[bob.name].get("key") == bob.key.public, json.dumps(members)[:300])
    id_ = alice.send("chat", {"text": "to the room"}, to=room)
    s.expect("Chat", "chat to a room by a member is acked ok", alice.reply(id_)["body"].get("status"), "ok")
    got = bob.next(lambda m: m["type"] == "chat")
    s.check("Chat", "room members get the message addressed to the room", got["id"] == id_ and got["to"] == room and got["from"] == alice.name,
            json.dumps(got))
    bob.send("ack", {"of": id_, "sender": alice.name})
    history(s, room, alice, bob, got)
    id_ = bob.send("leave", {"room": room})
    s.expect(sec, "leave is answered with ack", bob.reply(id_)["body"].get("status"), "ok")
    event = alice.next(lambda m: m["type"] == "room")
    s.check(sec, "members hear of a leave", event["body"].get("member") == bob.name and event["body"].get("event") == "left", json.dumps(event))
    id_ = bob.send("join", {"room": "ops"})
    s.expect(sec, "a room without # gets bad-field", bob.error_code(id_), "bad-field")

    closed = "#" + s.name("i")
    id_ = alice.send("join", {"room": closed, "rule": "invite"})
    s.expect(sec, "the creating join may set rule invite", alice.reply(id_)["body"].get("status"), "ok")
    id_ = bob.send("join", {"room": closed})
    s.expect(sec, "joining an invite room without an invitation gets forbidden", bob.error_code(id_), "forbidden")
    carol = s.client(s.name("room-c"))
    id_ = bob.send("invite", {"room": closed, "name": carol.name})
    s.expect(sec, "an invite by another than the owner gets forbidden", bob.error_code(id_), "forbidden")
    id_ = alice.send("invite", {"room": closed, "name": bob.name})
    s.expect(sec, "the owner's invite is acked ok", alice.reply(id_)["body"].get("status"), "ok")
    id_ = alice.send("invite", {"room": closed, "name": bob.name})
    s.expect(sec, "inviting again is answered duplicate", alice.reply(id_)["body"].get("status"), "duplicate")
    id_ = bob.send("join", {"room": closed})
    s.expect(sec, "an invited name may join", bob.reply(id_)["body"].get("status"), "ok")


def history(s, room, alice, bob, first):
    """docs/protocol.md "Room history": `seq` on room chat, pages newest first with `before`,
    `more`, the limit's range, members only."""
    sec = "Room history"
    s.check(sec, "room chat as delivered carries its seq", isinstance(first["body"].get("seq"), int), json.dumps(first))
    second = alice.send("chat", {"text": "second"}, to=room)
    alice.reply(second)
    got = bob.next(lambda m: m["type"] == "chat" and m["id"] == second)
    bob.send("ack", {"of": second, "sender": alice.name})
    s.check(sec, "seq grows in the order the node accepted messages", got["body"].get("seq", 0) > first["body"].get("seq", 0), json.dumps(got))
    id_ = bob.send("history", {"room": room, "limit": 1})
    page = bob.reply(id_)
    body = page.get("body", {})
    texts = [m.get("text") for m in body.get("messages", [])]
    s.check(sec, "history gives the newest page with more, each with seq, from, id, text, sent",
            page["type"] == "history" and texts == ["second"] and body.get("more") is True and body.get("room") == room
            and body["messages"][0].get("from") == alice.name and body["messages"][0].get("id") == second
            and body["messages"][0].get("seq") == got["body"].get("seq") and isinstance(body["messages"][0].get("sent"), (int, float)),
            json.dumps(page)[:300])
    if page["type"] == "history" and body.get("messages"):
        id_ = bob.send("history", {"room": room, "before": body["messages"][0]["seq"]})
        older = bob.reply(id_)
        s.check(sec, "history with before gives what is older, oldest first, and more false at the start",
                older["type"] == "history" and [m.get("text") for m in older["body"].get("messages", [])] == ["to the room"]
                and older["body"].get("more") is False, json.dumps(older)[:300])
    id_ = bob.send("history", {"room": room, "limit": 101})
    s.expect(sec, "a limit over 100 gets bad-field", bob.error_code(id_), "bad-field")
    outsider = s.client(s.name("room-h"))
    id_ = outsider.send("history", {"room": room})
    s.expect(sec, "history of a room one is not in gets not-member", outsider.error_code(id_), "not-member")


def chat(s):
    sec = "Chat"
    alice, bob = s.client(s.name("chat-a")), s.client(s.name("chat-b"))
    id_ = alice.send("chat", {"text": "hi bob"}, to=bob.name)
    ack = alice.reply(id_)
    s.check(sec, "chat to a peer is acked ok", ack["type"] == "ack" and ack["body"].get("status") == "ok", json.dumps(ack))
    got = bob.next(lambda m: m["type"] == "chat")
    s.check(sec, "the recipient gets the sender's id, from, to, text and sent",
            got["id"] == id_ and got["from"] == alice.name and got["to"] == bob.name and got["body"].get("text") == "hi bob"
            and isinstance(got["body"].get("sent"), (int, float)) and abs(got["body"]["sent"] - time.time()) < 120, json.dumps(got))
    alice.send("chat", {"text": "hi bob"}, to=bob.name, id_=id_)
    s.expect("Delivery guarantees", "a resend with the same id is answered duplicate", alice.reply(id_)["body"].get("status"), "duplicate")
    s.silent(bob, lambda m: m["type"] == "chat" and m["id"] == id_, alice, "Delivery guarantees", "a duplicate is not delivered again")
    id_ = alice.send("chat", {"text": "hello?"}, to=s.name("never-seen"))
    s.expect(sec, "chat to a name never seen gets unknown-recipient", alice.error_code(id_), "unknown-recipient")
    id_ = alice.send("chat", {"text": "x" * (16 * 1024 + 1)}, to=bob.name)
    s.expect(sec, "text over 16 KiB gets too-large", alice.error_code(id_), "too-large")
    id_ = alice.send("chat", {"text": "hi"}, to="bad name!")
    s.expect(sec, "an invalid recipient gets bad-field", alice.error_code(id_), "bad-field")

    carol_name, carol_key = s.name("chat-c"), Key()
    s.client(carol_name, carol_key).close()
    time.sleep(0.2)
    id_ = alice.send("chat", {"text": "while you were out"}, to=carol_name)
    s.expect("Delivery guarantees", "chat to an offline name that was seen is stored and acked ok",
             alice.reply(id_)["body"].get("status"), "ok")
    carol = s.client()
    login_id = carol.send("login", carol.login_body(carol_name, carol_key))
    first = carol.next(lambda m: m["type"] in ("welcome", "chat"))
    stored = carol.next(lambda m: m["type"] == "chat")
    s.check("Login", "welcome comes before the stored messages", first["type"] == "welcome" and first["id"] == login_id, json.dumps(first)[:200])
    s.check("Delivery guarantees", "a stored message is delivered at login", stored["id"] == id_, json.dumps(stored))
    carol.close()
    carol = s.client()
    carol.send("login", carol.login_body(carol_name, carol_key))
    again = carol.next(lambda m: m["type"] == "chat")
    s.check("Delivery guarantees", "an unacknowledged message is delivered again at the next login", again["id"] == id_, json.dumps(again))
    carol.send("ack", {"of": id_, "sender": alice.name})
    time.sleep(0.3)
    carol.close()
    carol = s.client(carol_name, carol_key)
    s.silent(carol, lambda m: m["type"] == "chat" and m["id"] == id_, alice, "Delivery guarantees",
             "an acknowledged message is not delivered again")


def calls(s):
    sec = "Call setup"
    alice, bob = s.client(s.name("call-a")), s.client(s.name("call-b"))
    a, b = alice.name, bob.name
    setup = lambda m: m["type"] in ("call", "accept", "reject", "cancel", "busy", "hangup", "sdp", "candidate")

    def send(client, type_, body, to):
        return client.send(type_, body, to=to)

    gone = s.name("call-off")
    s.client(gone).close()
    time.sleep(0.2)
    id_ = send(alice, "call", signed(alice.key, "call", a, gone, "c-off", kind="audio"), gone)
    s.expect(sec, "call setup to an offline peer gets unavailable", alice.error_code(id_), "unavailable")
    id_ = send(alice, "call", signed(Key(), "call", a, b, "c-x", kind="audio") | {"key": alice.key.public}, b)
    s.expect(sec, "a signature that does not verify gets bad-signature", alice.error_code(id_), "bad-signature")
    id_ = send(alice, "call", signed(Key(), "call", a, b, "c-x", kind="audio"), b)
    s.expect(sec, "a body signed by another key than the login's gets bad-signature", alice.error_code(id_), "bad-signature")
    id_ = send(alice, "call", signed(alice.key, "call", s.name("mallory"), b, "c-x", kind="audio"), b)
    s.expect(sec, "a payload from that is not the sender gets bad-signature", alice.error_code(id_), "bad-signature")
    id_ = send(alice, "call", signed(alice.key, "call", a, s.name("other"), "c-x", kind="audio"), b)
    s.expect(sec, "a payload to that is not the envelope's gets bad-signature", alice.error_code(id_), "bad-signature")
    id_ = send(alice, "call", signed(alice.key, "hangup", a, b, "c-x"), b)
    s.expect(sec, "a payload type that is not the envelope's gets bad-signature", alice.error_code(id_), "bad-signature")
    id_ = send(alice, "call", signed(alice.key, "call", a, b, "c x", kind="audio"), b)
    s.expect(sec, "a call id with a space gets bad-field", alice.error_code(id_), "bad-field")
    for ring in (0, 121):
        id_ = send(alice, "call", signed(alice.key, "call", a, b, f"c-ring{ring}", kind="audio", ring=ring), b)
        s.expect(sec, f"ring {ring} (outside 1-120) gets bad-field", alice.error_code(id_), "bad-field")
    for offset in (-300, 300):
        id_ = send(alice, "call", signed(alice.key, "call", a, b, f"c-ts{offset}", ts=time.time() + offset, kind="audio"), b)
        s.expect("Freshness and replays", f"ts {offset:+d} s from the node's clock gets stale", alice.error_code(id_), "stale")
    id_ = send(bob, "accept", signed(bob.key, "accept", b, a, "c-never"), a)
    s.expect("Binding", "accept for a call that does not ring gets forbidden", bob.error_code(id_), "forbidden")
    s.silent(alice, setup, bob, sec, "no refused call-setup message was delivered")

    body = signed(alice.key, "call", a, b, "c-1", kind="video")
    id_ = send(alice, "call", body, b)
    s.expect(sec, "a valid call is acked ok", alice.reply(id_)["body"].get("status"), "ok")
    got = bob.next(setup)
    s.check(sec, "the callee gets the call with the signed body unchanged",
            got["type"] == "call" and got["from"] == a and got["body"] == body, json.dumps(got)[:300])
    id_ = send(alice, "call", body, b)
    s.expect("Freshness and replays", "the same signed message again gets replayed", alice.error_code(id_), "replayed")
    id_ = alice.send("call", signed(alice.key, "cancel", a, b, "c-1"), to=b)
    s.expect(sec, "a cancel sent as type call (signed type cancel) gets bad-signature", alice.error_code(id_), "bad-signature")
    accept = signed(bob.key, "accept", b, a, "c-1")
    id_ = send(bob, "accept", accept, a)
    s.expect(sec, "accept of a ringing call is acked", bob.reply(id_)["body"].get("status"), "ok")
    s.check(sec, "the caller gets the accept", alice.next(setup)["body"] == accept)
    offer = signed(alice.key, "sdp", a, b, "c-1", sdpType="offer", sdp="v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
    id_ = alice.send("sdp", offer, to=b, from_="")
    s.expect("Envelope", "call setup with an empty envelope from is taken (the payload names the sender)",
             alice.reply(id_)["body"].get("status"), "ok")
    s.check(sec, "the offer reaches the callee", bob.next(setup)["body"] == offer)
    cand = signed(bob.key, "candidate", b, a, "c-1", candidate={"candidate": "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host",
                                                             "sdpMid": "0", "sdpMLineIndex": 0})
    send(bob, "candidate", cand, a)
    s.check(sec, "a candidate reaches the other side", alice.next(setup)["body"] == cand)
    end = signed(bob.key, "candidate", b, a, "c-1", candidate={"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0})
    send(bob, "candidate", end, a)
    s.check(sec, "end-of-candidates (an empty candidate) reaches the other side", alice.next(setup)["body"] == end)
    bye = signed(alice.key, "hangup", a, b, "c-1", reason="done")
    id_ = send(alice, "hangup", bye, b)
    s.expect(sec, "hangup is acked", alice.reply(id_)["body"].get("status"), "ok")
    s.check(sec, "hangup reaches the other side", bob.next(setup)["body"] == bye)

    id_ = send(alice, "call", signed(alice.key, "call", a, b, "c-ring", kind="audio", ring=1), b)
    alice.reply(id_)
    started = time.monotonic()
    timeout_a = alice.next(lambda m: m["type"] == "timeout", timeout=4)
    timeout_b = bob.next(lambda m: m["type"] == "timeout", timeout=4)
    s.check(sec, "a call unanswered for ring seconds gets timeout to both parties from @node",
            timeout_a["body"] == {"call": "c-ring"} == timeout_b["body"] and timeout_a["from"] == "@node" and time.monotonic() - started < 4,
            f"{timeout_a} {timeout_b}")
    id_ = send(bob, "accept", signed(bob.key, "accept", b, a, "c-ring"), a)
    s.expect("Binding", "accept after the timeout gets forbidden", bob.error_code(id_), "forbidden")

    ids = [send(alice, "call", signed(alice.key, "call", a, b, f"c-many-{i}", kind="audio", ring=2), b) for i in range(9)]
    codes = [alice.reply(i)["body"].get("code") or "ok" for i in ids]
    s.check("Limits", "a caller's 9th ringing call gets rate-limited", codes[:8] == ["ok"] * 8 and codes[8] == "rate-limited", str(codes))
    for i in range(8):
        send(alice, "cancel", signed(alice.key, "cancel", a, b, f"c-many-{i}"), b)


def links(s):
    sec = "Node links"
    alice = s.client(s.name("mesh-a"))
    for type_, body in (("mesh", {"x": 1}), ("dialback", {}), ("link", {"node": "192.0.2.1:8080"}), ("timeout", {"call": "c"})):
        id_ = alice.send(type_, body)
        s.expect(sec, f"a client's {type_} gets forbidden, even with a bad body", alice.error_code(id_), "forbidden")
    c = s.client()
    id_ = c.send("prove", {"nonce": base64.b64encode(os.urandom(32)).decode(), "node": s.target.authority})
    proof = c.reply(id_)
    s.check("Proving an address", "prove before login is answered with a proof of the same id naming the address",
            proof["type"] == "proof" and proof["body"].get("node") == s.target.authority and bool(proof["body"].get("sig")),
            json.dumps(proof)[:200])


def limits(s):
    sec = "Limits"
    dave = s.client(s.name("rate"))
    ids = [uuid.uuid4().hex for _ in range(260)]
    for id_ in ids:
        dave.send("ping", {}, id_=id_)
    limited = []
    for _ in ids:
        m = dave.next(lambda m: m["type"] in ("pong", "error"))
        if m["type"] == "error":
            limited.append(m["body"])
    s.check(sec, "more than 200 frames at once get rate-limited", any(b.get("code") == "rate-limited" for b in limited), f"{len(limited)} errors")
    s.check("Errors", "rate-limited errors name the dropped frame in of",
            bool(limited) and all(b.get("of") in ids for b in limited), json.dumps(limited[:2]))
    time.sleep(1.5)
    id_ = dave.send("ping", {})
    s.expect(sec, "the connection recovers at 50 frames/s", dave.reply(id_)["type"], "pong")


def devices(s):
    sec = "Devices"
    owner_key = Key()
    owner = s.client(s.name("dev-a"), owner_key)
    a = owner.name
    caller = s.client(s.name("dev-b"))
    b = caller.name
    setup = lambda m: m["type"] in ("call", "accept", "reject", "cancel", "busy", "hangup", "sdp", "candidate")

    def endorsement(key, name, device_public):
        return key.sign(f"meshnode.v1 device\n{name}\n{device_public}")

    id_ = owner.send("device-code", {})
    answer = owner.next(lambda m: m["type"] in ("device-code", "error") and m["body"].get("of") == id_, what="the link code")
    code = answer["body"].get("code", "")
    s.check(sec, "the owner's device-code is answered with six digits and expires", len(code) == 6 and code.isdigit()
            and answer["body"].get("expires", 0) > 0, json.dumps(answer)[:200])
    phone_key = Key()
    phone = s.client()
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    id_ = phone.send("device-claim", {"name": a, "code": wrong, "key": phone_key.public})
    s.expect(sec, "a claim with a wrong code gets forbidden", phone.error_code(id_), "forbidden")
    claim = phone.send("device-claim", {"name": a, "code": code, "key": phone_key.public})
    s.expect(sec, "a claim with the code is acked before login", phone.reply(claim)["type"], "ack")
    request = owner.next(lambda m: m["type"] == "device-request", what="device-request")
    s.check(sec, "the owner gets device-request with the new key and the claim id",
            request["body"] == {"name": a, "key": phone_key.public, "claim": claim}, json.dumps(request)[:200])
    stranger = Key()
    id_ = owner.send("endorse", {"key": stranger.public, "sig": endorsement(stranger, a, stranger.public)})
    s.expect(sec, "an endorsement signed by another key than the owner's gets bad-signature", owner.error_code(id_), "bad-signature")
    id_ = owner.send("endorse", {"key": phone_key.public, "sig": endorsement(owner_key, a, phone_key.public)})
    s.expect(sec, "the owner's endorsement is acked ok", owner.reply(id_)["body"].get("status"), "ok")
    added = phone.next(lambda m: m["type"] == "device-added", what="device-added")
    s.check(sec, "the claim is answered device-added with the owner key and the endorsement",
            added["body"].get("of") == claim and added["body"].get("owner") == owner_key.public
            and verify(owner_key.public, added["body"].get("endorsement", ""), f"meshnode.v1 device\n{a}\n{phone_key.public}"),
            json.dumps(added)[:300])
    phone.close()
    phone = s.client()
    welcome = phone.login(a, phone_key)
    s.check(sec, "the endorsed key logs in as the name; welcome names the owner key",
            welcome["body"].get("key") == phone_key.public and welcome["body"].get("owner") == owner_key.public, json.dumps(welcome)[:300])
    id_ = owner.send("ping", {})
    s.check(sec, "the owner's connection stays (another key does not replace it)", owner.reply(id_)["type"] == "pong")
    other = Key()
    id_ = phone.send("endorse", {"key": other.public, "sig": endorsement(phone_key, a, other.public)})
    s.expect(sec, "an endorsement from a linked device gets forbidden", phone.error_code(id_), "forbidden")
    id_ = phone.send("devices", {})
    listed = phone.next(lambda m: m["type"] in ("devices", "error") and m["body"].get("of") == id_, what="devices")
    keys = [(d.get("key"), d.get("owner"), d.get("online")) for d in listed["body"].get("devices", [])]
    s.expect(sec, "devices lists the owner key first, then the endorsed key, both online", keys,
             [(owner_key.public, True, True), (phone_key.public, False, True)])

    caller.send("chat", {"text": "to every device"}, to=a)
    got = [c.next(lambda m: m["type"] == "chat", what="the chat")["body"]["text"] for c in (owner, phone)]
    s.expect(sec, "chat to the name reaches every online device", got, ["to every device"] * 2)
    call = signed(caller.key, "call", b, a, "c-dev", kind="audio")
    caller.send("call", call, to=a)
    rang = [c.next(setup, what="the call")["body"] == call for c in (owner, phone)]
    s.expect(sec, "a call rings on every device", rang, [True, True])
    accept = signed(phone_key, "accept", a, b, "c-dev")
    phone.send("accept", accept, to=b)
    got = caller.next(setup, what="the accept")
    body = got["body"]
    s.check(sec, "the caller gets the device's accept with the owner key and its endorsement added",
            body.get("payload") == accept["payload"] and body.get("key") == phone_key.public and body.get("owner") == owner_key.public
            and verify(owner_key.public, body.get("endorsement", ""), f"meshnode.v1 device\n{a}\n{phone_key.public}"), json.dumps(got)[:300])
    elsewhere = owner.next(lambda m: m["type"] == "answered-elsewhere", what="answered-elsewhere")
    s.expect(sec, "the other device gets answered-elsewhere", elsewhere["body"], {"call": "c-dev", "answer": "accept"})
    id_ = owner.send("accept", signed(owner_key, "accept", a, b, "c-dev"), to=b)
    s.expect(sec, "a second device's accept gets forbidden", owner.error_code(id_), "forbidden")
    caller.send("hangup", signed(caller.key, "hangup", b, a, "c-dev"), to=a)

    id_ = owner.send("revoke", {"key": phone_key.public})
    s.expect(sec, "the owner's revoke is acked", owner.reply(id_)["type"], "ack")
    code_, closed = None, False
    try:
        code_ = phone.next(lambda m: m["type"] == "error")["body"].get("code")
        phone.next(timeout=2)
    except Closed:
        closed = True
    except Timeout:
        pass
    s.check(sec, "the revoked device gets revoked and is closed", code_ == "revoked" and closed, f"code {code_}, closed {closed}")
    again = s.client()
    id_ = again.send("login", again.login_body(a, phone_key))
    s.expect(sec, "the revoked key's login gets name-taken", again.error_code(id_), "name-taken")


GROUPS = [("transport", transport), ("envelope", envelope), ("login", login), ("presence", presence), ("rooms", rooms),
          ("chat", chat), ("calls", calls), ("devices", devices), ("links", links), ("limits", limits)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--node", required=True, help="ws://HOST:PORT/ws")
    parser.add_argument("--only", action="append", help="run only these groups: " + ", ".join(n for n, _ in GROUPS))
    parser.add_argument("--verbose", action="store_true", help="print every message received")
    args = parser.parse_args()
    suite = Suite(args.node, args.verbose)
    started = time.monotonic()
    for name, run in GROUPS:
        if args.only and name not in args.only:
            continue
        try:
            run(suite)
        except Exception as error:  # a check group that broke off counts as one failure
            suite.check(name, "the group ran to its end", False, f"{type(error).__name__}: {error}")
        finally:
            suite.close_all()
    print(f"{suite.passed} passed, {suite.failed} failed in {time.monotonic() - started:.1f} s")
    sys.exit(1 if suite.failed else 0)


if __name__ == "__main__":
    main()
