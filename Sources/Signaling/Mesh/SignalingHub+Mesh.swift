import Foundation

/// What the node around the hub does for the mesh: the I/O the hub must not know about.
public struct MeshHooks: Sendable {
    /// Dials the addresses of a `dialback` request (STUN Binding requests) and reports; the
    /// second argument is the IP address the asking node's link comes from.
    public var dialback: @Sendable (DialbackBody, String?) async -> [DialbackOutcome]
    /// Something changed: a link came up or went down, a record arrived or expired.
    public var changed: @Sendable () -> Void

    public init(dialback: @escaping @Sendable (DialbackBody, String?) async -> [DialbackOutcome],
                changed: @escaping @Sendable () -> Void) {
        self.dialback = dialback
        self.changed = changed
    }
}

/// The mesh over node links (docs/mesh.md): node records spread by gossip, and dial-back
/// requests answered for linked nodes.
extension SignalingHub {
    /// At most one `dialback` per link in this time.
    static let dialbackSpacing: Duration = .seconds(2)

    public func setMeshHooks(_ hooks: MeshHooks) {
        meshHooks = hooks
    }

    /// Every live record of other nodes.
    public var meshEntries: [MeshDirectory.Entry] {
        (mesh?.entries.values.map { $0 } ?? []).sorted { $0.record.node < $1.record.node }
    }

    /// Nodes with a link up now whose address this node proved (also those that carry mesh
    /// messages only because the other side has not proven this node yet).
    public var linkedNodes: [String] { Set(trust.links.values.filter(\.weProved).map(\.node)).sorted() }

    /// Records this node holds but has not proven (they are not used), for `/mesh`.
    public var unprovenCount: Int { mesh?.unproven.count ?? 0 }

    /// Every link connection, also those that carry mesh messages only.
    var meshConnections: [Int] { trust.links.keys.sorted() }

    /// Publishes this node's own record: kept for links that come up later, sent to every link
    /// now.
    public func publish(_ record: SignedNodeRecord) {
        ownRecord = record
        let message = nodeMessage(to: SignalingProtocol.nodeAddress, .mesh(MeshBody(records: [record])))
        for connection in meshConnections { sessions[connection]?.handle.send(message) }
    }

    /// A new link gets every record this node knows, its own first.
    func sendMesh(to connection: Int) {
        defer { meshHooks?.changed() }
        guard let mesh else { return }
        let records = (ownRecord.map { [$0] } ?? []) + mesh.entries.values.map(\.signed)
        guard !records.isEmpty else { return }
        // Chunks keep each frame far below the 64 KiB frame limit.
        for start in stride(from: 0, to: records.count, by: 4) {
            let chunk = Array(records[start..<min(start + 4, records.count)])
            sessions[connection]?.handle.send(nodeMessage(to: SignalingProtocol.nodeAddress, .mesh(MeshBody(records: chunk))))
        }
    }

    /// Records that came over the link to `node`: checked, filed, and passed on to every other
    /// link when they are news (flooding; sequence numbers stop the echo). A record is used
    /// only when this node has proven its key at its address; others wait for a dial-back.
    func receiveRecords(_ records: [SignedNodeRecord], from node: String, on connection: Int) async {
        await file(records, from: node, on: connection)
    }

    /// Files records from the link to `node` (`connection` nil: a record whose dial-back just
    /// proved it).
    func file(_ records: [SignedNodeRecord], from node: String, on connection: Int?) async {
        guard mesh != nil else { return }
        var news: [SignedNodeRecord] = []
        for signed in records.prefix(64) {
            let parsed = try? JSONDecoder().decode(NodeRecord.self, from: Data(signed.payload.utf8))
            let claimed = parsed?.node
            var pinned: String?
            if let claimed {
                pinned = linkKeys[claimed]
                if pinned == nil { pinned = (try? await store.key(of: "@" + claimed)) ?? nil }
            }
            // Our own record coming back and a leaving record are checked by `accept` (the
            // key signs them); any other record waits until its address is proven.
            var proven = true
            if let record = parsed, record.key != mesh?.ownKey, record.leaving != true {
                proven = hasProven(key: record.key, at: record.node, over: connection)
            }
            guard mesh != nil else { return }
            guard proven else {
                switch mesh!.hold(signed, via: node, pinnedKey: pinned) {
                case .success(let record): proveRecord(record, via: node, on: connection)
                case .failure(let rejection): logRejection(rejection, claimed: claimed, via: node, connection: connection)
                }
                continue
            }
            switch mesh!.accept(signed, via: node, pinnedKey: pinned) {
            case .added(let record):
                logger.info("mesh: node learned", metadata: ["node": "\(record.node)", "via": "\(node)", "relay": "\(record.relay)"])
                news.append(signed)
            case .updated:
                news.append(signed)
            case .left(let record):
                logger.info("mesh: node left", metadata: ["node": "\(record.node)", "via": "\(node)"])
                news.append(signed)
            case .unchanged:
                break
            case .rejected(let rejection):
                logRejection(rejection, claimed: claimed, via: node, connection: connection)
            }
        }
        guard !news.isEmpty else { return }
        let message = nodeMessage(to: SignalingProtocol.nodeAddress, .mesh(MeshBody(records: news)))
        for other in meshConnections where other != connection && trust.links[other]?.node != node {
            sessions[other]?.handle.send(message)
        }
        meshHooks?.changed()
    }

    /// One line per link and interval at most: a link sending a flood of bad records must not
    /// flood the log as well.
    private func logRejection(_ rejection: MeshRecordRejection, claimed: String?, via node: String, connection: Int?) {
        logLimited(.warning, "mesh: node record rejected", kind: "record", connection: connection, metadata: [
            "claimed-node": "\(claimed?.prefix(80) ?? "?")", "via": "\(node)", "code": "\(rejection.code.name)", "reason": "\(rejection.reason)",
        ])
    }

    /// Drops expired records (run by the sweeper).
    func expireRecords() {
        guard let expired = mesh?.expire(), !expired.isEmpty else { return }
        for record in expired {
            logger.info("mesh: node record expired", metadata: ["node": "\(record.node)"])
        }
        meshHooks?.changed()
    }

    // MARK: - Dial-back

    /// Answers a linked node's `dialback` (in a task: dialling takes up to a few seconds).
    func serveDialback(_ body: DialbackBody, id: String, from node: String, on connection: Int) {
        guard let session = sessions[connection] else { return }
        let reply = session.handle
        if let last = dialbacksServed[connection], ContinuousClock.now - last < Self.dialbackSpacing {
            return reply.send(errorMessage(SignalingError(.rateLimited, "one dialback per \(Self.dialbackSpacing) per link", of: id), to: SignalingProtocol.nodeAddress))
        }
        guard body.udp.count + body.tcp.count <= DialbackBody.maximumAddresses else {
            return reply.send(errorMessage(SignalingError(.badField, "at most \(DialbackBody.maximumAddresses) addresses per dialback", of: id), to: SignalingProtocol.nodeAddress))
        }
        guard let hooks = meshHooks else {
            return reply.send(errorMessage(SignalingError(.forbidden, "this node does not dial back", of: id), to: SignalingProtocol.nodeAddress))
        }
        dialbacksServed[connection] = .now
        let observed = reply.remoteIP.map(Self.unbracketed)
        let logger = logger
        Task {
            let results = await hooks.dialback(body, observed)
            logger.info("mesh: dialback answered", metadata: ["node": "\(node)", "ok": "\(results.filter(\.ok).count)/\(results.count)"])
            reply.send(SignalingMessage(id: UUID().uuidString, from: SignalingProtocol.nodeAddress, to: SignalingProtocol.nodeAddress,
                                        payload: .dialbackResult(DialbackResultBody(of: id, results: results, observed: observed))))
        }
    }

    /// Asks the linked node `node` to dial back; nil when there is no link, it refused, or no
    /// answer came within `timeout`.
    public func requestDialback(from node: String, _ body: DialbackBody, timeout: Duration = .seconds(8)) async -> DialbackResultBody? {
        guard let link = provenLink(to: node) else { return nil }
        let id = UUID().uuidString
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.cancelDialback(id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            pendingDialbacks[id] = continuation
            link.send(nodeMessage(to: SignalingProtocol.nodeAddress, .dialback(body), id: id))
        }
    }

    /// A link connection to `node` whose address this node proved (routed or mesh only).
    func provenLink(to node: String) -> ConnectionHandle? {
        if let routed = link(to: node) { return routed }
        return trust.links.first { $0.value.node == node && $0.value.weProved }.flatMap { sessions[$0.key]?.handle }
    }

    private func cancelDialback(_ id: String) {
        pendingDialbacks.removeValue(forKey: id)?.resume(returning: nil)
    }

    /// `host` without the brackets of an IPv6 literal.
    public static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
