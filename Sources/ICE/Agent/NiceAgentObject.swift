internal import CNiceShims
internal import CNice
import Logging
import MeshCore
import NIOCore
import Synchronization
import STUN

/// Receives libnice's signals and received data on the GLib thread and forwards them to
/// the agent's event stream. libnice holds one retained reference to it (released by a
/// weak-reference notification when the `NiceAgent` is finalised), so callbacks never see
/// a freed sink even if libnice emits a signal while the agent is being torn down.
final class NiceEventSink: Sendable {
    let continuation: BoundedEventStream<ICEAgentEvent>.Producer
    let logger: Logger

    /// Where received datagrams go instead of the queue, once set (``ICEAgent/deliverDatagrams(to:)``).
    let tap = Mutex<ICEDatagramTap?>(nil)

    init(continuation: BoundedEventStream<ICEAgentEvent>.Producer, logger: Logger) {
        self.continuation = continuation
        self.logger = logger
    }

    /// Queues a packet received at `arrival`; when the consumer is a full queue behind, the
    /// packet is dropped and the drop is logged (the first, then at each doubling).
    func received(_ datagram: ByteBuffer, at arrival: ContinuousClock.Instant) {
        if let tap = tap.withLock({ $0 }) {
            tap.deliver(datagram, arrival)
            return
        }
        let result = continuation.yield(.dataReceived(datagram, arrival: arrival))
        if result.shouldReport, case .dropped(let total) = result {
            logger.warning("ICE receive queue full: packets dropped", metadata: [
                "dropped": "\(total)", "bound": "\(ICEAgent.receiveQueueBound)"])
        }
    }

    static func from(_ data: UnsafeMutableRawPointer?) -> NiceEventSink {
        Unmanaged<NiceEventSink>.fromOpaque(data!).takeUnretainedValue()
    }
}

/// Owns one libnice `NiceAgent` with one stream of one component (BUNDLE and rtcp-mux,
/// as WebRTC uses it).
///
/// `@unchecked Sendable`: it owns a C object. Every libnice call except `nice_agent_send`
/// is made on the GLib thread (`GLibMainLoop`); `nice_agent_send` takes libnice's agent
/// lock and is called from the sender's thread while holding the `closed` mutex, which
/// `close` also takes before giving up the object, so the pointer is never used after
/// it is released.
final class NiceAgentObject: @unchecked Sendable {
    /// The `NiceAgent*`; valid while `closed` is false.
    private let agent: OpaquePointer
    /// Set once by `close`; every use of `agent` holds this lock.
    private let closed = Mutex(false)
    let streamID: UInt32
    let componentID: UInt32 = 1
    private let sink: NiceEventSink
    /// The loop whose context the agent is bound to; every libnice call but sends runs on its thread.
    let loop: GLibMainLoop

    /// Creates and configures the agent. Call on `loop`'s thread.
    init(configuration config: ICEAgentConfiguration, sink: NiceEventSink, loop: GLibMainLoop) throws {
        try Self.validate(config)
        self.loop = loop
        let context = loop.context
        var options = NICE_AGENT_OPTION_NONE.rawValue
        if config.consentFreshness { options |= NICE_AGENT_OPTION_CONSENT_FRESHNESS.rawValue }
        if config.trickle { options |= NICE_AGENT_OPTION_ICE_TRICKLE.rawValue }
        guard let agent = nice_agent_new_full(context, NICE_COMPATIBILITY_RFC5245, NiceAgentOption(rawValue: options)) else {
            throw ICEError(.operationFailed, "libnice could not create an agent")
        }
        let object = UnsafeMutableRawPointer(agent)
        CNiceShims_object_set_bool(object, "controlling-mode", config.role == .controlling ? 1 : 0)
        // UPnP would multicast SSDP on the LAN and open router ports: never wanted here.
        CNiceShims_object_set_bool(object, "upnp", 0)
        CNiceShims_object_set_bool(object, "ice-udp", 1)
        CNiceShims_object_set_bool(object, "ice-tcp", config.iceTCP ? 1 : 0)
        CNiceShims_object_set_bool(object, "force-relay", config.relayOnly ? 1 : 0)
        if let stun = config.stunServer {
            CNiceShims_object_set_string(object, "stun-server", stun.host)
            CNiceShims_object_set_uint(object, "stun-server-port", UInt32(stun.port))
        }
        nice_agent_set_software(agent, "meshnode")
        for text in config.localAddresses {
            var address = NiceAddress()
            nice_address_init(&address)
            _ = nice_address_set_from_string(&address, text)  // validated above
            nice_agent_add_local_address(agent, &address)
        }

        let stream = nice_agent_add_stream(agent, 1)
        guard stream != 0 else {
            g_object_unref(object)
            throw ICEError(.operationFailed, "libnice could not add a stream")
        }
        if let range = config.portRange {
            nice_agent_set_port_range(agent, stream, componentID, UInt32(range.lowerBound), UInt32(range.upperBound))
        }
        // Two libnice behaviours decide the order servers are added in:
        // - a relay candidate's priority grows with its server's position in the component's list,
        //   the last added highest (`turn->preference = length` in nice_agent_set_relay_info), so
        //   within one transport the servers go in backwards: the first (nearest) wins;
        // - of the relay candidates one server gives over several transports, libnice keeps the
        //   first gathered and releases the others as redundant, so UDP servers go in before TCP
        //   and TLS ones: a relay reachable over UDP is used over UDP. (The TCP/TLS allocations
        //   that a firewall dropping UDP mid-call would need come back with the fresh agent of a
        //   later ICE restart, which gathers anew.)
        let byTransport: [ICEAgentConfiguration.TURNServer.Transport] = [.udp, .tcp, .tls]
        let addOrder = byTransport.flatMap { transport in config.turnServers.filter { $0.transport == transport }.reversed() }
        for server in addOrder {
            let type: NiceRelayType = switch server.transport {
            case .udp: NICE_RELAY_TYPE_TURN_UDP
            case .tcp: NICE_RELAY_TYPE_TURN_TCP
            case .tls: NICE_RELAY_TYPE_TURN_TLS
            }
            guard nice_agent_set_relay_info(agent, stream, componentID, server.host, UInt32(server.port), server.username, server.password, type) != 0 else {
                g_object_unref(object)
                throw ICEError(.invalidConfiguration, "libnice refused TURN server \(server.host):\(server.port)")
            }
        }

        self.agent = agent
        self.streamID = stream
        self.sink = sink
        Self.connectSignals(agent, stream: stream, component: componentID, sink: sink, context: context)
    }

    /// Runs `body` with the agent pointer while holding the lock that `close` takes;
    /// throws `closed` after close.
    func withAgent<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        try closed.withLock { closed in
            guard !closed else { throw ICEError(.closed, "the ICE agent is closed") }
            return try body(agent)
        }
    }

    /// Releases TURN allocations (`nice_agent_close_async`), then detaches the receive
    /// callback, drops the agent and finishes the event stream; `completion` runs when that is done.
    /// Call on the GLib thread. Does nothing after the first call.
    func close(completion: (@Sendable () -> Void)?) {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else {
            completion?()
            return
        }
        Self.tearDown(agent, streamID: streamID, componentID: componentID, sink: sink, context: loop.context, completion: completion)
    }

    deinit {
        guard !closed.withLock({ $0 }) else { return }
        nonisolated(unsafe) let orphan = agent
        nonisolated(unsafe) let context = loop.context
        let (stream, component, sink) = (streamID, componentID, sink)
        loop.invoke {
            Self.tearDown(orphan, streamID: stream, componentID: component, sink: sink, context: context, completion: nil)
        }
    }

    private static func tearDown(
        _ agent: OpaquePointer, streamID: UInt32, componentID: UInt32, sink: NiceEventSink, context: OpaquePointer,
        completion: (@Sendable () -> Void)?
    ) {
        // The receive path stays attached until the close completes: the TURN server's
        // answers to the deallocating refreshes arrive through it.
        let box = Unmanaged.passRetained(CloseBox(sink: sink, streamID: streamID, componentID: componentID, context: context, completion: completion)).toOpaque()
        nice_agent_close_async(
            agent,
            { source, _, data in
                let box = Unmanaged<CloseBox>.fromOpaque(data!).takeRetainedValue()
                if let source {
                    nice_agent_attach_recv(OpaquePointer(source), box.streamID, box.componentID, box.context, nil, nil)
                    g_object_unref(UnsafeMutableRawPointer(source))
                }
                box.sink.logger.debug("ICE agent closed")
                box.sink.continuation.finish()
                box.completion?()
            },
            box
        )
    }

    private static func validate(_ config: ICEAgentConfiguration) throws {
        if let stun = config.stunServer, !NiceAddressText.isIPLiteral(stun.host) {
            throw ICEError(.invalidConfiguration, "STUN server '\(stun.host)' must be an IP address literal; resolve names before configuring the agent")
        }
        for server in config.turnServers where !NiceAddressText.isIPLiteral(server.host) {
            throw ICEError(.invalidConfiguration, "TURN server '\(server.host)' must be an IP address literal; resolve names before configuring the agent")
        }
        for address in config.localAddresses where !NiceAddressText.isIPLiteral(address) {
            throw ICEError(.invalidConfiguration, "local address '\(address)' must be an IP address literal of a local interface")
        }
        if config.relayOnly && config.turnServers.isEmpty {
            throw ICEError(.invalidConfiguration, "relay-only policy needs at least one TURN server")
        }
    }
}

private final class CloseBox {
    let sink: NiceEventSink
    let streamID: UInt32
    let componentID: UInt32
    let context: OpaquePointer
    let completion: (@Sendable () -> Void)?
    init(sink: NiceEventSink, streamID: UInt32, componentID: UInt32, context: OpaquePointer, completion: (@Sendable () -> Void)?) {
        self.sink = sink
        self.streamID = streamID
        self.componentID = componentID
        self.context = context
        self.completion = completion
    }
}
