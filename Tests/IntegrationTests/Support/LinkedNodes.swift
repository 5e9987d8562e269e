import TestSupport

/// Two nodes on loopback, west linked to east, returned once west lists the link as up: the
/// setup of every test of rooms and room calls across nodes.
struct LinkedNodes {
    let east: MeshNodeServer
    let west: MeshNodeServer
    var eastAddress: String { "127.0.0.1:\(east.httpPort)" }
    var westAddress: String { "127.0.0.1:\(west.httpPort)" }

    /// `eastArguments`: more `serve` options for east (a forwarder, a smaller mesh limit).
    static func start(eastArguments: [String] = []) async throws -> LinkedNodes {
        let east = try await MeshNodeServer(eastArguments, bind: ["127.0.0.1"])
        let west: MeshNodeServer
        do {
            west = try await MeshNodeServer(["--link", east.signalingURL], bind: ["127.0.0.1"])
        } catch {
            east.stop()
            throw error
        }
        let nodes = LinkedNodes(east: east, west: west)
        do {
            try await waitUntil("west links to east", interval: .milliseconds(100)) {
                (try? await west.meshStatus().links.contains(nodes.eastAddress)) == true
            }
        } catch {
            nodes.stop()
            throw error
        }
        return nodes
    }

    func stop() {
        west.stop()
        east.stop()
    }
}
