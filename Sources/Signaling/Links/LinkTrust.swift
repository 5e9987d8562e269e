import Foundation

/// What the hub knows about proving node addresses (docs/protocol.md "Node links"): for each
/// link connection, which node it speaks for and whether each side has proven the other; the
/// dial-backs running now; recent outcomes per address. Every table is bounded.
struct LinkTrust: Sendable {
    /// One link connection.
    struct Link: Sendable {
        var node: String
        var key: String
        /// This node proved `key` at `node`: it dialled that address (as the dialling side, or
        /// by dial-back as the answering side).
        var weProved: Bool
        /// The other node proved this node's address (always true on the answering side: the
        /// dialler reached this node at its address).
        var theyProved: Bool
        /// The dialler's nonce, to sign a later `linked` that reports the proof.
        var nonce: String?
        /// The address of this node the other node dialled and knows it by, when that is not
        /// `HubConfiguration.nodeAddress` (a link dialled at the public host): this node's
        /// peers are `name@<this>` over the link.
        var ownAddress: String?
        /// The next dial-back attempt while not proven.
        var retry: Task<Void, Never>?
        var attempts = 0
        /// Dial-backs the records of this link may cause: a burst, then one per 2 s.
        var recordProofs = RateLimiter(rate: 0.5, burst: Double(LinkTrust.recordProofsPerLink))

        /// Carries chat, presence and calls: proven both ways.
        var routes: Bool { weProved && theyProved }
    }

    /// Dial-backs one link's records may cause at once (then one per 2 s): enough to learn a
    /// mesh of tens of nodes from a seed, too few to make this node a port scanner.
    static let recordProofsPerLink = 32
    /// Dial-backs running at once, for links and records together.
    static let maximumRunning = 8
    /// Addresses remembered (proven or failed) at most.
    static let maximumRemembered = 2048
    /// A proof is reused this long (records are refreshed every few seconds).
    static let provenFor: Duration = .seconds(600)
    /// An address whose proof failed is not dialled again for records before this.
    static let retryRecordsAfter: Duration = .seconds(30)
    /// Dial-backs for a link that is not proven yet: 1, 2, 4 … s apart, at most this.
    static let maximumRetryDelay: Duration = .seconds(60)

    /// Dial-backs for links claiming an address, all links together: a burst, then one a
    /// second. Anyone can open connections and claim addresses; this bounds the dials that
    /// causes (a link that finds none left stays mesh-only and is tried again later).
    var linkProofs = RateLimiter(rate: 1, burst: 32)
    var links: [Int: Link] = [:]
    var running = 0
    /// Addresses being proven now (for records), so that gossip does not start a second dial.
    var inFlight: Set<String> = []
    var proven: [String: (key: String, until: ContinuousClock.Instant)] = [:]
    var failed: [String: ContinuousClock.Instant] = [:]
    /// Set by tests; the hub dials WebSockets otherwise.
    var prover: NodeProver?

    /// The key proven at `address` recently, if any.
    func provenKey(at address: String, now: ContinuousClock.Instant) -> String? {
        guard let entry = proven[address], entry.until > now else { return nil }
        return entry.key
    }

    /// Remembers an outcome, within the bound (expired entries go first; when still full the
    /// outcome is not remembered, which costs only a later dial).
    mutating func remember(_ outcome: NodeProver.Outcome, at address: String, now: ContinuousClock.Instant) {
        if proven.count + failed.count >= Self.maximumRemembered {
            proven = proven.filter { $0.value.until > now }
            failed = failed.filter { $0.value > now }
            guard proven.count + failed.count < Self.maximumRemembered else { return }
        }
        switch outcome {
        case .proven(let key):
            proven[address] = (key, now + Self.provenFor)
            failed[address] = nil
        case .failed:
            failed[address] = now + Self.retryRecordsAfter
        }
    }
}
