/// Call setup relay (docs/protocol.md "Call setup"). The node checks each signed body against
/// the sender's bound key before relaying it, relays only to an online recipient (call setup is
/// not stored), and ends a call that rings unanswered with `timeout`.
extension SignalingHub {
    func callSetup(_ type: CallSetupType, _ body: SignedBody, message: SignalingMessage, name: String, key: String,
                   reply: ConnectionHandle) async {
        let id = message.id
        let to = message.to
        guard Address.isValidName(to) else {
            return reply.send(errorMessage(SignalingError(.badField, "call setup goes to a peer name, not '\(to.prefix(40))'", of: id), to: name))
        }
        let payload: CallPayload
        do {
            payload = try CallSigning.verify(body, type: type, from: name, to: to, key: key, of: id)
        } catch {
            return reply.send(errorMessage(error, to: name))
        }
        guard let target = handle(of: to) else {
            return reply.send(errorMessage(SignalingError(.unavailable, "\(to) is offline; call setup is not stored", of: id), to: name))
        }
        target.send(SignalingMessage(id: id, from: name, to: to, payload: .callSetup(type, body)))
        reply.send(ack(id, to: name))
        track(type, payload, from: name, to: to)
    }

    /// Keeps ringing calls to time them out; any answer or end stops the timer.
    private func track(_ type: CallSetupType, _ payload: CallPayload, from: String, to: String) {
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
            handle(of: party)?.send(nodeMessage(to: party, .timeout(TimeoutBody(call: callID))))
        }
    }
}
