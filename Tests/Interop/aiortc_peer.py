#!/usr/bin/env python3
"""aiortc as the remote WebRTC peer of meshnode's interop test (Tests/MediaTests/Transport).

Protocol, one JSON object per line:
  stdin  <- {"type": "offer", "sdp": "..."}   meshnode's offer (all candidates, no trickle)
  stdout -> {"type": "answer", "sdp": "..."}  aiortc's answer after gathering
or
  stdin  <- {"type": "create-offer"}          aiortc offers, meshnode answers
  stdout -> {"type": "offer", "sdp": "..."}
  stdin  <- {"type": "answer", "sdp": "..."}
  stdin  <- {"type": "stats"}                 any number of times, while the call runs
  stdout -> {"type": "stats", ...}            what aiortc has seen so far (the fields of result)
  stdin  <- {"type": "stop"}                  (or EOF) when meshnode has finished
  stdout -> {"type": "result", ...}           what aiortc saw: ICE/DTLS states, RTP counters,
                                              decoded audio frames, the loss meshnode's RTCP
                                              receiver reports announced

aiortc sends an Opus audio track (aiortc's silence generator, encoded by aiortc) and decodes
what meshnode sends. It never gathers 127.0.0.1; we point its host gathering at 127.0.0.2,
another loopback address that needs no setup on Linux, and give it no STUN server, so
nothing leaves the machine.
"""

import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

HOST_ADDRESS = "127.0.0.2"


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def read_message(reader):
    line = await reader.readline()
    if not line:
        return None
    return json.loads(line)


async def main():
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [HOST_ADDRESS] if use_ipv4 else []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames = {"decoded": 0, "samples": 0}
    consumers = []

    @pc.on("track")
    def on_track(track):
        async def consume():
            try:
                while True:
                    frame = await track.recv()
                    frames["decoded"] += 1
                    frames["samples"] += frame.samples
            except MediaStreamError:
                pass

        consumers.append(asyncio.ensure_future(consume()))

    first = await read_message(reader)
    if first is not None and first.get("type") == "offer":
        # meshnode offers (a=setup:actpass, ICE controlling); aiortc answers (a=setup:active).
        await pc.setRemoteDescription(RTCSessionDescription(sdp=first["sdp"], type="offer"))
        pc.addTrack(AudioStreamTrack())
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"type": "answer", "sdp": pc.localDescription.sdp})
    elif first is not None and first.get("type") == "create-offer":
        # aiortc offers (a=setup:actpass, ICE controlling); meshnode answers.
        pc.addTrack(AudioStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await read_message(reader)
        if answer is None or answer.get("type") != "answer":
            emit({"type": "error", "reason": "expected an answer"})
            return 1
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    else:
        emit({"type": "error", "reason": "expected an offer or create-offer first"})
        return 1

    async def report(kind):
        stats = await pc.getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
        # Built by aiortc from the receiver reports meshnode sends over SRTCP.
        remote_inbound = [s for s in stats.values() if s.type == "remote-inbound-rtp"]
        dtls_state = None
        srtp_profile = None
        for transceiver in pc.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is not None:
                dtls_state = dtls.state
                ssl = getattr(dtls, "_ssl", None)
                if ssl is not None and ssl.get_selected_srtp_profile():
                    srtp_profile = ssl.get_selected_srtp_profile().decode()
        emit({
            "type": kind,
            "iceState": pc.iceConnectionState,
            "dtlsState": dtls_state,
            "srtpProfile": srtp_profile,
            "packetsReceived": sum(s.packetsReceived for s in inbound),
            "packetsSent": sum(s.packetsSent for s in outbound),
            "framesDecoded": frames["decoded"],
            "reportedLost": remote_inbound[0].packetsLost if remote_inbound else None,
        })

    # The call runs until meshnode says stop (the generous limit only ends an abandoned run).
    while True:
        try:
            message = await asyncio.wait_for(read_message(reader), timeout=300)
        except asyncio.TimeoutError:
            break
        if message is None or message.get("type") == "stop":
            break
        if message.get("type") == "stats":
            await report("stats")

    await report("result")
    for consumer in consumers:
        consumer.cancel()
    await pc.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
