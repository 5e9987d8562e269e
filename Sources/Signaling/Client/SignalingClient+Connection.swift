import Foundation
import Hummingbird
import HummingbirdWSClient
import Logging

/// The connection loop of `SignalingClient`: one WebSocket at a time, reconnecting every
/// `reconnectDelay` plus up to `jitter` (docs/protocol.md "Liveness").
extension SignalingClient {
    func run() async {
        while !closed && !Task.isCancelled {
            let reason = await runConnection()
            probe = nil
            let wasOnline = loggedIn
            loggedIn = false
            link = nil
            failWaiting(SignalingError(.disconnected, "connection lost: \(reason)"), keepChat: true)
            // Several URLs (a cluster, docs/cluster.md): go on at the next member at once, until
            // each was tried once since the last login; only then wait as below.
            if urls.count > 1, fatal == nil, !closed {
                current = (current + 1) % urls.count
                attemptsSinceLogin += 1
                if attemptsSinceLogin < urls.count {
                    if wasOnline { eventSink.yield(.disconnected(reason: reason)) }
                    continue
                }
                attemptsSinceLogin = 0
            }
            if let continuation = firstLogin {
                firstLogin = nil
                continuation.resume(throwing: fatal ?? SignalingError(.disconnected, "cannot connect to \(url): \(reason)"))
                return
            }
            if let fatal {
                eventSink.yield(.error(fatal))
                return
            }
            if closed { return }
            if wasOnline { eventSink.yield(.disconnected(reason: reason)) }
            if reconnectAtOnce {
                reconnectAtOnce = false
                continue
            }
            let spread = Double(jitter.components.seconds) + Double(jitter.components.attoseconds) / 1e18
            // Woken early by ``reconnectNow(reason:)``: the network changed, a new attempt may
            // succeed where the last one found no route.
            let until = ContinuousClock.now + reconnectDelay + .seconds(Double.random(in: 0...spread))
            while !reconnectAtOnce, !closed, !Task.isCancelled, ContinuousClock.now < until {
                try? await Task.sleep(for: min(.milliseconds(100), until - .now))
            }
            reconnectAtOnce = false
        }
    }

    /// One WebSocket connection, from connect to close; returns why it ended.
    private func runConnection() async -> String {
        serial += 1
        let current = serial
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, closeTimeout: .seconds(2))
        configuration.additionalHeaders[.secWebSocketProtocol] = SignalingProtocol.subprotocol
        let url = activeURL, logger = self.logger
        // The connection runs in a task of its own, so that ``reconnectNow(reason:)`` can drop it
        // at once: cancelling closes the channel, where a closing handshake would wait up to
        // `closeTimeout` for a node that can no longer hear us.
        let connection = Task {
            let client = WebSocketClient(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                let (frames, sink) = AsyncStream.makeStream(of: String.self)
                await self.attach(serial: current, sink: sink)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in frames {
                            do { try await outbound.write(.text(text)) } catch { break }
                        }
                    }
                    group.addTask {
                        do {
                            for try await message in inbound.messages(maxSize: 1 << 20) {
                                if case .text(let text) = message { await self.receive(text) }
                            }
                        } catch {}
                    }
                    group.addTask { await self.keepAlive(serial: current) }
                    await group.next()
                    group.cancelAll()
                }
            }
            try await client.run()
        }
        self.connection = connection
        defer {
            self.connection = nil
            endReason = nil
        }
        do {
            try await connection.value
            return endReason ?? "the node closed the connection"
        } catch {
            return endReason ?? "\(error)"
        }
    }

    func attach(serial: Int, sink: AsyncStream<String>.Continuation) {
        lastHeard = .now
        if closed { sink.finish() }
        link = (serial, sink)
    }

    /// Pings every half heartbeat interval (the node allows 1.5 intervals of silence, so one late
    /// ping does not cost the connection); returns, ending the connection, when nothing was heard
    /// from the node for two intervals. It wakes at least every 250 ms, so a heartbeat learnt
    /// from `welcome` applies at once.
    func keepAlive(serial: Int) async {
        var lastPing = ContinuousClock.now
        while !Task.isCancelled {
            let nextPing = lastPing + heartbeat / 2
            try? await Task.sleep(until: min(nextPing, .now + .milliseconds(250)))
            guard link?.serial == serial, !Task.isCancelled else { return }
            let now = ContinuousClock.now
            if now - lastHeard > heartbeat * 2 {
                endReason = "nothing heard from the node for two heartbeat intervals"
                return
            }
            if let probe {
                if lastHeard >= probe.sent {
                    self.probe = nil
                } else if now >= probe.due {
                    self.probe = nil
                    reconnectNow(reason: "no answer to a ping within \(probe.due - probe.sent) after the media path died")
                    return
                }
            }
            if loggedIn && now >= lastPing + heartbeat / 2 {
                lastPing = now
                transmit(SignalingMessage(id: UUID().uuidString, from: name, to: SignalingProtocol.nodeAddress, payload: .ping))
            }
        }
    }

    /// The media path of a call died, perhaps because this side's network changed (Wi-Fi to
    /// mobile data): then this connection's TCP left with the old address, and the node's
    /// heartbeat would notice only after 1.5 intervals (tens of seconds), while the call's ICE
    /// restart offers go into it and are lost. Pings now; unless the node answers (anything
    /// heard) within `deadline`, the connection is ended and a new one made at once.
    public func probe(within deadline: Duration = .seconds(2)) {
        guard loggedIn, link != nil, probe == nil else { return }
        let now = ContinuousClock.now
        probe = (now, now + deadline)
        transmit(SignalingMessage(id: UUID().uuidString, from: name, to: SignalingProtocol.nodeAddress, payload: .ping))
    }

    /// Drops the connection now and makes a new one at once, without the reconnect delay:
    /// this side's network changed (the address the connection left from went away), so the
    /// node cannot hear it on the old one. While offline, the next attempt goes now instead of
    /// after the delay (a new address may have a route where the last attempt found none).
    public func reconnectNow(reason: String) {
        guard !closed else { return }
        reconnectAtOnce = true
        guard let connection else { return }
        endReason = reason
        probe = nil
        link?.sink.finish()
        connection.cancel()
    }

    func transmit(_ message: SignalingMessage) {
        link?.sink.yield(SignalingCodec.encode(message))
    }

    /// Fails requests waiting for an answer; chat stays in the outbox to be resent when `keepChat`.
    func failWaiting(_ error: SignalingError, keepChat: Bool = false) {
        let chatIDs = Set(outbox.map(\.id))
        for (id, continuation) in waiting where !(keepChat && chatIDs.contains(id)) {
            waiting[id] = nil
            continuation.resume(throwing: SignalingError(error.code, error.reason, of: id))
        }
    }
}
