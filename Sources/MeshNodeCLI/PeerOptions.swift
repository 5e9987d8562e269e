import ArgumentParser
import Foundation
import Logging
import Signaling

/// The options every peer command shares: which node, which name, which identity.
struct PeerOptions: ParsableArguments {
    @Option(help: "The node: ws://HOST:PORT/ws or http://HOST:PORT; repeat it for the members of a cluster, which are tried in turn when one is lost (docs/cluster.md).")
    var node: [String]
    @Option(help: "Your name at that node (bound to your key on first use).")
    var name: String
    @Option(help: "Identity file (default ~/.config/meshnode/identity; made by `meshnode keygen`).")
    var identity: String?
    @Option(help: "Pinned peer keys (default ~/.config/meshnode/known_peers.json).")
    var knownPeers: String?

    func client() throws -> SignalingClient {
        let path = identity ?? IdentityFile.defaultPath
        let loaded: Identity
        do { loaded = try IdentityFile.load(from: path) } catch { throw ValidationError(error.reason) }
        guard Address.isValidName(name) else {
            throw ValidationError("a name is 1 to 32 characters of A-Z a-z 0-9 . _ - and does not start with . or -")
        }
        var logger = Logger(label: "meshnode.join")
        logger.logLevel = .warning
        guard let first = node.first else { throw ValidationError("give the node with --node URL (repeatable for a cluster's members)") }
        return SignalingClient(url: first, fallbacks: Array(node.dropFirst()), name: name, identity: loaded, pins: KeyPins(path: knownPeers ?? KeyPins.defaultPath), logger: logger)
    }
}
