import STUN

/// What changed on this host's network in one burst of rtnetlink events: the addresses that
/// went away and came, by their net effect over the burst.
public struct NetworkChange: Hashable, Sendable, CustomStringConvertible {
    /// Global addresses that went away (a socket bound to one can send no more).
    public var removed: Set<IPAddress> = []
    /// Usable addresses that appeared (global scope, past IPv6 duplicate detection).
    public var added: Set<IPAddress> = []
    /// A default route of the main table came or went: the way out may be another now.
    public var defaultRouteChanged = false
    /// An interface went up or down.
    public var linkChanged = false
    /// The kernel dropped events (ENOBUFS: the socket's buffer overflowed) or sent a datagram
    /// that did not parse: what changed is unknown, so treat every path as suspect.
    public var eventsLost = false

    /// Creates a change.
    public init(removed: Set<IPAddress> = [], added: Set<IPAddress> = [], defaultRouteChanged: Bool = false,
                linkChanged: Bool = false, eventsLost: Bool = false) {
        self.removed = removed
        self.added = added
        self.defaultRouteChanged = defaultRouteChanged
        self.linkChanged = linkChanged
        self.eventsLost = eventsLost
    }

    /// Nothing a path could depend on changed (loopback, link-local or tentative addresses only).
    public var isEmpty: Bool { removed.isEmpty && added.isEmpty && !defaultRouteChanged && !linkChanged && !eventsLost }

    public var description: String {
        var parts: [String] = []
        if !removed.isEmpty { parts.append("gone: " + removed.map(\.description).sorted().joined(separator: ", ")) }
        if !added.isEmpty { parts.append("new: " + added.map(\.description).sorted().joined(separator: ", ")) }
        if defaultRouteChanged { parts.append("default route changed") }
        if linkChanged { parts.append("an interface went up or down") }
        if eventsLost { parts.append("events lost") }
        return parts.isEmpty ? "nothing that matters" : parts.joined(separator: "; ")
    }
}

/// Gathers the events of one burst into one ``NetworkChange``. An interface change comes as a
/// burst (a phone that leaves the Wi-Fi: address gone, link down, another link up, its address,
/// its default route, within milliseconds), and acting on its first event would gather
/// candidates and reconnect on a network that is half there. The burst ends after `quiet`
/// without events, or `longest` after its first event (so that a flapping interface still
/// reports). Sans-IO: the caller gives the time.
public struct NetworkChangeBatch: Sendable {
    public let quiet: Duration
    public let longest: Duration
    private var change = NetworkChange()
    private var first: ContinuousClock.Instant?
    private var last: ContinuousClock.Instant?

    /// Creates an empty batch.
    public init(quiet: Duration = .milliseconds(200), longest: Duration = .seconds(1)) {
        self.quiet = quiet
        self.longest = longest
    }

    /// When the burst under way ends; nil when there is none.
    public var deadline: ContinuousClock.Instant? {
        guard let first, let last else { return nil }
        return min(last + quiet, first + longest)
    }

    /// Takes the events of one datagram.
    public mutating func add(_ events: [NetworkEvent], at now: ContinuousClock.Instant) {
        for event in events {
            switch event {
            case .addressAdded(let address):
                guard address.isUsable else { continue }
                // Gone and back within the burst: sockets bound to it still work.
                if change.removed.remove(address.address) == nil { change.added.insert(address.address) }
            case .addressRemoved(let address):
                guard address.scope == .global else { continue }
                if change.added.remove(address.address) == nil { change.removed.insert(address.address) }
            case .linkChanged:
                change.linkChanged = true
            case .routeChanged(let isDefault):
                if isDefault { change.defaultRouteChanged = true }
            }
            first = first ?? now
            last = now
        }
    }

    /// The kernel dropped events, or a datagram did not parse.
    public mutating func lost(at now: ContinuousClock.Instant) {
        change.eventsLost = true
        first = first ?? now
        last = now
    }

    /// The burst's change once it is over (and the batch empty again); nil before, or when it
    /// changed nothing a path could depend on.
    public mutating func take(at now: ContinuousClock.Instant) -> NetworkChange? {
        guard let deadline, now >= deadline else { return nil }
        let result = change
        self = NetworkChangeBatch(quiet: quiet, longest: longest)
        return result.isEmpty ? nil : result
    }
}
