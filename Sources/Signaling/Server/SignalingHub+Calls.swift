import Foundation

/// Call setup relay (docs/protocol.md "Call setup"). The node checks each signed body against
/// the sender's bound key and its freshness (``CallFreshness``) before relaying it, relays only
/// to an online recipient (call setup is not stored), and ends a call that rings unanswered
/// with `timeout`.
extension SignalingHub {
    /// A caller may ring at most this many calls at once, and the node at most
    /// ``maxRingingCalls``: the ringing table is keyed by what clients send, so it is bounded;
    /// each entry also expires with its ring timer (at most `maxRing` seconds).
    static let maxRingingPerCaller = 8
    static let maxRingingCalls = 4096
    /// Call-setup messages the node remembers within the freshness window (about 4 MB): a full
    /// window at the rate limit of 27 connections.
    static let maxFreshCallMessages = 65_536

    func callSetup(_ type: CallSetupType, _ body: SignedBody, message: SignalingMessage, name: String, key: String,
                   reply: ConnectionHandle) async {
        let id = message.id
        let to = message.to
        guard let target = normalise(to) else {
            return reply.send(errorMessage(SignalingError(.badField, "call setup goes to a peer name or name@host:port, not '\(to.prefix(40))'", of: id), to: name))
        }
        let payload: CallPayload
        do {
            payload = try CallSigning.verify(body, type: type, from: name, to: to, key: key, of: id)
            try callFreshness.admit(body, payload, now: Date().timeIntervalSince1970, of: id)
        } catch {
            return reply.send(errorMessage(error, to: name))
        }
        let ringing = RingingCall.Key(caller: name, callee: target, call: payload.call)
        if type == .call, let ring = payload.ring, !(1...configuration.maxRing).contains(ring) {
            return reply.send(errorMessage(SignalingError(.badField, "ring is \(ring) s; a call rings 1 to \(configuration.maxRing) s (leave it out for \(configuration.defaultRing))", of: id), to: name))
        }
        if type == .call, payload.room != nil || payload.roomCall != nil,
           let refusal = roomCallPairRefusal(room: payload.room, roomCall: payload.roomCall, caller: name, callee: target) {
            return reply.send(errorMessage(SignalingError(.forbidden, refusal, of: id), to: name))
        }
        if type == .call, calls[ringing] == nil, let refusal = ringRefusal(caller: name) {
            return reply.send(errorMessage(SignalingError(.rateLimited, refusal, of: id), to: name))
        }
        // An answer is for a call that rings here: the node knows which do (it runs their ring
        // timers), so an answer to nothing — a made-up call id, a call already answered, ended
        // or timed out — is refused rather than delivered. Messages of an answered call (`sdp`,
        // `candidate`, `hangup`) are relayed without such a check: the node keeps no state for
        // calls past ringing (they outlive node restarts); the receiving client binds them.
        if [.accept, .reject, .busy].contains(type), calls[RingingCall.Key(caller: target, callee: name, call: payload.call)] == nil {
            return reply.send(errorMessage(SignalingError(.forbidden, "no call \(payload.call.prefix(64)) from \(target.prefix(80)) rings for \(name) (never placed, or answered, ended or timed out)", of: id), to: name))
        }
        // One device of several says busy: the others still ring (SignalingHub+Devices.swift).
        if type == .busy, busyFromOneDevice(caller: target, callee: name, call: payload.call, connection: reply.id) {
            return reply.send(ack(id, to: name))
        }
        let body = withDeviceProof(body, from: reply.id)
        if let node = Address.parse(target)?.node {
            guard let link = link(to: node) else {
                return reply.send(errorMessage(SignalingError(.unavailable, "no link to node \(node) now; call setup is not stored", of: id), to: name))
            }
            remember(id, sentBy: name)
            link.send(SignalingMessage(id: id, from: qualified(name, toward: node), to: target, payload: .callSetup(type, body)))
        } else if let cluster, target == ForwarderAssignment.forwarderName {
            // In a cluster each member runs its own forwarder: a call to one goes to the forwarder
            // of the member hosting the room call (docs/cluster.md "Forwarded calls across members").
            let message = SignalingMessage(id: id, from: name, to: target, payload: .callSetup(type, body))
            return await clusterForwarderSetup(ClusterForwarderSetup(type: type, payload: payload, message: message, reply: reply), cluster: cluster)
        } else {
            guard deliverCallSetup(SignalingMessage(id: id, from: name, to: target, payload: .callSetup(type, body)), from: name, to: target, call: payload.call) else {
                return reply.send(errorMessage(SignalingError(.unavailable, "\(target) is offline; call setup is not stored", of: id), to: name))
            }
        }
        callSetupRelayed(type, payload, id: id, name: name, to: target, reply: reply)
    }

    /// What follows a call-setup message relayed for a local name: its ack, the ring and the
    /// device that speaks for the call.
    func callSetupRelayed(_ type: CallSetupType, _ payload: CallPayload, id: String, name: String, to target: String, reply: ConnectionHandle) {
        reply.send(ack(id, to: name))
        track(type, payload, from: name, to: target)
        routeCall(type, from: name, to: target, call: payload.call, connection: reply.id)
        if type == .call, !target.contains("@") { rang(caller: name, callee: target, call: payload.call) }
    }

    /// The freshness check for call setup that arrives over a node link, before it is relayed to
    /// a local peer: the other node checked it already, but a node could replay what it relayed.
    /// The signature is checked against the body's own key (this node does not know a remote
    /// peer's key; the receiving client checks it against its pin). Returns the refusal (`stale`,
    /// `replayed`, `bad-signature`, `bad-field`), or nil to relay. For the `.callSetup` case of
    /// `fromLink` (Links/SignalingHub+Links.swift), which is another part of issue 15's work.
    func linkedCallSetupRefusal(_ type: CallSetupType, _ body: SignedBody, message: SignalingMessage) -> SignalingError? {
        do {
            let payload = try CallSigning.verify(body, type: type, from: message.from, to: message.to, key: body.key, of: message.id)
            try callFreshness.admit(body, payload, now: Date().timeIntervalSince1970, of: message.id)
            return nil
        } catch {
            return error
        }
    }

    /// Why `caller` may not ring another call now, or nil when it may.
    func ringRefusal(caller: String) -> String? {
        guard calls.count < Self.maxRingingCalls else {
            return "\(calls.count) calls are ringing at this node, the most it tracks; try again when one is answered"
        }
        let own = calls.keys.lazy.filter { $0.caller == caller }.count
        guard own < Self.maxRingingPerCaller else {
            return "\(caller) has \(own) calls ringing, at most \(Self.maxRingingPerCaller) may ring at once; cancel one or wait for its timeout"
        }
        return nil
    }

    /// Keeps ringing calls to time them out; an answer or end by one of the two parties stops
    /// the timer. The table is keyed by (caller, callee, id), so that a third party that uses the
    /// same call id (or any id) only ever touches calls of its own.
    func track(_ type: CallSetupType, _ payload: CallPayload, from: String, to: String) {
        let placed = RingingCall.Key(caller: from, callee: to, call: payload.call)
        let received = RingingCall.Key(caller: to, callee: from, call: payload.call)
        switch type {
        case .call:
            // Both callSetup and the link's relay refuse a call beyond the bound before this.
            guard calls[placed] != nil || ringRefusal(caller: from) == nil else { return }
            // Local callers are refused outside 1...maxRing (callSetup); a linked node's may allow more.
            let ring = min(max(payload.ring ?? configuration.defaultRing, 1), configuration.maxRing)
            calls[placed]?.timer.cancel()
            let timer = Task { [weak self] in
                try? await Task.sleep(for: .seconds(ring))
                guard !Task.isCancelled else { return }
                await self?.ringTimedOut(placed)
            }
            calls[placed] = RingingCall(caller: from, callee: to, timer: timer)
        case .accept, .reject, .busy:
            stopRinging(received)
        case .cancel:
            stopRinging(placed)
        case .hangup:
            stopRinging(placed)
            stopRinging(received)
        case .sdp, .candidate:
            break
        }
    }

    private func stopRinging(_ key: RingingCall.Key) {
        calls.removeValue(forKey: key)?.timer.cancel()
    }

    private func ringTimedOut(_ key: RingingCall.Key) {
        guard let call = calls.removeValue(forKey: key) else { return }
        for party in [call.caller, call.callee] {
            route(nodeMessage(to: party, .timeout(TimeoutBody(call: key.call))), to: party)
        }
    }
}

extension SignalingHub.RingingCall {
    /// A ringing call as this node files it: caller and callee as ``SignalingHub/normalise(_:)``
    /// gives them (bare for local peers, `name@host:port` for others) and the caller's call id.
    struct Key: Hashable {
        let caller: String
        let callee: String
        let call: String
    }
}
