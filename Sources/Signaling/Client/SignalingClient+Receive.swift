import Foundation

/// What `SignalingClient` does with each frame from the node.
extension SignalingClient {
    func receive(_ text: String) {
        lastHeard = .now
        let message: SignalingMessage
        do {
            message = try SignalingCodec.decode(text)
        } catch {
            logger.warning("undecodable frame from the node", metadata: ["error": "\(error)"])
            return
        }
        switch message.payload {
        case .challenge(let body):
            // Signed for the node as dialled (docs/protocol.md "Login"), so that it cannot be relayed.
            let node = LoginBody.authority(of: activeURL) ?? nodeAuthority
            let login = LoginBody(name: name, key: identity.publicKeyBase64, node: node,
                                  sig: identity.sign(text: LoginBody.signedText(nonce: body.nonce, name: name, node: node)))
            transmit(SignalingMessage(id: UUID().uuidString, from: "", to: SignalingProtocol.nodeAddress, payload: .login(login)))
        case .welcome(let body):
            welcomed(body)
        case .error(let body):
            failed(body.error)
        case .ack, .members, .history:
            if let of = Self.answeredID(message), let continuation = waiting.removeValue(forKey: of) {
                outbox.removeAll { $0.id == of }
                continuation.resume(returning: message)
            }
        case .presence(let body):
            if let key = body.key {
                do {
                    try pins.check(pinAddress(of: body.name), key: key)
                } catch {
                    eventSink.yield(.error(error))
                    return
                }
            }
            eventSink.yield(.presence(body))
        case .chat(let body):
            // Acknowledge every delivery, even a repeat, so the node stops delivering it.
            transmit(SignalingMessage(id: UUID().uuidString, from: name, to: SignalingProtocol.nodeAddress,
                                      payload: .ack(AckBody(of: message.id, sender: message.from))))
            if seen.insert(message.from + "\n" + message.id) {
                eventSink.yield(.chat(ChatMessage(id: message.id, from: message.from, to: message.to, text: body.text, sent: body.sent)))
            }
        case .room(let body):
            eventSink.yield(.room(body))
        case .callSetup(let type, let body):
            do {
                eventSink.yield(.callSetup(try verifyCallSetup(type, body, from: message.from, to: message.to, id: message.id)))
            } catch {
                eventSink.yield(.error(error))
            }
        case .timeout(let body):
            eventSink.yield(.callTimeout(call: body.call))
        case .roomCall(.state(let body)):
            eventSink.yield(.roomCall(verifyRoomCallState(body)))
        case .device(let device):
            deviceMessage(device, message: message)
        case .ping:
            // The node measures the round trip of a forwarder's session by its own pings
            // (docs/protocol.md "Room calls", *Forwarded mode* item 7); answering costs nothing.
            transmit(SignalingMessage(id: message.id, from: name, to: SignalingProtocol.nodeAddress, payload: .pong))
        case .pong, .login, .subscribe, .unsubscribe, .join, .leave, .invite, .link, .linked, .mesh, .dialback, .dialbackResult, .prove, .proof,
             .roomCall(.request):
            break
        }
    }

    /// Checks a call-setup message against the sender's pinned key (pinning it on first use),
    /// the signature over the payload (DESIGN.md "Security model"), and its freshness: `ts`
    /// within the window and not seen before (``CallFreshness``; a node could replay what it
    /// relayed). Order: signature, time, pin, replay. The payload returned names the peers as
    /// this client addresses them (`alice@host:port` for a peer at another node), so that an
    /// answer can go to `payload.from`, and carries the key it verified against, to which the
    /// peer binds the call.
    func verifyCallSetup(_ type: CallSetupType, _ body: SignedBody, from: String, to: String, id: String,
                         now: Double = SignalingClient.now) throws(SignalingError) -> CallPayload {
        // Only a verified, fresh message may pin a key; only one from the pinned key enters the
        // replay cache (a refused one is refused again for the same reason).
        var payload = try CallSigning.verify(body, type: type, from: from, to: to, key: body.key, of: id)
        try callFreshness.checkTime(payload, now: now, of: id)
        // A linked device signs with its own key; the name's owner key is what is pinned, and
        // the owner's endorsement of the device key must verify under it (docs/protocol.md "Devices").
        if let owner = body.owner, owner != body.key {
            guard let endorsement = body.endorsement,
                  DeviceRules.verify(endorsement: endorsement, name: Address.bareName(from), key: body.key, owner: owner) else {
                throw SignalingError(.badSignature, "\(from) signed with a device key that its owner key did not endorse", of: id)
            }
            try pins.check(pinAddress(of: from), key: owner)
        } else {
            try pins.check(pinAddress(of: from), key: body.key)
        }
        try callFreshness.admit(body, payload, now: now, of: id)
        payload.from = from
        payload.to = to
        payload.key = body.key
        return payload
    }

    private static func answeredID(_ message: SignalingMessage) -> String? {
        switch message.payload {
        case .ack(let body): body.of
        case .members(let body): body.of
        case .history(let body): body.of
        default: nil
        }
    }

    private func welcomed(_ body: WelcomeBody) {
        nodeKeyWelcomed(body.nodeKey)
        learnMembers(body.members)
        loggedIn = true
        attemptsSinceLogin = 0
        heartbeat = .milliseconds(Int(max(body.heartbeat, 0.05) * 1000))
        if let continuation = firstLogin {
            firstLogin = nil
            everLoggedIn = true
            eventSink.yield(.connected(body))
            continuation.resume(returning: body)
        } else {
            eventSink.yield(.reconnected(body))
        }
        // Resume the session: presence subscriptions, then every unacknowledged chat message.
        if !subscriptions.isEmpty {
            transmit(SignalingMessage(id: UUID().uuidString, from: name, to: SignalingProtocol.nodeAddress,
                                      payload: .subscribe(NamesBody(names: subscriptions.sorted()))))
        }
        for message in outbox { transmit(message) }
    }

    private func failed(_ error: SignalingError) {
        // A refused login (the name is another key's) or another connection took over this
        // name: retrying cannot help, so the client stops.
        let refusedLogin = !loggedIn && [.nameTaken, .badSignature, .badField].contains(error.code)
        if refusedLogin || error.code == .replaced || error.code == .revoked {
            fatal = error
            endReason = error.description
            link?.sink.finish()
            return
        }
        if let of = error.of, let continuation = waiting.removeValue(forKey: of) {
            outbox.removeAll { $0.id == of }
            continuation.resume(throwing: error)
        } else {
            eventSink.yield(.error(error))
        }
    }
}
