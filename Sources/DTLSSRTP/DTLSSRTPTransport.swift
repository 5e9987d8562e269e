public import MeshCore
public import NIOCore
public import SDP
import Synchronization

/// DTLS-SRTP (RFC 5764) over one datagram path, as WebRTC uses it (RFC 8827 §6.5, RFC 8834):
/// a DTLS 1.2 handshake on the path (in a call, the ICE component's selected pair)
/// authenticated by the SDP fingerprints, SRTP keys exported from it into libsrtp2, and RTP,
/// RTCP, DTLS and STUN sharing the one bundled, rtcp-muxed path, told apart per RFC 7983.
///
/// The path is a ``DatagramTransport`` and its ``DatagramEvent`` stream; the transport knows
/// nothing of ICE.
///
/// ```swift
/// let transport = try DTLSSRTPTransport(path: path, events: pathEvents, configuration: .init(
///     certificate: certificate, role: try DTLSRole(local: .actpass, remote: answerSetup),
///     remoteFingerprint: try SDPFingerprint(rfc8122: "sha-256 AB:CD:…")))
/// transport.start()
/// let profile = try await transport.connected()
/// try transport.sendRTP(packet)
/// for await event in transport.events { if case .rtp(let packet, let arrival) = event { … } }
/// transport.close()   // close_notify
/// ```
///
/// The DTLS client sends its ClientHello once the path is ready (ICE connected); the server
/// answers whenever a ClientHello arrives. Retransmissions follow OpenSSL's RFC 6347 §4.2.4
/// timer; a handshake not finished ``Configuration/handshakeTimeout`` after the path was ready fails
/// with `handshakeTimeout`. Packets that fail authentication or are replays are dropped and
/// counted in ``statistics``, never delivered.
public final class DTLSSRTPTransport: Sendable {
    /// How to run DTLS and SRTP.
    public struct Configuration: Sendable {
        /// Our certificate; its ``DTLSCertificate/fingerprint`` goes into our SDP.
        public var certificate: DTLSCertificate
        /// Client or server, from the `a=setup` exchange (``DTLSRole/init(local:remote:)``).
        public var role: DTLSRole
        /// The `a=fingerprint` from the peer's signed SDP (RFC 8122 §5).
        public var remoteFingerprint: SDPFingerprint
        /// `use_srtp` profiles in order of preference (RFC 5764 §4.1.1). GCM first: it is
        /// cheaper and also authenticates; browsers that prefer AES-CM still get it.
        public var profiles: [SRTPProfile]
        /// How long the handshake may take once the path is ready.
        public var handshakeTimeout: Duration
        /// Largest DTLS datagram we send.
        public var mtu: Int

        /// Creates a configuration.
        public init(certificate: DTLSCertificate, role: DTLSRole, remoteFingerprint: SDPFingerprint,
                    profiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80],
                    handshakeTimeout: Duration = .seconds(30), mtu: Int = 1200) {
            self.certificate = certificate
            self.role = role
            self.remoteFingerprint = remoteFingerprint
            self.profiles = profiles
            self.handshakeTimeout = handshakeTimeout
            self.mtu = mtu
        }
    }

    private struct State {
        var connection: DTLSConnection
        var profile: SRTPProfile?
        var failure: TransportError?
        var closed = false
        var pathReady = false
        var handshakeStart: ContinuousClock.Instant?
        var handshakeDeadline: ContinuousClock.Instant?
        var waiters: [UInt64: CheckedContinuation<SRTPProfile, any Error>] = [:]
        var nextWaiter: UInt64 = 0
        var timerRunning = false

        /// Ends every waiter's wait; the caller resumes them outside the lock.
        mutating func takeWaiters() -> [CheckedContinuation<SRTPProfile, any Error>] {
            defer { waiters = [:] }
            return Array(waiters.values)
        }
    }

    /// The path that carries everything (the newest, after ``replacePath(_:events:)``).
    private let current: Mutex<(path: any DatagramTransport, generation: Int)>
    /// The configuration the transport was made with.
    public let configuration: Configuration
    /// Everything the transport reports; consume it from one task. Finishes after
    /// ``close()``, a failure, the peer's close_notify or the path's events ending. Past
    /// ``receiveQueueBound`` unread packets, new ones are dropped (counted in
    /// ``TransportStatistics/receiveQueueDrops``); the other events are never dropped.
    public let events: BoundedEventStream<TransportEvent>

    /// How many received RTP/RTCP packets may wait unread in ``events``.
    public static let receiveQueueBound = 1024

    private let continuation: BoundedEventStream<TransportEvent>.Producer
    private let state: Mutex<State>
    private let outbound = Mutex<SRTPSession?>(nil)
    private let inbound = Mutex<SRTPSession?>(nil)
    private let counters = Mutex(TransportStatistics())
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let clock = ContinuousClock()
    private let pathEvents: DatagramEvents
    /// Where received packets go instead of ``events``, once set (``deliverPackets(to:)``).
    private let packetHandler = Mutex<PacketHandler?>(nil)

    /// The handler in a struct of its own: a closure kept directly in a `Mutex` is stored at the
    /// generic abstraction, and each inout access in `withLock` re-wraps it in two more
    /// reabstraction thunks on the way out and back — a chain that grew by two per packet (44 % of
    /// the forwarder's CPU in a release profile after 10 s at n = 5).
    private struct PacketHandler: Sendable {
        let deliver: @Sendable (TransportEvent) -> Void
    }

    /// Creates the transport; nothing happens until ``start()``.
    /// - Parameters:
    ///   - path: where datagrams go.
    ///   - events: what arrives on the path, and when it is ready.
    /// - Throws: ``TransportError`` `invalidFingerprint` for a fingerprint we cannot check,
    ///   `invalidArgument` for no profiles or a bad MTU, `handshakeFailed` when OpenSSL
    ///   refuses the setup.
    public init(path: any DatagramTransport, events: DatagramEvents, configuration: Configuration) throws(TransportError) {
        let connection = try DTLSConnection(
            certificate: configuration.certificate, role: configuration.role,
            remoteFingerprint: configuration.remoteFingerprint, profiles: configuration.profiles, mtu: configuration.mtu)
        self.state = Mutex(State(connection: connection))
        self.current = Mutex((path, 0))
        self.pathEvents = events
        self.configuration = configuration
        (self.events, self.continuation) = BoundedEventStream<TransportEvent>.makeStream(dataBound: Self.receiveQueueBound, isData: \.isData)
    }

    deinit {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        continuation.finish()
    }

    /// Starts consuming the path's events. The client begins the handshake as soon as the
    /// path is ready (at once if it already is).
    public func start() {
        pump(pathEvents, generation: 0)
        let path = self.path
        let probe = Task { [weak self] in
            guard await path.isReady() else { return }
            self?.pathReady()
        }
        tasks.withLock { $0.append(probe) }
    }

    /// Moves the session onto another path — in a call, a new ICE agent with freshly gathered
    /// candidates, when an ICE restart of the old one cannot help (its relay allocations are
    /// gone). The DTLS session and SRTP keys stay; the old path's end no longer ends the
    /// transport.
    public func replacePath(_ path: any DatagramTransport, events: DatagramEvents) {
        let generation = current.withLock { state -> Int in
            state = (path, state.generation + 1)
            return state.generation
        }
        pump(events, generation: generation)
    }

    /// Handles one event of the path at once, on the caller's thread: for a caller that reads
    /// the path's events itself (a forwarder's session reads its ICE agent's events for other
    /// news too) and would otherwise copy each datagram into a stream that the transport's own
    /// task reads — at a few hundred packets a second each such copy wakes a thread. The
    /// stream given at init then carries only what the caller does not hand in (it may be one
    /// that only ends, when the path ends). Any thread; datagrams of one path in order.
    public func handle(_ event: DatagramEvent) {
        switch event {
        case .received(let datagram, let arrival): receive(datagram, arrival: arrival)
        case .ready: pathReady()
        }
    }

    /// From now on, hands each authenticated RTP and RTCP packet to `handler`, on the thread that
    /// received its datagram, instead of queueing it in ``events`` for a reader task (one thread
    /// wake-up less per packet). ``events`` keeps the other events, and any packets queued
    /// before this call. `handler` must be quick and must not block: the next datagram waits for
    /// it. A packet handed over counts as received in ``statistics``.
    public func deliverPackets(to handler: @escaping @Sendable (TransportEvent) -> Void) {
        packetHandler.withLock { $0 = PacketHandler(deliver: handler) }
    }

    private func pump(_ events: DatagramEvents, generation: Int) {
        let task = Task { [weak self] in
            for await event in events {
                guard let self else { return }
                self.handle(event)
            }
            guard let self, self.current.withLock({ $0.generation }) == generation else { return }
            self.pathFinished()
        }
        tasks.withLock { $0.append(task) }
    }

    /// Waits for the handshake and returns the negotiated profile.
    /// - Throws: the ``TransportError`` the session failed with (`fingerprintMismatch`,
    ///   `handshakeFailed`, `handshakeTimeout`, `noSRTPProfile`, `closed`), or
    ///   `CancellationError` when the waiting task is cancelled.
    public func connected() async throws -> SRTPProfile {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<SRTPProfile, any Error>) in
                let immediate = state.withLock { state -> Result<SRTPProfile, any Error>? in
                    if let profile = state.profile { return .success(profile) }
                    if let failure = state.failure { return .failure(failure) }
                    if state.closed { return .failure(TransportError(.closed, "the transport is closed")) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = waiter
                    return nil
                }
                if let immediate { waiter.resume(with: immediate) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    /// The negotiated profile, once connected.
    public var profile: SRTPProfile? { state.withLock { $0.profile } }

    /// Counters so far.
    public var statistics: TransportStatistics { counters.withLock { $0 } }

    /// Protects an RTP packet (RFC 3711 §3.3) and sends it on the selected pair. Any thread.
    /// - Throws: `notConnected` before the handshake completed or while ICE has no pair,
    ///   `closed` after ``close()``, `invalidArgument`/`srtpFailure` for a packet libsrtp2
    ///   refuses (shorter than an RTP header, a repeated sequence number).
    /// A packet passed as its last use is protected in its own buffer (no copy).
    public func sendRTP(_ packet: consuming ByteBuffer) throws(TransportError) {
        var packet = packet
        try outbound.withLock { session throws(TransportError) in
            guard let session else { throw notReady() }
            try session.protectRTP(&packet)
        }
        try sendDatagram(packet)
        counters.withLock { $0.rtpSent += 1 }
    }

    /// Protects a (compound) RTCP packet (RFC 3711 §3.4) and sends it. Any thread.
    public func sendRTCP(_ packet: consuming ByteBuffer) throws(TransportError) {
        var packet = packet
        try outbound.withLock { session throws(TransportError) in
            guard let session else { throw notReady() }
            try session.protectRTCP(&packet)
        }
        try sendDatagram(packet)
        counters.withLock { $0.rtcpSent += 1 }
    }

    /// Sends close_notify (when connected), drops the SRTP keys and finishes ``events``.
    /// The path stays open; close it afterwards. Idempotent.
    public func close() {
        let (output, waiters) = state.withLock { state in
            state.closed = true
            return (state.connection.close(), state.takeWaiters())
        }
        sendAll(output.datagrams)
        outbound.withLock { $0 = nil }
        inbound.withLock { $0 = nil }
        for waiter in waiters { waiter.resume(throwing: TransportError(.closed, "the transport was closed before the handshake completed")) }
        for task in tasks.withLock({ $0 }) { task.cancel() }
        packetHandler.withLock { $0 = nil }
        continuation.finish()
    }

    // MARK: - Receiving

    private func receive(_ datagram: ByteBuffer, arrival: ContinuousClock.Instant) {
        switch PacketDemultiplexer.classify(datagram) {
        case .dtls:
            counters.withLock { $0.dtlsDatagramsReceived += 1 }
            let (output, startedTimer) = state.withLock { state -> (DTLSOutput, Bool) in
                if state.handshakeStart == nil { state.handshakeStart = clock.now }
                let output = state.connection.receive(datagram)
                return (output, startTimerIfNeeded(&state))
            }
            if startedTimer { startTimer() }
            process(output)
        case .srtp:
            deliver(datagram, rtcp: false, arrival: arrival)
        case .srtcp:
            deliver(datagram, rtcp: true, arrival: arrival)
        case .stun, .zrtp, .turnChannel, .unknown:
            counters.withLock { $0.unknownDropped += 1 }
        }
    }

    private func deliver(_ datagram: ByteBuffer, rtcp: Bool, arrival: ContinuousClock.Instant) {
        let result = inbound.withLock { session -> Result<ByteBuffer, TransportError>? in
            guard let session else { return nil }
            do throws(TransportError) {
                return .success(rtcp ? try session.unprotectRTCP(datagram) : try session.unprotectRTP(datagram))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let packet):
            let event: TransportEvent = rtcp ? .rtcp(packet, arrival: arrival) : .rtp(packet, arrival: arrival)
            let handler = packetHandler.withLock { $0 }
            // Counted before it is handed on, so a reader that sees the packet sees it counted.
            counters.withLock {
                if rtcp { $0.rtcpReceived += 1 } else { $0.rtpReceived += 1 }
                if handler != nil { $0.packetsHandedOver += 1 }
            }
            if let handler {
                handler.deliver(event)
                return
            }
            if case .dropped = continuation.yield(event) {
                counters.withLock {
                    if rtcp { $0.rtcpReceived -= 1 } else { $0.rtpReceived -= 1 }
                    $0.receiveQueueDrops += 1
                }
            }
        case .failure(let error):
            counters.withLock {
                switch error.code {
                case .authenticationFailed: $0.authenticationFailures += 1
                case .replayed: $0.replaysDropped += 1
                default: $0.otherDrops += 1
                }
            }
        case nil:
            counters.withLock { $0.otherDrops += 1 }
        }
    }

    private func pathReady() {
        let (output, startedTimer) = state.withLock { state -> (DTLSOutput, Bool) in
            guard !state.pathReady, !state.closed else { return (DTLSOutput(), false) }
            state.pathReady = true
            state.handshakeDeadline = clock.now + configuration.handshakeTimeout
            if configuration.role == .client, state.handshakeStart == nil { state.handshakeStart = clock.now }
            let output = state.connection.start()
            return (output, startTimerIfNeeded(&state))
        }
        if startedTimer { startTimer() }
        process(output)
    }

    private func pathFinished() {
        let waiters = state.withLock { state in
            state.closed = true
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume(throwing: TransportError(.closed, "the path closed before the DTLS handshake completed")) }
        continuation.finish()
    }

    // MARK: - DTLS output and timers

    private func process(_ output: DTLSOutput) {
        sendAll(output.datagrams)
        if output.handshakeCompleted { handshakeCompleted() }
        if let failure = output.failure { failed(failure) }
        if output.closedByPeer {
            let waiters = state.withLock { state in
                state.closed = true
                return state.takeWaiters()
            }
            for waiter in waiters { waiter.resume(throwing: TransportError(.closed, "the peer closed the DTLS session")) }
            outbound.withLock { $0 = nil }
            inbound.withLock { $0 = nil }
            continuation.yield(.closedByPeer)
            continuation.finish()
        }
    }

    private func handshakeCompleted() {
        do throws(TransportError) {
            let keys = try state.withLock { state throws(TransportError) in try state.connection.exportSRTPKeys() }
            try outbound.withLock { session throws(TransportError) in
                session = try SRTPSession(profile: keys.profile, keyAndSalt: keys.localKeyAndSalt, direction: .outbound)
            }
            try inbound.withLock { session throws(TransportError) in
                session = try SRTPSession(profile: keys.profile, keyAndSalt: keys.remoteKeyAndSalt, direction: .inbound)
            }
            let now = clock.now
            let (waiters, start) = state.withLock { state in
                state.profile = keys.profile
                return (state.takeWaiters(), state.handshakeStart)
            }
            if let start { counters.withLock { $0.handshakeDuration = now - start } }
            continuation.yield(.connected(keys.profile))
            for waiter in waiters { waiter.resume(returning: keys.profile) }
        } catch {
            failed(error)
        }
    }

    private func failed(_ error: TransportError) {
        let waiters = state.withLock { state in
            state.failure = state.failure ?? error
            return state.takeWaiters()
        }
        outbound.withLock { $0 = nil }
        inbound.withLock { $0 = nil }
        for waiter in waiters { waiter.resume(throwing: error) }
        continuation.yield(.failed(error))
        continuation.finish()
    }

    /// Marks the timer as running if the handshake is under way and no timer runs yet.
    private func startTimerIfNeeded(_ state: inout State) -> Bool {
        guard !state.timerRunning, state.connection.state == .handshaking else { return false }
        state.timerRunning = true
        return true
    }

    /// Drives retransmissions (RFC 6347 §4.2.4) and the overall handshake deadline until the
    /// handshake ends. Wakes at the DTLS timer or every 50 ms, whichever is sooner.
    private func startTimer() {
        let timer = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let wait = self.state.withLock { $0.connection.retransmissionTimeout } ?? .milliseconds(50)
                try? await Task.sleep(for: max(.milliseconds(1), min(wait, .milliseconds(50))))
                let (output, done) = self.state.withLock { state -> (DTLSOutput, Bool) in
                    guard state.connection.state == .handshaking, !state.closed else {
                        state.timerRunning = false
                        return (DTLSOutput(), true)
                    }
                    if let deadline = state.handshakeDeadline, self.clock.now >= deadline {
                        state.timerRunning = false
                        var output = DTLSOutput()
                        output.failure = TransportError(.handshakeTimeout, "no DTLS handshake within \(self.configuration.handshakeTimeout) of the path (ICE) connecting; is the peer's DTLS role the opposite of ours (\(self.configuration.role))?")
                        return (output, true)
                    }
                    return (state.connection.handleTimeout(), false)
                }
                self.process(output)
                if done { return }
            }
        }
        tasks.withLock { $0.append(timer) }
    }

    // MARK: - Sending

    private func sendAll(_ datagrams: [ByteBuffer]) {
        for datagram in datagrams {
            // Before ICE has a pair a flight cannot go out; the retransmission timer resends it.
            if (try? path.send(datagram)) != nil { counters.withLock { $0.dtlsDatagramsSent += 1 } }
        }
    }

    private func sendDatagram(_ datagram: ByteBuffer) throws(TransportError) {
        do {
            try path.send(datagram)
        } catch {
            throw TransportError(.notConnected, "the path could not send: \(error)")
        }
    }

    private var path: any DatagramTransport { current.withLock { $0.path } }

    private func notReady() -> TransportError {
        state.withLock { state in
            if state.closed { return TransportError(.closed, "the transport is closed") }
            if let failure = state.failure { return TransportError(.closed, "the transport failed: \(failure.reason)") }
            return TransportError(.notConnected, "no SRTP keys yet: wait for connected() (the DTLS handshake)")
        }
    }
}
