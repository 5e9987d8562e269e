import Foundation

/// Devices from a client (docs/protocol.md "Devices"): the owner key makes link codes,
/// endorses the keys of new devices and removes them; any device lists them.
extension SignalingClient {
    /// A new link code for this name (owner key only): six digits and their lifetime in seconds.
    public func linkCode() async throws -> (code: String, expires: Double) {
        let answer = try await request(outgoing(.device(.code(DeviceCodeBody()))))
        guard case .device(.code(let body)) = answer.payload, let code = body.code else {
            throw SignalingError(.internalError, "the node answered device-code without a code")
        }
        return (code, body.expires ?? 0)
    }

    /// The name's keys: the owner's first, then the endorsed ones.
    public func devices() async throws -> [DeviceEntry] {
        let answer = try await request(outgoing(.device(.devices(DevicesBody()))))
        guard case .device(.devices(let body)) = answer.payload else { return [] }
        return body.devices ?? []
    }

    /// Endorses `key` for this name with this client's key (which must be the owner's).
    public func endorse(_ key: String) async throws {
        let sig = identity.sign(text: DeviceRules.endorsementText(name: name, key: key))
        _ = try await request(outgoing(.device(.endorse(EndorseBody(key: key, sig: sig)))))
    }

    /// Removes an endorsed key (or refuses a pending claim of it): its connections are closed.
    public func revoke(_ key: String) async throws {
        _ = try await request(outgoing(.device(.revoke(RevokeBody(key: key)))))
    }

    /// Device messages from the node: answers go to their request, the rest become events.
    func deviceMessage(_ device: DevicePayload, message: SignalingMessage) {
        switch device {
        case .code(let body):
            resume(body.of, with: message)
        case .devices(let body):
            resume(body.of, with: message)
        case .answeredElsewhere(let body):
            eventSink.yield(.answeredElsewhere(call: body.call))
        case .request(let body):
            eventSink.yield(.deviceRequest(body))
        case .claim, .endorse, .added, .revoke:
            break
        }
    }

    private func resume(_ id: String?, with message: SignalingMessage) {
        guard let id, let continuation = waiting.removeValue(forKey: id) else { return }
        continuation.resume(returning: message)
    }
}
