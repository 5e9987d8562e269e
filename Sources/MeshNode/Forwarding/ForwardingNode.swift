import Logging
import Media

/// The forwarded room calls this node runs (docs/rooms.md "Bounds"): at most
/// ``maxCalls`` at once, each with its participants bounded by its ``ForwardingConfiguration``.
/// `meshnode serve --forwarder` will own one (docs/rooms.md "What is left").
public actor ForwardingNode {
    /// Forwarded calls at most at once: each costs a packet cache per source and CPU per packet.
    public nonisolated let maxCalls: Int
    /// The bounds each new call gets.
    public nonisolated let configuration: ForwardingConfiguration
    private var calls: [String: ForwardedCall] = [:]
    private let logger: Logger

    /// A node forwarding at most `maxCalls` calls.
    public init(maxCalls: Int = 64, configuration: ForwardingConfiguration = ForwardingConfiguration(), logger: Logger = Logger(label: "meshnode.forwarder")) {
        self.maxCalls = maxCalls
        self.configuration = configuration
        self.logger = logger
    }

    /// The forwarded call of room call `id`, opened if it is not running yet.
    /// - Throws: ``MediaError`` `.limitReached` when the node forwards ``maxCalls`` calls already.
    public func call(_ id: String) throws(MediaError) -> ForwardedCall {
        if let call = calls[id] { return call }
        guard calls.count < maxCalls else {
            throw MediaError(.limitReached, "this node forwards \(maxCalls) room calls already; the room's node should pick another forwarder")
        }
        let call = ForwardedCall(id: id, configuration: configuration, logger: logger)
        calls[id] = call
        return call
    }

    /// The forwarded call of room call `id` if it runs.
    public func existing(_ id: String) -> ForwardedCall? { calls[id] }

    /// The forwarded calls running now.
    public var runningCalls: [String] { calls.keys.sorted() }

    /// Ends the forwarded call `id` (its last participant left, or the room call ended).
    public func end(_ id: String) async {
        guard let call = calls.removeValue(forKey: id) else { return }
        await call.close()
    }

    /// Ends every forwarded call (the node shuts down).
    public func shutdown() async {
        for id in Array(calls.keys) { await end(id) }
    }
}
