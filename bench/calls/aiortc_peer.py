#!/usr/bin/env python3
"""One aiortc peer of the call benchmark's reference (bench/calls/run starts two of them).

It sends the same kind of video as `meshnode call`: a 640x360@30 moving picture with the frame
number and the send wall-clock time drawn into its top rows as meshnode's test-pattern code
(Sources/Codecs/Sources/TestPatternCode.swift), plus an Opus audio track (aiortc's silence). It
reads the code back from every decoded frame and keeps decode wall time minus send time.

Protocol with bench/calls/run, one JSON object per line:
  stdout -> {"type": "ready"}                      imported and listening
  stdin  <- {"type": "go"}                         (offerer) the call request: createOffer now
  stdout -> {"type": "offer", "sdp": ...}          (offerer) after aiortc gathered (no trickle)
  stdin  <- {"type": "offer", "sdp": ...}          (answerer)
  stdout -> {"type": "answer", "sdp": ...}         (answerer)
  stdin  <- {"type": "answer", "sdp": ...}         (offerer)
  stdout -> {"type": "media"}                      (offerer) first frame decoded; the call runs
                                                   --duration seconds from here
  stdout -> {"type": "done"}                       (offerer) the duration is over
  stdin  <- {"type": "stop"}                       close the connection, report
  stdout -> {"type": "result", ...}                times, latencies, CPU, counters

aiortc never gathers 127.0.0.1 (FIELD-NOTES.md): each peer gathers on its own other loopback
address (--address, 127.0.0.2 / 127.0.0.3), which needs no setup on Linux; no STUN, no TURN.
"""

import argparse
import asyncio
import json
import resource
import sys
import time

import aioice.ice
import numpy
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from av import VideoFrame

CELLS_PER_ROW = 32
ROWS = 3
BLACK, WHITE = 16, 235


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the test-pattern code


def crc16(bits):
    """CRC-16/CCITT (polynomial 0x1021, initial 0xFFFF) over bits, first bit first."""
    crc = 0xFFFF
    for bit in bits:
        feedback = ((crc >> 15) & 1) != bit
        crc = (crc << 1) & 0xFFFF
        if feedback:
            crc ^= 0x1021
    return crc


def code_bits(frame_number, send_ms):
    """The 96 cells, least significant bit first: frame number (32), send time ms (48), CRC (16)."""
    bits = [(frame_number >> i) & 1 for i in range(32)] + [(send_ms >> i) & 1 for i in range(48)]
    crc = crc16(bits)
    return bits + [(crc >> i) & 1 for i in range(16)]


def cell_size(width):
    return max(4, (width // CELLS_PER_ROW) & ~1)


def draw_code(y, u, v, frame_number, send_ms):
    """Draws the code into the luma plane `y` (and neutral chroma under the band) in place."""
    width = y.shape[1]
    cell = cell_size(width)
    cells = numpy.array(code_bits(frame_number, send_ms), dtype=numpy.uint8).reshape(ROWS, CELLS_PER_ROW)
    band = numpy.where(cells == 1, WHITE, BLACK).astype(numpy.uint8)
    y[: ROWS * cell, : CELLS_PER_ROW * cell] = numpy.kron(band, numpy.ones((cell, cell), dtype=numpy.uint8))
    chroma_rows = (ROWS * cell + 1) // 2
    u[:chroma_rows, :] = 128
    v[:chroma_rows, :] = 128


def read_code(y):
    """(frame number, send ms) from a decoded luma plane, or None when the CRC does not match."""
    height, width = y.shape
    cell = cell_size(width)
    if width < CELLS_PER_ROW * 4 or height < ROWS * cell + 8:
        return None
    inset = cell // 4
    band = y[: ROWS * cell, : CELLS_PER_ROW * cell].astype(numpy.int32)
    blocks = band.reshape(ROWS, cell, CELLS_PER_ROW, cell)[:, inset : cell - inset, :, inset : cell - inset]
    # Integer mean of each cell's inner square, as the Swift reader does.
    side = cell - 2 * inset
    means = blocks.sum(axis=(1, 3)) // (side * side)
    bits = (means.reshape(-1) > (BLACK + WHITE) // 2).astype(int).tolist()
    number = sum(bit << i for i, bit in enumerate(bits[0:32]))
    send_ms = sum(bit << i for i, bit in enumerate(bits[32:80]))
    crc = sum(bit << i for i, bit in enumerate(bits[80:96]))
    if crc16(bits[0:80]) != crc:
        return None
    return number, send_ms


# ---------------------------------------------------------------- the video track


class PatternTrack(VideoStreamTrack):
    """A moving picture (sliding luma ramp, bouncing box, drifting colour bars, like meshnode's
    TestPatternVideoSource) stamped with the frame number and the wall-clock send time."""

    def __init__(self, width, height):
        super().__init__()
        self.width, self.height = width, height
        rows = numpy.arange(height, dtype=numpy.int32)[:, None]
        columns = numpy.arange(width, dtype=numpy.int32)[None, :]
        self.diagonal = columns + 2 * rows
        self.chroma_columns = numpy.arange((width + 1) // 2, dtype=numpy.int32)
        bars = [(128, 128), (44, 142), (156, 44), (72, 58), (184, 198), (212, 114), (100, 212), (128, 128)]
        self.bars_u = numpy.array([b[0] for b in bars], dtype=numpy.uint8)
        self.bars_v = numpy.array([b[1] for b in bars], dtype=numpy.uint8)
        self.number = 0

    @staticmethod
    def bounce(position, span):
        phase = position % (2 * span)
        return phase if phase < span else 2 * span - phase

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        n = self.number
        self.number += 1
        width, height = self.width, self.height
        t = (self.diagonal + 3 * n) & 511
        y = (40 + numpy.where(t < 256, t, 511 - t) * 150 // 255).astype(numpy.uint8)
        box = max(8, min(width, height) // 6)
        bx = self.bounce(n * 4, max(1, width - box))
        by = self.bounce(n * 3, max(1, height - box))
        y[by : by + box, bx : bx + box] = 225
        chroma_width, chroma_height = (width + 1) // 2, (height + 1) // 2
        bar = ((self.chroma_columns + n) * len(self.bars_u) // chroma_width) % len(self.bars_u)
        u = numpy.repeat(self.bars_u[bar][None, :], chroma_height, axis=0)
        v = numpy.repeat(self.bars_v[bar][None, :], chroma_height, axis=0)
        # The send time is taken when the picture is handed to the encoder, as meshnode does.
        draw_code(y, u, v, n, int(time.time() * 1000))
        planes = numpy.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(height * 3 // 2, width)
        frame = VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = pts
        frame.time_base = time_base
        return frame


# ---------------------------------------------------------------- the peer


class Receiver:
    """What one peer decodes: first-frame time, per-frame latencies, counters."""

    def __init__(self):
        self.first_video_wall = None
        self.first_frame = asyncio.Event()
        self.latencies = []
        self.video_frames = 0
        self.unreadable = 0
        self.audio_frames = 0
        self.tasks = []

    def on_track(self, track):
        self.tasks.append(asyncio.ensure_future(self.consume(track)))

    async def consume(self, track):
        try:
            while True:
                frame = await track.recv()
                now_ms = time.time() * 1000
                if track.kind != "video":
                    self.audio_frames += 1
                    continue
                self.video_frames += 1
                if self.first_video_wall is None:
                    self.first_video_wall = now_ms / 1000
                    self.first_frame.set()
                plane = frame.planes[0]
                luma = numpy.frombuffer(plane, dtype=numpy.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
                code = read_code(luma)
                if code is None:
                    self.unreadable += 1
                else:
                    self.latencies.append(now_ms - code[1])
        except MediaStreamError:
            pass


async def sent_video_bytes(pc):
    """Video bytes this peer has sent (aiortc's inbound stats carry no byte count)."""
    report = await pc.getStats()
    return sum(stats.bytesSent for stats in report.values() if stats.type == "outbound-rtp" and stats.kind == "video")


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["offer", "answer"], required=True)
    parser.add_argument("--address", required=True, help="loopback address to gather on (not 127.0.0.1)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of media after the first decoded frame")
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.address] if use_ipv4 else []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def read_message():
        line = await reader.readline()
        return json.loads(line) if line else {"type": "stop"}

    receiver = Receiver()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.on("track", receiver.on_track)
    ice_connected = {}

    @pc.on("iceconnectionstatechange")
    def on_ice():
        if pc.iceConnectionState == "completed" and "ice" not in ice_connected:
            ice_connected["ice"] = time.time()

    @pc.on("connectionstatechange")
    def on_connection():
        if pc.connectionState == "connected" and "dtls" not in ice_connected:
            ice_connected["dtls"] = time.time()

    emit({"type": "ready"})
    first = await read_message()
    start_wall, start_cpu = time.time(), cpu_seconds()
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(PatternTrack(width, height))
    if args.role == "offer":
        if first.get("type") != "go":
            return
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await read_message()
        if answer.get("type") != "answer":
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    else:
        if first.get("type") != "offer":
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=first["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"type": "answer", "sdp": pc.localDescription.sdp})

    stop = asyncio.ensure_future(read_message())
    sent_at_first_frame = {}

    async def sample_sent():
        await receiver.first_frame.wait()
        sent_at_first_frame["bytes"] = await sent_video_bytes(pc)
        sent_at_first_frame["wall"] = time.time()

    sampler = asyncio.ensure_future(sample_sent())
    if args.role == "offer":
        waiting = asyncio.ensure_future(receiver.first_frame.wait())
        await asyncio.wait([waiting, stop], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if receiver.first_frame.is_set():
            emit({"type": "media"})
            await asyncio.wait([stop], timeout=args.duration)
        emit({"type": "done"})
    await stop
    end_wall = time.time()
    sent_kbps = None
    if "wall" in sent_at_first_frame and end_wall > sent_at_first_frame["wall"]:
        sent_kbps = (await sent_video_bytes(pc) - sent_at_first_frame["bytes"]) * 8 / (end_wall - sent_at_first_frame["wall"]) / 1000
    sampler.cancel()
    await pc.close()
    for task in receiver.tasks:
        task.cancel()
    end_cpu = cpu_seconds()
    first_video = receiver.first_video_wall
    emit({
        "type": "result",
        "setupMs": (first_video - start_wall) * 1000 if first_video else None,
        "iceMs": (ice_connected["ice"] - start_wall) * 1000 if "ice" in ice_connected else None,
        "connectedMs": (ice_connected["dtls"] - start_wall) * 1000 if "dtls" in ice_connected else None,
        "latenciesMs": [round(x, 2) for x in receiver.latencies],
        "videoFrames": receiver.video_frames,
        "unreadable": receiver.unreadable,
        "audioFrames": receiver.audio_frames,
        "sentVideoKbps": sent_kbps,
        "mediaSeconds": end_wall - first_video if first_video else 0,
        "wallSeconds": end_wall - start_wall,
        "cpuSeconds": end_cpu - start_cpu,
    })


if __name__ == "__main__":
    asyncio.run(main())
