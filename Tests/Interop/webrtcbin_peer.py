#!/usr/bin/python3
"""GStreamer's webrtcbin as a meshnode peer, written from docs/protocol.md and docs/calls.md only
(issue 18 item 2): its own Ed25519 identity, login, presence, signed call setup, trickle ICE,
and media both ways — Opus and VP8 from GStreamer's test sources out, everything received
decoded by GStreamer's own decoders and counted.

  webrtcbin_peer.py --node ws://127.0.0.1:8080/ws --name gst call bob --kind video --seconds 4
  webrtcbin_peer.py --node ws://127.0.0.1:8080/ws --name gst answer --seconds 4 --wait 60

Runs with Debian's python3 (`/usr/bin/python3`): GStreamer's bindings (python3-gi,
gir1.2-gst-plugins-bad-1.0), websockets and cryptography are Debian packages there
(`make test-deps`). Prints one JSON object per line; the last is `{"event":"result",...}` with
what arrived, exit 0 only when media arrived in every negotiated direction this side can see
(audio and, for video calls, video decoded here) and the other party sent RTCP.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import sys
import threading
import time
import urllib.parse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

import websockets  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat  # noqa: E402

START = time.monotonic()
# Objects whose Python wrappers must outlive everything (see Media.__init__).
KEPT = []
# docs/protocol.md "Freshness and replays": ±120 s.
WINDOW = 120
# Every wait is bounded (seconds).
EVENT_TIMEOUT = 30


def emit(event, **fields):
    print(json.dumps({"event": event, "t": round(time.monotonic() - START, 3), **fields}), flush=True)


class Failure(Exception):
    pass


class Identity:
    """An Ed25519 key (RFC 8032); keys and signatures travel as standard base64. With a file,
    the CLI's identity format (docs/protocol.md "Trust on first use": the header line and the
    base64 32-byte seed), made there on first use; without one, a fresh key per run."""

    HEADER = "meshnode-identity v1 ed25519"

    def __init__(self, path=None):
        if path and os.path.exists(path):
            with open(path) as file:
                lines = file.read().split("\n")
            if lines[0].strip() != self.HEADER:
                raise Failure(f"{path} is not a meshnode identity (first line {lines[0][:40]!r})")
            self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(lines[1].strip()))
        else:
            self._key = Ed25519PrivateKey.generate()
            if path:
                seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(f"{self.HEADER}\n{base64.b64encode(seed).decode()}\n")
        self.public = base64.b64encode(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()

    def sign(self, text):
        return base64.b64encode(self._key.sign(text.encode())).decode()


def verify(key, sig, text):
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(base64.b64decode(sig), text.encode())
        return True
    except (InvalidSignature, ValueError):
        return False


def authority(url):
    """`host:port` as the login signs it: host in lower case, IPv6 in brackets, port always written."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname.lower()
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Media:
    """The webrtcbin pipeline: test sources out (Opus/111, VP8/96), decoders in, counters."""

    def __init__(self, kind, loop, on_candidate, on_gathered, addresses=()):
        self.kind = kind
        self.loop = loop
        self.received = {"audio": {"rtpBuffers": 0, "decoded": 0}, "video": {"rtpBuffers": 0, "decoded": 0, "width": 0, "height": 0}}
        self.first_decoded = {}
        self.lock = threading.Lock()
        self.pipeline = Gst.Pipeline.new("peer")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        # docs/protocol.md "Offer, answer and candidates": BUNDLE, rtcp-mux.
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        # Host candidates on these addresses only (as the CLI's --ice-address): libnice leaves
        # out loopback unless told, and webrtcbin's agent pairs no 127.0.0.1 candidate of the
        # peer with its other addresses.
        # PyGObject drops a reference it does not own when its wrapper of webrtcbin's
        # `ice-agent` dies (GStreamer 1.22, python3-gi 3.42): the wrapper is kept for the life of
        # the process, or the agent is freed under webrtcbin.
        if addresses:
            self.ice = self.webrtc.get_property("ice-agent")
            KEPT.append(self.ice)
            for address in addresses:
                self.ice.emit("add-local-ip-address", address)
        self._add_source("audio")
        if kind == "video":
            self._add_source("video")
        self.webrtc.connect("on-ice-candidate", lambda _w, index, candidate: loop.call_soon_threadsafe(on_candidate, index, candidate))
        self.webrtc.connect("notify::ice-gathering-state", self._gathering_changed(on_gathered))
        self.webrtc.connect("pad-added", self._incoming_pad)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _b, m: loop.call_soon_threadsafe(self._error, m))
        self.errors = []

    def _error(self, message):
        error, debug = message.parse_error()
        self.errors.append(f"{error.message} ({debug})"[:300])
        emit("gst-error", error=self.errors[-1])

    def _gathering_changed(self, on_gathered):
        def changed(webrtc, _spec):
            if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
                self.loop.call_soon_threadsafe(on_gathered)
        return changed

    def _add_source(self, kind):
        if kind == "audio":
            description = ("audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "
                           "! opusenc bitrate=32000 ! rtpopuspay pt=111 ! capsfilter caps=application/x-rtp,media=audio,encoding-name=OPUS,payload=111")
        else:
            description = ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert "
                           "! vp8enc deadline=1 cpu-used=8 target-bitrate=300000 keyframe-max-dist=30 ! rtpvp8pay pt=96 "
                           "! capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,payload=96")
        source = Gst.parse_bin_from_description(description, True)
        self.pipeline.add(source)
        source.link(self.webrtc)

    def _incoming_pad(self, _webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_value("media") if caps and caps.get_size() else None
        kind = "video" if media == "video" else "audio"

        def count_rtp(_pad, _info):
            with self.lock:
                self.received[kind]["rtpBuffers"] += 1
            return Gst.PadProbeReturn.OK
        pad.add_probe(Gst.PadProbeType.BUFFER, count_rtp)
        if kind == "video":
            chain = "rtpvp8depay ! vp8dec ! videoconvert ! fakesink name=sink sync=false async=false"
        else:
            chain = "rtpopusdepay ! opusdec ! audioconvert ! fakesink name=sink sync=false async=false"
        decode = Gst.parse_bin_from_description(chain, True)
        sink = decode.get_by_name("sink")

        def count_decoded(sink_pad, _info):
            with self.lock:
                entry = self.received[kind]
                entry["decoded"] += 1
                if kind not in self.first_decoded:
                    self.first_decoded[kind] = time.monotonic()
                if kind == "video" and not entry["width"]:
                    current = sink_pad.get_current_caps()
                    if current:
                        structure = current.get_structure(0)
                        entry["width"], entry["height"] = structure.get_value("width"), structure.get_value("height")
            return Gst.PadProbeReturn.OK
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count_decoded)
        self.pipeline.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def start(self):
        self.pipeline.set_state(Gst.State.PLAYING)

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.received))

    async def _promise(self, signal, *args):
        """Emits a webrtcbin action signal that answers with a GstPromise; awaits its reply."""
        future = self.loop.create_future()

        def done(promise):
            reply = promise.get_reply()
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(reply))
        self.webrtc.emit(signal, *args, Gst.Promise.new_with_change_func(done))
        return await asyncio.wait_for(future, EVENT_TIMEOUT)

    async def create(self, what):
        reply = await self._promise(f"create-{what}", None)
        description = reply.get_value(what)
        await self._promise("set-local-description", description)
        return description.sdp.as_text()

    async def set_remote(self, sdp_type, text):
        result, message = GstSdp.SDPMessage.new_from_text(text)
        if result != GstSdp.SDPResult.OK:
            raise Failure(f"GStreamer cannot parse the peer's SDP ({result})")
        kind = GstWebRTC.WebRTCSDPType.OFFER if sdp_type == "offer" else GstWebRTC.WebRTCSDPType.ANSWER
        await self._promise("set-remote-description", GstWebRTC.WebRTCSessionDescription.new(kind, message))

    def add_candidate(self, index, candidate):
        self.webrtc.emit("add-ice-candidate", index, candidate)

    def local_mids(self):
        description = self.webrtc.get_property("local-description")
        if description is None:
            return []
        text = description.sdp.as_text()
        return re.findall(r"^a=mid:(\S+)", text, re.MULTILINE)


class Peer:
    """One signaling connection and at most one call."""

    def __init__(self, args):
        self.args = args
        self.identity = Identity(args.identity)
        self.node = authority(args.node)
        self.ws = None
        self.pins = {}  # name -> key (trust on first use, docs/protocol.md)
        self.replays = {}  # (key, payload) -> ts
        self.inbox = asyncio.Queue(maxsize=1000)
        self.call = None
        self.media = None
        self.loop = asyncio.get_running_loop()
        self.gathered = asyncio.Event()
        self.remote_set = False
        self.remote_gathering_done = False
        self.pending_candidates = []
        self.description_sent = False
        self.local_candidates = []
        self.times = {}
        self.peer_rtcp = 0

    async def send(self, type_, to, body):
        id_ = base64.b32encode(os.urandom(10)).decode().lower()
        await self.ws.send(json.dumps({"type": type_, "id": id_, "from": self.args.name, "to": to, "body": body}))
        return id_

    async def send_signed(self, type_, **fields):
        """A call-setup message: the payload as JSON text, signed with the context line."""
        payload = {"type": type_, "from": self.args.name, "to": self.call["peer"], "call": self.call["id"], "ts": time.time(), **fields}
        text = json.dumps(payload, separators=(",", ":"))
        body = {"payload": text, "key": self.identity.public, "sig": self.identity.sign("meshnode.v1 call-setup\n" + text)}
        await self.send(type_, self.call["peer"], body)

    async def reader(self):
        async for text in self.ws:
            message = json.loads(text)
            if message["type"] == "error":
                emit("node-error", body=message["body"])
            await self.inbox.put(message)

    async def heartbeat(self, interval):
        while True:
            await asyncio.sleep(interval / 2)
            await self.send("ping", "@node", {})

    async def next(self, match, what, timeout=EVENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failure(f"timed out after {timeout} s waiting for {what}")
            try:
                message = await asyncio.wait_for(self.inbox.get(), remaining)
            except asyncio.TimeoutError:
                raise Failure(f"timed out after {timeout} s waiting for {what}") from None
            if match(message):
                return message
            self.handle_other(message)

    def handle_other(self, message):
        if message["type"] == "presence" and message["body"].get("key"):
            self.pin(message["body"]["name"], message["body"]["key"])

    def pin(self, name, key):
        pinned = self.pins.setdefault(name, key)
        if pinned != key:
            raise Failure(f"key-changed: {name} now signs with {key}, pinned {pinned}")

    def open_body(self, message):
        """Checks a call-setup message as docs/protocol.md says a receiver must: the signature,
        then `ts` (±120 s), then the key pin, then replays; the payload must match the envelope."""
        body = message["body"]
        payload_text, key, sig = body.get("payload"), body.get("key"), body.get("sig")
        if not all(isinstance(v, str) for v in (payload_text, key, sig)):
            raise Failure(f"call-setup body without payload/key/sig: {body}")
        if not verify(key, sig, "meshnode.v1 call-setup\n" + payload_text):
            raise Failure(f"bad-signature on a {message['type']} from {message['from']}")
        payload = json.loads(payload_text)
        if abs(time.time() - payload.get("ts", 0)) > WINDOW:
            raise Failure(f"stale {message['type']} from {message['from']}")
        sender = message["from"].split("@")[0]
        if payload.get("type") != message["type"] or payload.get("from", "").split("@")[0] != sender \
                or payload.get("to", "").split("@")[0] != self.args.name:
            raise Failure(f"payload does not match the envelope: {payload_text}")
        self.pin(message["from"], key)
        digest = (key, payload_text)
        now = time.time()
        for old in [d for d, ts in self.replays.items() if abs(now - ts) > WINDOW]:
            del self.replays[old]
        if digest in self.replays or len(self.replays) >= 4096:
            raise Failure(f"replayed {message['type']} from {message['from']}")
        self.replays[digest] = payload.get("ts", now)
        return payload

    async def login(self):
        self.ws = await asyncio.wait_for(websockets.connect(self.args.node, subprotocols=["meshnode.v1"], max_size=1 << 20), EVENT_TIMEOUT)
        challenge = json.loads(await asyncio.wait_for(self.ws.recv(), EVENT_TIMEOUT))
        if challenge["type"] != "challenge":
            raise Failure(f"expected a challenge, got {challenge}")
        nonce = challenge["body"]["nonce"]
        started = time.monotonic()
        sig = self.identity.sign(f"meshnode.v1 login\n{nonce}\n{self.args.name}\n{self.node}")
        await self.send("login", "@node", {"name": self.args.name, "key": self.identity.public, "node": self.node, "sig": sig})
        welcome = json.loads(await asyncio.wait_for(self.ws.recv(), EVENT_TIMEOUT))
        if welcome["type"] != "welcome":
            raise Failure(f"login refused: {welcome['body']}")
        self.ice_servers = welcome["body"].get("iceServers", [])
        asyncio.ensure_future(self.reader())
        asyncio.ensure_future(self.heartbeat(welcome["body"].get("heartbeat", 15)))
        emit("logged-in", name=self.args.name, key=self.identity.public, loginMs=round((time.monotonic() - started) * 1000))

    def start_media(self, kind):
        self.media = Media(kind, self.loop, self.local_candidate, self.gathered.set, self.args.ice_address)
        # The node's STUN server (welcome.iceServers, RFC 7064 URL): server-reflexive candidates.
        for server in self.ice_servers:
            for url in server.get("urls", []):
                match = re.match(r"^stun:(\d+\.\d+\.\d+\.\d+):(\d+)$", url)
                if match and not self.media.webrtc.get_property("stun-server"):
                    self.media.webrtc.set_property("stun-server", f"stun://{match.group(1)}:{match.group(2)}")
        self.media.start()

    def local_candidate(self, index, candidate):
        """Trickled only after our description went out (a peer drops earlier ones)."""
        if self.description_sent:
            asyncio.ensure_future(self.send_candidate(index, candidate))
        else:
            self.local_candidates.append((index, candidate))

    async def send_candidate(self, index, candidate):
        if self.args.verbose:
            emit("out", candidate=candidate, index=index)
        # docs/protocol.md: RTCIceCandidateInit; under BUNDLE every candidate is for the
        # transport of the first m-line.
        mids = self.media.local_mids()
        await self.send_signed("candidate", candidate={"candidate": candidate, "sdpMid": mids[index] if index < len(mids) else str(index),
                                                       "sdpMLineIndex": index})

    async def description_out(self, sdp_type, sdp):
        if self.args.verbose:
            emit("out", sdpType=sdp_type, sdp=sdp)
        await self.send_signed("sdp", sdpType=sdp_type, sdp=sdp)
        self.description_sent = True
        for index, candidate in self.local_candidates:
            await self.send_candidate(index, candidate)
        self.local_candidates.clear()
        asyncio.ensure_future(self.end_of_candidates())

    async def end_of_candidates(self):
        try:
            await asyncio.wait_for(self.gathered.wait(), EVENT_TIMEOUT)
        except asyncio.TimeoutError:
            return
        mids = self.media.local_mids()
        await self.send_signed("candidate", candidate={"candidate": "", "sdpMid": mids[0] if mids else "0", "sdpMLineIndex": 0})

    async def remote_candidate(self, candidate):
        text = candidate.get("candidate", "")
        # As strict as a browser (webrtc-pc addIceCandidate): an sdpMid must name a section of
        # the session, end-of-candidates included.
        mid = candidate.get("sdpMid")
        mids = self.media.local_mids()
        if mid is not None and mids and mid not in mids:
            raise Failure(f"a candidate names sdpMid {mid!r}, which the session does not have ({mids}): {candidate}")
        if not text:
            self.remote_gathering_done = True
            return
        # Under BUNDLE a candidate is for the bundle's transport, whatever its sdpMid says.
        if not self.remote_set:
            self.pending_candidates.append(text)
        else:
            self.media.add_candidate(0, text)

    async def remote_description(self, payload):
        await self.media.set_remote(payload["sdpType"], payload["sdp"])
        self.remote_set = True
        for text in self.pending_candidates:
            self.media.add_candidate(0, text)
        self.pending_candidates.clear()

    def call_message(self, message):
        return message["type"] in ("accept", "reject", "busy", "cancel", "hangup", "sdp", "candidate", "timeout") \
            and (message["type"] == "timeout" or message["from"].split("@")[0] == self.call["peer"])

    async def run_call(self, until):
        """Handles the call's messages until `until` (monotonic) or its end; returns why it ended."""
        while time.monotonic() < until:
            try:
                message = await self.next(self.call_message, "call messages", timeout=max(0.1, until - time.monotonic()))
            except Failure:
                return "done"
            if message["type"] == "timeout":
                if message["body"].get("call") == self.call["id"] and "media" not in self.times:
                    return "timeout"
                continue
            payload = self.open_body(message)
            if payload.get("call") != self.call["id"]:
                continue
            kind = message["type"]
            if self.args.verbose:
                emit("in", type=kind, payload={k: v for k, v in payload.items() if k != "sdp"}, sdp=payload.get("sdp"))
            if kind in ("hangup", "cancel", "reject", "busy"):
                return f"{kind} by {message['from']}: {payload.get('reason', '')}"
            if kind == "sdp":
                await self.remote_description(payload)
                if payload["sdpType"] == "offer":
                    answer = await self.media.create("answer")
                    await self.description_out("answer", answer)
            elif kind == "candidate":
                await self.remote_candidate(payload.get("candidate") or {})
            self.media_check()
        return "done"

    def media_check(self):
        received = self.media.snapshot()
        wanted = ["audio", "video"] if self.call["kind"] == "video" else ["audio"]
        if "media" not in self.times and all(received[k]["decoded"] > 0 for k in wanted):
            self.times["media"] = time.monotonic()
            emit("media", received=received, setupMs=round((self.times["media"] - self.times["request"]) * 1000))

    async def media_phase(self, seconds):
        """Keeps the call until media arrived and then `seconds` more (bounded by EVENT_TIMEOUT)."""
        deadline = time.monotonic() + EVENT_TIMEOUT
        ended = None
        while "media" not in self.times and time.monotonic() < deadline and ended is None:
            ended = await self.run_call(min(deadline, time.monotonic() + 0.25))
            ended = None if ended == "done" else ended
            self.media_check()
        if "media" not in self.times:
            raise Failure(f"no media decoded within {EVENT_TIMEOUT} s (ended: {ended}; received {self.media.snapshot()}; errors {self.media.errors})")
        if ended is None:
            ended = await self.run_call(time.monotonic() + seconds)
        return ended

    def result(self, ended):
        received = self.media.snapshot()
        return {"call": self.call["id"], "kind": self.call["kind"], "peer": self.call["peer"], "ended": ended,
                "setupMs": round((self.times["media"] - self.times["request"]) * 1000) if "media" in self.times else None,
                "received": received, "remoteEndOfCandidates": self.remote_gathering_done, "connectionState": self.media.webrtc.get_property("connection-state").value_nick,
                "errors": self.media.errors}

    async def place(self, to, kind, seconds):
        await self.send("subscribe", "@node", {"names": [to]})
        online = await self.next(lambda m: m["type"] == "presence" and m["body"]["name"] == to and m["body"]["status"] == "online",
                                 f"{to} online", timeout=self.args.wait)
        # Trust on first use: the key the node vouches for is the one the callee must sign with.
        if online["body"].get("key"):
            self.pin(to, online["body"]["key"])
        self.call = {"id": "gst-" + base64.b32encode(os.urandom(10)).decode().lower(), "peer": to, "kind": kind}
        self.times["request"] = time.monotonic()
        await self.send_signed("call", kind=kind, ring=30)
        answer = await self.next(lambda m: m["type"] in ("accept", "reject", "busy", "timeout") and
                                 (m["type"] == "timeout" or m["from"].split("@")[0] == to), "the answer")
        if answer["type"] == "timeout":
            raise Failure("the call was not answered (node timeout)")
        payload = self.open_body(answer)
        if answer["type"] != "accept":
            raise Failure(f"{answer['type']} by {to}: {payload.get('reason', '')}")
        emit("accepted", call=self.call["id"])
        # docs/protocol.md: only after `accept` does the caller send the offer.
        self.start_media(kind)
        offer = await self.media.create("offer")
        await self.description_out("offer", offer)
        ended = await self.media_phase(seconds)
        if ended == "done":
            await self.send_signed("hangup", reason="hangup")
        return self.result(ended)

    async def answer(self, seconds):
        message = await self.next(lambda m: m["type"] == "call", "a call", timeout=self.args.wait)
        payload = self.open_body(message)
        self.call = {"id": payload["call"], "peer": message["from"], "kind": payload.get("kind", "video")}
        self.times["request"] = time.monotonic()
        emit("call", call=self.call["id"], peer=self.call["peer"], kind=self.call["kind"])
        # The callee's sources wait in webrtcbin's transceivers for the caller's offer.
        self.start_media("video" if self.call["kind"] != "audio" else "audio")
        await self.send_signed("accept")
        ended = await self.media_phase(seconds)
        if ended == "done":
            await self.send_signed("hangup", reason="hangup")
        return self.result(ended)


async def main_async(args):
    peer = Peer(args)
    await peer.login()
    try:
        if args.mode == "call":
            result = await peer.place(args.to, args.kind, args.seconds)
        else:
            result = await peer.answer(args.seconds)
    finally:
        if peer.media:
            peer.media.stop()
        await peer.ws.close()
    wanted = ["audio", "video"] if result["kind"] == "video" else ["audio"]
    if result["kind"] == "desktop":
        wanted = []
    missing = [k for k in wanted if result["received"][k]["decoded"] == 0]
    if missing:
        raise Failure(f"nothing decoded for {missing}: {result}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node", required=True, help="ws://HOST:PORT/ws")
    parser.add_argument("--name", required=True)
    parser.add_argument("--identity", help="the key file (the CLI's format; made if missing); default a fresh key")
    parser.add_argument("--ice-address", action="append", default=[], help="gather host candidates on this address only (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="print every call-setup message in and out")
    parser.add_argument("--wait", type=float, default=60, help="how long to wait for the peer or the call")
    modes = parser.add_subparsers(dest="mode", required=True)
    call = modes.add_parser("call", help="call TO once it is online")
    call.add_argument("to")
    call.add_argument("--kind", choices=["audio", "video"], default="video")
    call.add_argument("--seconds", type=float, default=4)
    answer = modes.add_parser("answer", help="accept the first call")
    answer.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args()
    Gst.init(None)
    # GStreamer's bus signal watch needs a GLib main loop; it runs beside asyncio.
    glib_loop = GLib.MainLoop()
    threading.Thread(target=glib_loop.run, daemon=True).start()
    try:
        result = asyncio.run(asyncio.wait_for(main_async(args), args.wait + 3 * EVENT_TIMEOUT + 60))
    except Failure as failure:
        emit("failed", reason=str(failure))
        os._exit(1)
    except asyncio.TimeoutError:
        emit("failed", reason="the whole run timed out")
        os._exit(1)
    finally:
        glib_loop.quit()
    emit("result", ok=True, **result)
    # No interpreter teardown: it would free the kept ice-agent wrapper (Media.__init__) and
    # with it a reference webrtcbin still counts on.
    os._exit(0)


if __name__ == "__main__":
    main()
