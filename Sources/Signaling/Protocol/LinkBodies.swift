/// Bodies of the node-to-node link handshake (docs/protocol.md "Node links"). A node dials
/// another node's `/ws`, gets the usual `challenge`, and answers with `link` instead of `login`.

/// `link`, dialling node → answering node: who the dialling node is, proof that it holds the
/// node key, and a nonce of its own for the answering node to sign.
public struct LinkBody: Codable, Sendable, Equatable {
    /// The dialling node's address, `host:port` of its HTTP endpoint.
    public var node: String
    /// Its Ed25519 node key, base64.
    public var key: String
    /// Signature of `LinkBody.signedText(nonce: challenge nonce, node: node)`.
    public var sig: String
    /// 32 random bytes, base64, for the answering node to sign in `linked`.
    public var nonce: String

    public init(node: String, key: String, sig: String, nonce: String) {
        self.node = node
        self.key = key
        self.sig = sig
        self.nonce = nonce
    }

    /// The text each side signs: a context line, the other side's nonce, its own address.
    public static func signedText(nonce: String, node: String) -> String {
        "meshnode.v1 link\n\(nonce)\n\(node)"
    }
}

/// `linked`, answering node → dialling node: the link is up; the answering node's address and
/// key, and its signature of `LinkBody.signedText(nonce: link.nonce, node: node)`.
public struct LinkedBody: Codable, Sendable, Equatable {
    public var node: String
    public var key: String
    public var sig: String
    /// The answering node's heartbeat interval in seconds: the dialling node pings this often.
    public var heartbeat: Double

    public init(node: String, key: String, sig: String, heartbeat: Double) {
        self.node = node
        self.key = key
        self.sig = sig
        self.heartbeat = heartbeat
    }
}
