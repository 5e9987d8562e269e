/// Call setup relay (docs/protocol.md "Call setup"). The node checks each signed body against
/// the sender's bound key before relaying it, relays only to an online recipient (call setup is
/// not stored), and ends a call that rings unanswered with `timeout`.
extension SignalingHub {
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
        } catch {
            return reply.send(errorMessage(error, to: name))
        }
        if let node = Address.parse(target)?.node {
            guard let link = link(to: node) else {
                return reply.send(errorMessage(SignalingError(.unavailable, "no link to node \(node) now; call setup is not stored", of: id), to: name))
            }
            remember(id, sentBy: name)
            link.send(SignalingMessage(id: id, from: qualified(name), to: target, payload: .callSetup(type, body)))
        } else {
            guard let callee = handle(of: target) else {
                return reply.send(errorMessage(SignalingError(.unavailable, "\(target) is offline; call setup is not stored", of: id), to: name))
            }
            callee.send(SignalingMessage(id: id, from: name, to: target, payload: .callSetup(type, body)))
        }
        reply.send(ack(id, to: name))
        track(type, payload, from: name, to: target)
    }

    /// Keeps ringing calls to time them out; any answer or end stops the timer.
    func track(_ type: CallSetupType, _ payload: CallPayload, from: String, to: String) {
        let callID = payload.call
        switch type {
        case .call:
            let ring = min(max(payload.ring ?? configuration.defaultRing, 1), configuration.maxRing)
            calls[callID]?.timer.cancel()
            let timer = Task { [weak self] in
                try? await Task.sleep(for: .seconds(ring))
                guard !Task.isCancelled else { return }
                await self?.ringTimedOut(callID)
            }
            calls[callID] = RingingCall(caller: from, callee: to, timer: timer)
        case .accept, .reject, .busy, .cancel, .hangup:
            if let call = calls[callID], call.caller == from || call.callee == from {
                call.timer.cancel()
                calls[callID] = nil
            }
        case .sdp, .candidate:
            break
        }
    }

    private func ringTimedOut(_ callID: String) {
        guard let call = calls.removeValue(forKey: callID) else { return }
        for party in [call.caller, call.callee] {
            route(nodeMessage(to: party, .timeout(TimeoutBody(call: callID))), to: party)
        }
    }
}
