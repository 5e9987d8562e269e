import Foundation

/// A linked device's standing: the name's owner key and the owner's endorsement of the device key.
struct DeviceProof: Sendable, Equatable {
    let owner: String
    let endorsement: String
}

/// Every connection of one name (one per device): a message sent to the name goes to each.
struct DeviceConnections {
    let handles: [ConnectionHandle]

    func send(_ message: SignalingMessage) {
        let text = SignalingCodec.encode(message)
        for handle in handles { handle.send(text: text) }
    }

    func send(text: String) {
        for handle in handles { handle.send(text: text) }
    }
}

/// Which of a name's connections takes a call's messages: `to` as `speaker` in call `call`
/// hears from `from` on one connection only once it placed or answered the call.
struct CallRoute: Hashable {
    let from: String
    let to: String
    let call: String
}

/// Device linking and several devices per name (docs/protocol.md "Devices"): the owner key
/// (the name's first) makes a link code, a new device claims it with its own key, the owner
/// endorses that key, and from then on the key logs in as the name. The node checks an
/// endorsement by the owner's key, never by the name a connection logged in with.
extension SignalingHub {
    /// Call routes kept at once (two per call in progress); a full table forgets routes of
    /// closed connections, then the oldest half, which only makes a call's messages reach all
    /// devices of a name (each drops what is not its call).
    static let maxCallRoutes = 8192

    func deviceMessage(_ device: DevicePayload, id: String, name: String, key: String, on connection: Int) async {
        guard let reply = sessions[connection]?.handle else { return }
        func refuse(_ code: SignalingError.Code, _ reason: String) {
            reply.send(errorMessage(SignalingError(code, reason, of: id), to: name))
        }
        let owner: String
        do {
            guard let bound = try await store.key(of: name) else { return refuse(.internalError, "\(name) has no key at this node") }
            owner = bound
        } catch {
            return refuse(error.code, error.reason)
        }
        let isOwner = owner == key
        switch device {
        case .code:
            guard isOwner else { return refuse(.forbidden, "only the device holding \(name)'s owner key (the first that logged in with the name) makes link codes") }
            guard let entry = deviceLinking.newCode(for: name, now: now()) else {
                return refuse(.rateLimited, "\(DeviceRules.maxPendingCodes) link codes are pending at this node; try again in a few minutes")
            }
            reply.send(nodeMessage(to: name, .device(.code(DeviceCodeBody(code: entry.code, expires: Self.seconds(DeviceRules.codeLifetime), of: id)))))
        case .endorse(let body):
            await endorse(body, id: id, name: name, owner: owner, isOwner: isOwner, reply: reply)
        case .revoke(let body):
            await revoke(body, id: id, name: name, owner: owner, isOwner: isOwner, reply: reply)
        case .devices:
            do {
                let online = Set((online[name] ?? []).compactMap { sessions[$0]?.key })
                var list = [DeviceEntry(key: owner, owner: true, added: 0, online: online.contains(owner))]
                list += try await store.devices(of: name).map { DeviceEntry(key: $0.key, owner: false, added: $0.added, online: online.contains($0.key)) }
                reply.send(nodeMessage(to: name, .device(.devices(DevicesBody(devices: list, of: id)))))
            } catch {
                refuse(error.code, error.reason)
            }
        case .claim:
            refuse(.badField, "already logged in as \(name); a device claims a code before it logs in")
        case .request, .added, .answeredElsewhere:
            refuse(.forbidden, "only the node sends \(device.type.rawValue) messages")
        }
    }

    private func endorse(_ body: EndorseBody, id: String, name: String, owner: String, isOwner: Bool, reply: ConnectionHandle) async {
        func refuse(_ code: SignalingError.Code, _ reason: String) {
            reply.send(errorMessage(SignalingError(code, reason, of: id), to: name))
        }
        guard isOwner else { return refuse(.forbidden, "only the device holding \(name)'s owner key endorses devices; this device is a linked one") }
        guard Identity.decodeKey(body.key) != nil, body.key != owner else {
            return refuse(.badField, "key must be a base64 Ed25519 public key other than the owner's")
        }
        guard DeviceRules.verify(endorsement: body.sig, name: name, key: body.key, owner: owner) else {
            return refuse(.badSignature, "sig is not the owner key's signature of \"meshnode.v1 device\\n\(name)\\n<key>\"")
        }
        do {
            let added = try await store.addDevice(name: name, key: body.key, endorsement: body.sig, limit: DeviceRules.maxDevices)
            reply.send(ack(id, added ? .ok : .duplicate, to: name))
        } catch {
            return refuse(error.code, error.reason)
        }
        logger.info("device endorsed", metadata: ["name": "\(name)", "key": "\(body.key.prefix(12))"])
        if let claim = deviceLinking.takeClaim(name: name, key: body.key), let claimer = sessions[claim.connection]?.handle {
            claimer.send(nodeMessage(to: "", .device(.added(DeviceAddedBody(name: name, key: body.key, owner: owner, endorsement: body.sig, of: claim.id)))))
        }
    }

    private func revoke(_ body: RevokeBody, id: String, name: String, owner: String, isOwner: Bool, reply: ConnectionHandle) async {
        func refuse(_ code: SignalingError.Code, _ reason: String) {
            reply.send(errorMessage(SignalingError(code, reason, of: id), to: name))
        }
        guard isOwner else { return refuse(.forbidden, "only the device holding \(name)'s owner key removes devices") }
        guard body.key != owner else { return refuse(.badField, "the owner key cannot be removed; it is what the name is bound to") }
        let removed: Bool
        do {
            removed = try await store.removeDevice(name: name, key: body.key)
        } catch {
            return refuse(error.code, error.reason)
        }
        // A pending claim of that key: the owner said no.
        var refused = false
        if let claim = deviceLinking.takeClaim(name: name, key: body.key) {
            refused = true
            sessions[claim.connection]?.handle.send(errorMessage(SignalingError(.forbidden, "the owner of \(name) refused this device", of: claim.id), to: nil))
        }
        // Its connections end now: an endorsement that is gone no longer logs in.
        for connection in online[name] ?? [] where sessions[connection]?.key == body.key {
            sessions[connection]?.handle.send(errorMessage(SignalingError(.revoked, "the owner of \(name) removed this device; it cannot log in as \(name) again"), to: name))
            drop(connection)
        }
        if removed { logger.info("device revoked", metadata: ["name": "\(name)", "key": "\(body.key.prefix(12))"]) }
        reply.send(ack(id, removed || refused ? .ok : .duplicate, to: name))
    }

    /// A device before login types a code: it is matched against the name's pending code, and on
    /// a match the owner's connections are asked to endorse the key.
    func claimDevice(_ body: DeviceClaimBody, id: String, on connection: Int) async {
        guard let reply = sessions[connection]?.handle else { return }
        func refuse(_ code: SignalingError.Code, _ reason: String) {
            reply.send(errorMessage(SignalingError(code, reason, of: id), to: nil))
        }
        guard Address.isValidName(body.name) else { return refuse(.badField, "name is not a valid name") }
        guard Identity.decodeKey(body.key) != nil else { return refuse(.badField, "key must be a base64 Ed25519 public key (32 bytes)") }
        guard body.code.count == 6, body.code.allSatisfy(\.isASCII), body.code.allSatisfy(\.isNumber) else {
            return refuse(.badField, "code must be the six digits the owner's device shows")
        }
        switch deviceLinking.claim(name: body.name, code: body.code, key: body.key, id: id, connection: connection, now: now()) {
        case .limited:
            logLimited(.notice, "device claims over the node's rate", kind: "device-claim", connection: nil)
            refuse(.rateLimited, "too many link codes tried at this node; wait a few seconds")
        case .wrong(let voided):
            // The same answer for no code, an expired code and a wrong one: a guesser learns nothing.
            if voided {
                logger.notice("link code void after wrong tries", metadata: ["name": "\(body.name)"])
                handle(of: body.name)?.send(errorMessage(SignalingError(.forbidden, "your link code was tried wrong \(DeviceRules.maxAttempts) times and is void; make a new one"), to: body.name))
            }
            refuse(.forbidden, "no such link code for \(body.name) now (wrong, used or expired); codes live \(Int(Self.seconds(DeviceRules.codeLifetime))) s and allow \(DeviceRules.maxAttempts) tries")
        case .matched:
            reply.send(ack(id, to: ""))
            let request = nodeMessage(to: body.name, .device(.request(DeviceRequestBody(name: body.name, key: body.key, claim: id))))
            do {
                let owner = try await store.key(of: body.name)
                for device in online[body.name] ?? [] where sessions[device]?.key == owner {
                    sessions[device]?.handle.send(request)
                }
            } catch {
                refuse(error.code, error.reason)
            }
        }
    }

    /// A connection closed: its claim and the call routes to it go.
    func forgetDevice(_ connection: Int) {
        deviceLinking.closed(connection)
        if callRoutes.values.contains(connection) { callRoutes = callRoutes.filter { $0.value != connection } }
    }

    /// Sweeps expired link codes; a device still waiting on one is told.
    func expireDeviceCodes(now: ContinuousClock.Instant) {
        for claim in deviceLinking.expire(now: now) {
            sessions[claim.connection]?.handle.send(errorMessage(SignalingError(.timeout, "the owner did not answer before the link code expired", of: claim.id), to: nil))
        }
    }

    // MARK: - Calls across devices

    /// Delivers a call-setup message to local peer `to`: on the one connection that placed or
    /// answered the call when there is one, else to every device of the name. A linked device's
    /// body carries its endorsement, for receivers that pinned the owner key.
    func deliverCallSetup(_ message: SignalingMessage, from: String, to: String, call: String) -> Bool {
        if let connection = callRoutes[CallRoute(from: from, to: to, call: call)], let handle = sessions[connection]?.handle {
            handle.send(message)
            return true
        }
        guard let devices = handle(of: to) else { return false }
        devices.send(message)
        return true
    }

    /// The body a connection's call setup is relayed with: its device proof added.
    func withDeviceProof(_ body: SignedBody, from connection: Int?) -> SignedBody {
        guard let connection, let proof = sessions[connection]?.device else { return body }
        var body = body
        body.owner = proof.owner
        body.endorsement = proof.endorsement
        return body
    }

    /// Records which device of a local name placed or answered a call, tells its other devices
    /// that it was answered elsewhere, and forgets routes of calls that ended.
    func routeCall(_ type: CallSetupType, from name: String, to peer: String, call: String, connection: Int) {
        switch type {
        case .call:
            remember(CallRoute(from: peer, to: name, call: call), connection)
        case .accept, .reject:
            remember(CallRoute(from: peer, to: name, call: call), connection)
            let note = nodeMessage(to: name, .device(.answeredElsewhere(AnsweredElsewhereBody(call: call, answer: type.rawValue))))
            for other in online[name] ?? [] where other != connection { sessions[other]?.handle.send(note) }
        case .hangup, .cancel:
            callRoutes[CallRoute(from: peer, to: name, call: call)] = nil
            callRoutes[CallRoute(from: name, to: peer, call: call)] = nil
        case .busy, .sdp, .candidate:
            break
        }
    }

    /// Whether a `busy` from one device of a name should wait: other devices of it still ring,
    /// so the caller hears `busy` only from the last. The device that said busy stops ringing.
    func busyFromOneDevice(caller: String, callee: String, call: String, connection: Int) -> Bool {
        let key = RingingCall.Key(caller: caller, callee: callee, call: call)
        guard var ringing = calls[key] else { return false }
        // Devices that went away since the call rang no longer count as ringing.
        ringing.devices = ringing.devices.filter { sessions[$0] != nil }
        guard ringing.devices.contains(connection), ringing.devices.count > 1 else { return false }
        ringing.devices.remove(connection)
        calls[key] = ringing
        return true
    }

    /// The local connections a ringing call rang on.
    func rang(caller: String, callee: String, call: String) {
        let key = RingingCall.Key(caller: caller, callee: callee, call: call)
        calls[key]?.devices = Set(online[callee] ?? [])
    }

    private func remember(_ route: CallRoute, _ connection: Int) {
        if callRoutes.count >= Self.maxCallRoutes {
            callRoutes = callRoutes.filter { sessions[$0.value] != nil }
            if callRoutes.count >= Self.maxCallRoutes {
                // Connection ids grow: the lowest are the oldest routes.
                let cut = callRoutes.values.sorted()[callRoutes.count / 2]
                callRoutes = callRoutes.filter { $0.value > cut }
            }
        }
        callRoutes[route] = connection
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension SignalingError.Code {
    /// The owner of the name removed this device's key: its connections are closed and it
    /// cannot log in as the name again (docs/protocol.md "Devices").
    public static let revoked = SignalingError.Code(rawValue: "revoked")
}
