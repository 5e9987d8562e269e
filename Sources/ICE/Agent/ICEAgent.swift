internal import CNice
public import Logging
public import MeshCore
public import NIOCore

/// ICE username fragment and password of one side (RFC 8445 §5.3, RFC 8839 §5.4).
public struct ICECredentials: Sendable, Hashable {
    /// `ice-ufrag`: 4–256 `ice-char`s.
    public var ufrag: String
    /// `ice-pwd`: 22–256 `ice-char`s.
    public var password: String
    /// Creates credentials; they are validated when handed to the agent.
    public init(ufrag: String, password: String) {
        self.ufrag = ufrag
        self.password = password
    }
}

/// A full ICE agent (RFC 8445) for one data path, backed by libnice.
///
/// One agent carries one component (WebRTC with BUNDLE and rtcp-mux). Typical use:
/// create it, start consuming ``events``, call ``gather()``, send ``localCredentials()``
/// and every ``ICEAgentEvent/localCandidate(_:)`` to the peer, and feed the peer's
/// credentials and candidates in with ``setRemoteCredentials(_:)`` and
/// ``addRemoteCandidate(_:)``. When ``ICEAgentEvent/stateChanged(_:)`` reports
/// `connected` or `ready`, ``send(_:)-(ByteBuffer)`` works and packets arrive as
/// ``ICEAgentEvent/dataReceived(_:arrival:)``.
///
/// All libnice work happens on the process's single GLib thread; the methods hop there
/// and return. ``send(_:)-(ByteBuffer)`` is synchronous and may be called from any thread.
public final class ICEAgent: Sendable {
    /// The configuration the agent was created with.
    public let configuration: ICEAgentConfiguration
    /// Everything the agent reports, in order. Consume it from one task; it finishes after
    /// ``close()``. Received packets are bounded: past ``receiveQueueBound`` unread ones, new
    /// ones are dropped as a full socket buffer drops them (counted in `events.droppedData`);
    /// candidates, state changes and pairs are never dropped.
    public let events: BoundedEventStream<ICEAgentEvent>

    /// How many received packets may wait unread in ``events``: about 1.2 MB of full-size
    /// datagrams, a second of a 10 Mbit/s video call.
    public static let receiveQueueBound = 1024

    private let object: NiceAgentObject
    private let sink: NiceEventSink
    private let logger: Logger

    /// Creates an agent and its stream; nothing is sent until ``gather()``.
    /// - Parameter loop: the GLib loop (and thread) that runs the agent: the shared one, or one
    ///   of the pool for agents whose datagrams are tapped (``deliverDatagrams(to:)``).
    /// - Throws: ``ICEError`` `invalidConfiguration` when a server or local address
    ///   is not an IP literal, or relay-only is asked for without a TURN server.
    public init(configuration: ICEAgentConfiguration, loop: ICEEventLoop = .shared, logger: Logger = Logger(label: "meshnode.ice.agent")) async throws {
        let (events, continuation) = BoundedEventStream<ICEAgentEvent>.makeStream(dataBound: Self.receiveQueueBound, isData: \.isData)
        let sink = NiceEventSink(continuation: continuation, logger: logger)
        let glib = loop.glib
        do {
            self.object = try await glib.run {
                try NiceAgentObject(configuration: configuration, sink: sink, loop: glib)
            }
        } catch {
            continuation.finish()
            throw error
        }
        self.configuration = configuration
        self.events = events
        self.sink = sink
        self.logger = logger
    }

    /// From now on each received datagram goes to `tap` on the GLib thread as it comes off the
    /// socket, instead of into ``events`` (nil: into ``events`` again). For a consumer whose work
    /// per datagram is short and never waits (the forwarder decrypts and forwards there): it
    /// saves waking a thread per packet. Datagrams already queued stay in ``events``; the other
    /// events (candidates, states) always go there.
    public func deliverDatagrams(to tap: ICEDatagramTap?) {
        sink.tap.withLock { $0 = tap }
    }

    /// Starts gathering host, server-reflexive and relay candidates. Each arrives as
    /// ``ICEAgentEvent/localCandidate(_:)``, then ``ICEAgentEvent/gatheringDone``.
    public func gather() async throws {
        try await onLoop { agent, object in
            guard nice_agent_gather_candidates(agent, object.streamID) != 0 else {
                throw ICEError(.operationFailed, "libnice could not gather candidates: no usable local address (check localAddresses) or ports in portRange")
            }
        }
    }

    /// The local ufrag and password to send to the peer. They change after ``restart()``.
    public func localCredentials() async throws -> ICECredentials {
        try await onLoop { agent, object in
            var ufrag: UnsafeMutablePointer<CChar>?
            var password: UnsafeMutablePointer<CChar>?
            guard nice_agent_get_local_credentials(agent, object.streamID, &ufrag, &password) != 0,
                let ufrag, let password
            else {
                throw ICEError(.operationFailed, "libnice has no local credentials for the stream")
            }
            defer {
                g_free(ufrag)
                g_free(password)
            }
            return ICECredentials(ufrag: String(cString: ufrag), password: String(cString: password))
        }
    }

    /// The local candidates gathered so far (all of them after
    /// ``ICEAgentEvent/gatheringDone``). Useful to re-signal them after ``restart()``.
    public func localCandidates() async throws -> [ICECandidate] {
        try await onLoop { agent, object in
            var candidates: [ICECandidate] = []
            let list = nice_agent_get_local_candidates(agent, object.streamID, object.componentID)
            var node = list
            while let current = node {
                if let candidate = current.pointee.data?.assumingMemoryBound(to: NiceCandidate.self) {
                    candidates.append(ICECandidate(nice: candidate))
                    nice_candidate_free(candidate)
                }
                node = current.pointee.next
            }
            g_slist_free(list)
            return candidates
        }
    }

    /// Sets the peer's ufrag and password (from its `a=ice-ufrag` / `a=ice-pwd`).
    /// - Throws: `invalidCredentials` when they break RFC 8839 §5.4's length or
    ///   character rules.
    public func setRemoteCredentials(_ credentials: ICECredentials) async throws {
        try Self.validate(credentials)
        try await onLoop { agent, object in
            guard nice_agent_set_remote_credentials(agent, object.streamID, credentials.ufrag, credentials.password) != 0 else {
                throw ICEError(.invalidCredentials, "libnice refused the remote credentials")
            }
        }
    }

    /// Adds a candidate of the peer (trickled or from its SDP). Candidates may come
    /// before or after ``gather()``; checks start as soon as pairs exist.
    /// - Throws: `invalidCandidate` for an address that is not an IP literal (mDNS
    ///   `.local` names are not resolved) or a component other than 1.
    public func addRemoteCandidate(_ candidate: ICECandidate) async throws {
        guard candidate.component == 1 else {
            throw ICEError(.invalidCandidate, "candidate is for component \(candidate.component); the agent has one component (rtcp-mux)")
        }
        try await onLoop { agent, object in
            let nice = try candidate.makeNiceCandidate(streamID: object.streamID)
            defer { nice_candidate_free(nice) }
            let list = g_slist_append(nil, nice)
            defer { g_slist_free(list) }
            guard nice_agent_set_remote_candidates(agent, object.streamID, object.componentID, list) >= 0 else {
                throw ICEError(.operationFailed, "libnice refused remote candidate \(candidate.sdp)")
            }
        }
    }

    /// Parses an RFC 8839 `candidate:` / `a=candidate:` line and adds it.
    public func addRemoteCandidate(sdp: String) async throws {
        try await addRemoteCandidate(ICECandidate(sdp: sdp))
    }

    /// Tells the agent the peer sent end-of-candidates (RFC 8838 §8.2), so a component
    /// whose checks all failed goes to `failed` instead of waiting for more.
    public func endOfRemoteCandidates() async throws {
        try await onLoop { agent, object in
            _ = nice_agent_peer_candidate_gathering_done(agent, object.streamID)
        }
    }

    /// Sends one datagram on the selected pair. May be called from any thread.
    /// - Throws: `notConnected` before a pair is selected (or after consent was lost),
    ///   `closed` after ``close()``.
    public func send(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            try send(bytes)
        }
    }

    /// Sends one datagram on the selected pair. May be called from any thread.
    public func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try send($0) }
    }

    private func send(_ bytes: UnsafeRawBufferPointer) throws {
        // nice_agent_send takes libnice's agent lock, so it is safe off the GLib thread.
        let sent = try object.withAgent { agent in
            nice_agent_send(
                agent, object.streamID, object.componentID, UInt32(bytes.count),
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self)
            )
        }
        guard sent >= 0 else {
            throw ICEError(.notConnected, "no candidate pair is selected yet (or consent was lost); wait for state connected")
        }
    }

    /// The component's current state.
    public func state() async throws -> ICEComponentState {
        try await onLoop { agent, object in
            ICEComponentState(niceState: nice_agent_get_component_state(agent, object.streamID, object.componentID).rawValue)
        }
    }

    /// The pair in use, or `nil` before one is selected.
    public func selectedPair() async throws -> ICESelectedPair? {
        try await onLoop { agent, object in
            var local: UnsafeMutablePointer<NiceCandidate>?
            var remote: UnsafeMutablePointer<NiceCandidate>?
            guard nice_agent_get_selected_pair(agent, object.streamID, object.componentID, &local, &remote) != 0,
                let local, let remote
            else { return nil }
            return ICESelectedPair(local: ICECandidate(nice: local), remote: ICECandidate(nice: remote))
        }
    }

    /// ICE restart (RFC 8445 §9): new local credentials, remote candidates and checks
    /// discarded; local candidates are kept. Call it on both sides (the initiator and, on
    /// seeing a new remote ufrag, the peer), then exchange the new credentials and
    /// ``localCandidates()`` again. Data keeps flowing on the old pair until a new one is
    /// selected.
    /// - Returns: The new local credentials.
    public func restart() async throws -> ICECredentials {
        try await onLoop { agent, object in
            guard nice_agent_restart_stream(agent, object.streamID) != 0 else {
                throw ICEError(.operationFailed, "libnice could not restart the stream")
            }
        }
        logger.debug("ICE restart")
        return try await localCredentials()
    }

    /// Releases TURN allocations (best effort: libnice sends a zero-lifetime refresh),
    /// closes the sockets and finishes ``events``. Idempotent.
    public func close() async {
        let object = self.object
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            object.loop.invoke {
                object.close { continuation.resume() }
            }
        }
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer, NiceAgentObject) throws -> T) async throws -> T {
        let object = self.object
        return try await object.loop.run {
            try object.withAgent { agent in try body(agent, object) }
        }
    }

    private static func validate(_ credentials: ICECredentials) throws {
        func isICEChars(_ text: String) -> Bool {
            text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                    true
                default: false
                }
            }
        }
        guard (4...256).contains(credentials.ufrag.utf8.count), isICEChars(credentials.ufrag) else {
            throw ICEError(.invalidCredentials, "ice-ufrag '\(credentials.ufrag.prefix(64))' must be 4-256 of ALPHA / DIGIT / '+' / '/' (RFC 8839 §5.4)")
        }
        guard (22...256).contains(credentials.password.utf8.count), isICEChars(credentials.password) else {
            throw ICEError(.invalidCredentials, "ice-pwd must be 22-256 of ALPHA / DIGIT / '+' / '/' (RFC 8839 §5.4)")
        }
    }
}
