/// Bodies of the node-to-node link handshake (docs/protocol.md "Node links"). A node dials
/// another node's `/ws`, gets the usual `challenge`, and answers with `link` instead of `login`.
/// The answering node then dials the address the dialler claims and has the node there prove
/// its key (`prove`/`proof`) before it binds the address to that key.

/// `link`, dialling node → answering node: who the dialling node is, proof that it holds the
/// node key, and a nonce of its own for the answering node to sign.
public struct LinkBody: Codable, Sendable, Equatable {
    /// The dialling node's address, `host:port` of its HTTP endpoint.
    public var node: String
    /// Its Ed25519 node key, base64.
    public var key: String
    /// Signature of `LinkBody.signedText(nonce: challenge nonce, node: node, to: answering node)`.
    public var sig: String
    /// 32 random bytes, base64, for the answering node to sign in `linked`.
    public var nonce: String

    public init(node: String, key: String, sig: String, nonce: String) {
        self.node = node
        self.key = key
        self.sig = sig
        self.nonce = nonce
    }

    /// The text each side signs: a context line, the other side's nonce, its own address and
    /// the address of the node it speaks to. Naming the other node keeps a signature from being
    /// replayed elsewhere: a node that dials a malicious node signs a link to that node only,
    /// which that node cannot pass on to a third node to pose as the dialler.
    public static func signedText(nonce: String, node: String, to other: String) -> String {
        "meshnode.v1 link\n\(nonce)\n\(node)\n\(other)"
    }
}

/// `linked`, answering node → dialling node: the link is up; the answering node's address and
/// key, and its signature of `LinkBody.signedText(nonce: link.nonce, node: node, to: link.node)`.
public struct LinkedBody: Codable, Sendable, Equatable {
    public var node: String
    public var key: String
    public var sig: String
    /// The answering node's heartbeat interval in seconds: the dialling node pings this often.
    public var heartbeat: Double
    /// Whether the answering node has proven the dialler's address (dial-back). False: the link
    /// carries mesh messages only (records, dial-back) until a later `linked` says true.
    public var proven: Bool?

    public init(node: String, key: String, sig: String, heartbeat: Double, proven: Bool? = nil) {
        self.node = node
        self.key = key
        self.sig = sig
        self.heartbeat = heartbeat
        self.proven = proven
    }
}

/// `prove`, a node → the node at an address (before any login, on a connection of its own):
/// "sign this nonce with your node key". The asking node dialled `ws://node/ws` itself, so the
/// answer tells it which key holds that address.
public struct ProveBody: Codable, Sendable, Equatable {
    /// 32 random bytes, base64.
    public var nonce: String
    /// The address the asking node dialled.
    public var node: String

    public init(nonce: String, node: String) {
        self.nonce = nonce
        self.node = node
    }
}

/// `proof`, answering a `prove`: the node's address and key, and its signature of
/// `ProofBody.signedText(nonce:node:)`.
public struct ProofBody: Codable, Sendable, Equatable {
    public var node: String
    public var key: String
    public var sig: String

    public init(node: String, key: String, sig: String) {
        self.node = node
        self.key = key
        self.sig = sig
    }

    /// A context of its own, so that a proof cannot pass for a link or login signature.
    public static func signedText(nonce: String, node: String) -> String {
        "meshnode.v1 node-proof\n\(nonce)\n\(node)"
    }
}
