import Foundation

/// Proving node addresses (docs/protocol.md "Node links", "Proving an address"): answering
/// another node's `prove`, and dialling an address to have the node there prove its key, for a
/// link that claims the address and for node records that name it (docs/mesh.md).
extension SignalingHub {
    /// Replaces the WebSocket dial-back (tests give one that answers without sockets).
    public func setProver(_ prover: NodeProver) {
        trust.prover = prover
    }

    /// `prove`, before any login: signs the asker's nonce with this node's key, for the address
    /// the asker dialled. Only an asker that reached this node there learns anything it could
    /// not read from a record.
    func answerProof(_ body: ProveBody, id: String, on connection: Int) {
        guard let session = sessions[connection] else { return }
        guard let own = configuration.nodeAddress, let identity = configuration.nodeIdentity else {
            return session.handle.send(errorMessage(SignalingError(.forbidden, "this node has no node key", of: id), to: nil))
        }
        guard let nonce = Data(base64Encoded: body.nonce), nonce.count >= 16, nonce.count <= 64 else {
            return session.handle.send(errorMessage(SignalingError(.badField, "nonce must be 16 to 64 random bytes, base64", of: id), to: nil))
        }
        // The proof names the address the asker dialled when that is one of this node's own
        // (HubConfiguration.authorities: the numeric address of a node known by its public
        // host), else the node's address; an asker that dialled another name for it sees the
        // difference and refuses.
        let node = configuration.authorities.contains(body.node) ? body.node : own
        session.handle.send(nodeMessage(to: "", .proof(ProofBody(node: node, key: identity.publicKeyBase64,
                                                                 sig: identity.sign(text: ProofBody.signedText(nonce: body.nonce, node: node)))), id: id))
    }

    private var prover: NodeProver {
        trust.prover ?? NodeProver.webSocket(logger: logger)
    }

    /// Dials `address` now for a link; nil when too many dial-backs run already or the links'
    /// budget of dial-backs is used up (the link is then tried again later).
    func proveNow(_ address: String) async -> NodeProver.Outcome? {
        guard trust.running < LinkTrust.maximumRunning, trust.linkProofs.allow(now: now()) else { return nil }
        trust.running += 1
        let outcome = await prover.prove(address)
        trust.running -= 1
        trust.remember(outcome, at: address, now: now())
        return outcome
    }

    /// Tries again to prove a link's address, 1, 2, 4 … 60 s apart, while it is up.
    func scheduleProof(_ connection: Int) {
        guard var link = trust.links[connection], !link.weProved else { return }
        let delay = min(Duration.seconds(1 << min(link.attempts, 6)), LinkTrust.maximumRetryDelay)
        link.attempts += 1
        link.retry?.cancel()
        link.retry = Task { [weak self] in
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            await self?.retryProof(connection)
        }
        trust.links[connection] = link
    }

    private func retryProof(_ connection: Int) async {
        guard let link = trust.links[connection], !link.weProved else { return }
        let outcome = await proveNow(link.node)
        guard let current = trust.links[connection], current.key == link.key, !current.weProved else { return }
        switch outcome {
        case .proven(let key) where key == link.key:
            logger.notice("node link proven by dial-back", metadata: ["node": "\(link.node)", "connection": "\(connection)"])
            await promote(connection)
        case .proven:
            logger.notice("node link dropped: the node at its address proved another key", metadata: ["claimed-node": "\(link.node)", "connection": "\(connection)"])
            sessions[connection]?.handle.send(errorMessage(SignalingError(.notProven, "the node at \(link.node) proved another key"), to: SignalingProtocol.nodeAddress))
            drop(connection)
        case .failed, nil:
            scheduleProof(connection)
        }
    }

    // MARK: - Records

    /// Whether this node has proven `key` at `address`: over a link it proved to that very
    /// node, by a dial-back of its own not long ago, or through a live record it holds.
    func hasProven(key: String, at address: String, over connection: Int?) -> Bool {
        if let connection, let link = trust.links[connection], link.weProved, link.node == address, link.key == key { return true }
        if trust.provenKey(at: address, now: now()) == key { return true }
        return mesh?.entries[key]?.record.node == address
    }

    /// Starts proving the address of a record held as unproven, unless one runs for it, it
    /// failed a short while ago, too many run at once, or the link that brought it has used
    /// its dial-backs (the next refresh tries again).
    func proveRecord(_ record: NodeRecord, via node: String, on connection: Int?) {
        let address = record.node
        let time = now()
        if let until = trust.failed[address], until > time { return }
        guard let connection, trust.links[connection] != nil, !trust.inFlight.contains(address), trust.running < LinkTrust.maximumRunning else { return }
        // A link claiming this address is being proven already; its proof files the record.
        guard !trust.links.values.contains(where: { $0.node == address && $0.key == record.key }) else { return }
        guard trust.links[connection]!.recordProofs.allow(now: time) else { return }
        trust.inFlight.insert(address)
        trust.running += 1
        let dial = self.prover
        Task { [weak self] in
            let outcome = await dial.prove(address)
            await self?.recordProven(address, key: record.key, outcome: outcome, via: node)
        }
    }

    private func recordProven(_ address: String, key: String, outcome: NodeProver.Outcome, via node: String) async {
        trust.running -= 1
        trust.inFlight.remove(address)
        trust.remember(outcome, at: address, now: now())
        guard let held = mesh?.unproven[key] else { return }
        switch outcome {
        case .proven(let proven) where proven == key:
            await file([held.signed], from: held.via ?? node, on: nil)
        case .proven:
            mesh?.release(key: key)
            logger.warning("mesh: node record rejected", metadata: [
                "claimed-node": "\(address)", "via": "\(node)", "code": "\(MeshRecordRejection.Code.notProven.name)",
                "reason": "the node at \(address) proved another key",
            ])
        case .failed(let why):
            // Kept (and not used) until it expires: a node behind a NAT cannot be dialled.
            logger.info("mesh: node record not proven", metadata: ["claimed-node": "\(address)", "via": "\(node)", "reason": "\(why)"])
        }
    }
}
