// The load side of `make bench-rooms` (bench/rooms/run): simulated room-call participants in one
// process, each a real WebRTC endpoint built from the project's own modules (libnice ICE,
// DTLS-SRTP, JSEP SDP, VP8/Opus encoded once and replayed). The runner speaks to the server under
// test (Janus's HTTP API, or a meshnode forwarder) and drives this process with one JSON object
// per line on stdin; this process answers with one JSON object per line on stdout.
//
//   {"op":"prepare","layers":3,"width":320,"height":180,"fps":15,"kbps":300,"seconds":4}
//   {"op":"offer","id":"p1"}                      -> {"event":"offer","id":"p1","sdp":…}
//   {"op":"accept","id":"p1","sdp":…}             -> {"event":"connected","id":"p1",…}; p1 sends
//   {"op":"answer","id":"s1","sdp":…,"send":false} -> {"event":"answer",…} then "connected"
//   {"op":"counts"}                               -> {"event":"counts","connections":{…}}
//   {"op":"close","id":"s1"}   {"op":"quit"}
//
// Every ICE agent gathers on one address only: `--address A` (the runner passes the address of the
// veth interface in the network namespace it made, since Janus's libnice leaves loopback out of
// its candidates), 127.0.0.1 without it. `room-bench --forwarder` is the other end: our
// forwarding core as a server (ForwarderHost.swift).

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SDP
import Synchronization


/// The one local address every ICE agent of this process gathers on (`--address`).
let benchAddress: String = {
    let arguments = CommandLine.arguments
    if let index = arguments.firstIndex(of: "--address"), index + 1 < arguments.count { return arguments[index + 1] }
    return "127.0.0.1"
}()

/// The connections and the replay, shared by the command tasks.
final class Room: Sendable {
    /// At most this many connections (20 participants, each a publisher and a subscriber, and
    /// some slack): a runner bug must not open thousands of agents.
    static let maxConnections = 48
    let connections = Mutex<[String: (connection: BenchConnection, sending: Sending?)]>([:])
    let replayer = Mutex<(Replayer, Task<Void, Never>)?>(nil)
    let layers = Mutex(1)

    func connection(_ id: String) throws -> (connection: BenchConnection, sending: Sending?) {
        guard let entry = connections.withLock({ $0[id] }) else { throw BenchError("no connection '\(id)'") }
        return entry
    }

    func insert(_ connection: BenchConnection, sending: Sending?) throws {
        try connections.withLock { connections in
            guard connections.count < Self.maxConnections else { throw BenchError("at most \(Self.maxConnections) connections") }
            connections[connection.id] = (connection, sending)
        }
    }

    func handle(_ command: [String: Any]) async throws {
        let op = command["op"] as? String ?? ""
        let id = command["id"] as? String ?? ""
        switch op {
        case "prepare":
            let layers = command["layers"] as? Int ?? 1
            guard (1...3).contains(layers) else { throw BenchError("layers must be 1-3") }
            let media = try EncodedMedia.encode(
                layers: layers, width: command["width"] as? Int ?? 320, height: command["height"] as? Int ?? 180,
                framesPerSecond: command["fps"] as? Int ?? 15, topKbps: command["kbps"] as? Int ?? 300,
                seconds: command["seconds"] as? Int ?? 4)
            let replayer = Replayer(media: media)
            let task = Task { await replayer.run() }
            self.layers.withLock { $0 = layers }
            self.replayer.withLock { $0 = (replayer, task) }
            emit(["event": "prepared",
                  "layers": media.layers.map { layer -> [String: Any] in
                      let packets = layer.frames.reduce(0) { $0 + $1.payloads.count }
                      let bytes = layer.frames.reduce(0) { $0 + $1.payloads.reduce(0) { $0 + $1.readableBytes } }
                      return ["width": layer.width, "height": layer.height, "kbps": layer.bitrateKbps,
                              "packetsPerSecond": Double(packets) * Double(media.framesPerSecond) / Double(layer.frames.count),
                              "bitsPerSecond": Double(bytes * 8) * Double(media.framesPerSecond) / Double(layer.frames.count)]
                  },
                  "audioPacketsPerSecond": 50])
        case "offer":
            let connection = try await BenchConnection.make(id: id, role: .controlling)
            let sending = Sending.random(layers: layers.withLock { $0 })
            try insert(connection, sending: sending)
            let offer = try await connection.offer(sending: sending)
            emit(["event": "offer", "id": id, "sdp": offer.serialized])
        case "accept":
            let (connection, sending) = try self.connection(id)
            let answer = try SessionDescription(parsing: command["sdp"] as? String ?? "")
            let began = ContinuousClock.now
            try await connection.accept(answer: answer)
            try await connection.connected(timeout: .seconds(20))
            if let sending {
                // A server that answered without our simulcast group takes only the top layer.
                let layers = Self.acceptedLayers(answer, sending: sending)
                replayer.withLock { $0?.0 }?.add(connection, sending: layers)
            }
            emit(["event": "connected", "id": id, "ms": Self.milliseconds(ContinuousClock.now - began)])
        case "answer":
            let offer = try SessionDescription(parsing: command["sdp"] as? String ?? "")
            let sends = command["send"] as? Bool ?? false
            let existing = connections.withLock { $0[id] }
            let connection: BenchConnection
            let sending: Sending?
            if let existing {
                connection = existing.connection
                sending = existing.sending
            } else {
                connection = try await BenchConnection.make(id: id, role: .controlled)
                sending = sends ? Sending.random(layers: layers.withLock { $0 }) : nil
                try insert(connection, sending: sending)
            }
            let began = ContinuousClock.now
            let answer = try await connection.answer(offer: offer, sending: sends ? sending : nil)
            emit(["event": "answer", "id": id, "sdp": answer.serialized])
            if existing == nil {
                try await connection.connected(timeout: .seconds(20))
                if sends, let sending { replayer.withLock { $0?.0 }?.add(connection, sending: sending) }
                emit(["event": "connected", "id": id, "ms": Self.milliseconds(ContinuousClock.now - began)])
            }
        case "counts":
            let all = connections.withLock { $0 }
            var result: [String: Any] = [:]
            for (id, entry) in all {
                let counters = entry.connection.snapshot
                let statistics = entry.connection.transport?.statistics
                result[id] = ["rtp": counters.rtp, "rtpBytes": counters.rtpBytes, "rtcp": counters.rtcp, "sent": counters.sent,
                              "sendErrors": counters.sendErrors, "authenticated": statistics?.rtpReceived ?? 0,
                              "authFailures": statistics?.authenticationFailures ?? 0, "failure": counters.failure ?? ""]
            }
            emit(["event": "counts", "connections": result])
        case "close":
            let (connection, _) = try self.connection(id)
            replayer.withLock { $0?.0 }?.remove(id)
            connections.withLock { _ = $0.removeValue(forKey: id) }
            await connection.close()
            emit(["event": "closed", "id": id])
        default:
            throw BenchError("unknown op '\(op)'")
        }
    }

    /// The SSRCs the answer left us sending: all layers if the server took simulcast (its answer
    /// does not refuse the video section; Janus answers a SIM group without echoing it), else the top.
    static func acceptedLayers(_ answer: SessionDescription, sending: Sending) -> Sending {
        guard answer.media.contains(where: { $0.kind == "video" && $0.port != 0 }) else {
            return Sending(audioSSRC: sending.audioSSRC, videoSSRCs: [])
        }
        return sending
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    func quit() async {
        replayer.withLock { $0?.1 }?.cancel()
        for entry in connections.withLock({ Array($0.values) }) { await entry.connection.close() }
    }
}

/// stdin lines, read on a thread of their own (a blocking read must not hold a pool thread).
let (lines, linesContinuation) = AsyncStream.makeStream(of: String.self)
Thread.detachNewThread { [linesContinuation] in
    while let line = readLine() { linesContinuation.yield(line) }
    linesContinuation.finish()
}

/// Parses one command line, or nil for one that is not a JSON object.
func parseCommand(_ line: String) -> [String: Any]? {
    guard let data = line.data(using: .utf8) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}

let forwarder = CommandLine.arguments.contains("--forwarder") ? ForwarderHost() : nil
let room = Room()
for await line in lines {
    guard let parsed = parseCommand(line) else {
        emit(["event": "error", "reason": "not a JSON object: \(line.prefix(80))"])
        continue
    }
    if parsed["op"] as? String == "quit" { break }
    // Each command runs on its own (the runner sets up many connections at once); the task parses
    // its own copy of the line, since a JSON object is not Sendable; detached, so that the command
    // stays in the task's own region instead of crossing from the main actor.
    Task.detached { [room, forwarder] in
        let command = parseCommand(line) ?? [:]
        do {
            if let forwarder { try await forwarder.handle(command) } else { try await room.handle(command) }
        } catch {
            emit(["event": "error", "id": command["id"] as? String ?? "", "op": command["op"] as? String ?? "", "reason": "\(error)"])
        }
    }
}
await room.quit()
await forwarder?.quit()
emit(["event": "bye"])
