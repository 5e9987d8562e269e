import Foundation

/// The mesh as one node sees it: the body of `GET /mesh` and what `meshnode status` prints.
public struct MeshStatus: Codable, Sendable, Equatable {
    public struct Node: Codable, Sendable, Equatable {
        public var node: String
        public var key: String
        /// True for the node that answered.
        public var local: Bool
        public var reachability: String
        public var relay: Bool
        public var load: Int
        public var capacity: Int
        public var version: String
        /// Median STUN round trip from the answering node, in ms; nil when not measured or silent.
        public var rttMs: Double?
        /// A link is up between the answering node and this one.
        public var linked: Bool
        public var links: [String]
        public var stun: [String]
        public var turn: [String]
        /// Seconds until the record expires unless refreshed.
        public var expiresIn: Double?
        /// The link the record last came over.
        public var via: String?
    }

    public var node: String
    public var key: String
    public var reachability: String
    public var relay: Bool
    /// Nodes whose dial-back decided the verdict, and how long the check took (ms).
    public var checkedBy: [String]
    public var dialbackMs: Double?
    /// This node first, then the others by address.
    public var nodes: [Node]
    public var links: [String]
    /// Relays handed out at login, best first (node addresses).
    public var relays: [String]
    public var time: Double
    /// Records this node holds whose address it could not prove (dial-back): not listed in
    /// `nodes`, never probed, never relays. A node behind a NAT is one of these to others.
    public var unproven: Int?
}
