/// Presence subscriptions and rooms (docs/protocol.md "Presence", "Rooms").
extension SignalingHub {
    static let maxWatchedNames = 1000

    /// Sends `presence` for `name` to every connection subscribed to it.
    func announce(name: String, status: PresenceStatus, key: String?) {
        let body = PresenceBody(name: name, status: status, key: key)
        for connection in watchers[name] ?? [] {
            guard let session = sessions[connection] else { continue }
            session.handle.send(nodeMessage(to: session.name ?? "", .presence(session.node == nil ? body : attested(body))))
        }
    }

    func subscribe(_ requested: [String], id: String, on connection: Int, name: String) async {
        guard let session = sessions[connection] else { return }
        if let bad = requested.first(where: { normalise($0) == nil }) {
            return session.handle.send(errorMessage(SignalingError(.badField, "'\(bad.prefix(40))' is not a valid name or name@host:port", of: id), to: name))
        }
        let names = requested.compactMap(normalise)
        guard session.watching.count + names.count <= Self.maxWatchedNames else {
            return session.handle.send(errorMessage(SignalingError(.badField, "at most \(Self.maxWatchedNames) subscriptions per connection", of: id), to: name))
        }
        for watched in names {
            watchers[watched, default: []].insert(connection)
            sessions[connection]?.watching.insert(watched)
        }
        session.handle.send(ack(id, to: name))
        // Peers at other nodes: their node answers over the link with their current status.
        let remote = names.filter { $0.contains("@") }
        subscribeRemote(remote)
        // The current status of each local peer, so that the subscriber does not wait for a change.
        for watched in names where !watched.contains("@") {
            let key = (try? await store.key(of: watched)) ?? nil
            let status: PresenceStatus = online[watched] != nil ? .online : .offline
            session.handle.send(nodeMessage(to: name, .presence(PresenceBody(name: watched, status: status, key: key))))
        }
    }

    func unsubscribe(_ names: [String], id: String, on connection: Int, name: String) {
        for watched in names.compactMap(normalise) {
            watchers[watched]?.remove(connection)
            sessions[connection]?.watching.remove(watched)
        }
        sessions[connection]?.handle.send(ack(id, to: name))
    }

    func join(_ room: String, id: String, name: String, reply: ConnectionHandle) async {
        guard Address.isValidRoom(room) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name", of: id), to: name))
        }
        do {
            let added = try await store.join(room: room, member: name)
            reply.send(ack(id, added ? .ok : .duplicate, to: name))
            if added { await tellRoom(room, RoomEventBody(room: room, member: name, event: .joined)) }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    func leave(_ room: String, id: String, name: String, reply: ConnectionHandle) async {
        guard Address.isValidRoom(room) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name", of: id), to: name))
        }
        do {
            let removed = try await store.leave(room: room, member: name)
            reply.send(ack(id, removed ? .ok : .duplicate, to: name))
            if removed {
                let event = RoomEventBody(room: room, member: name, event: .left)
                reply.send(nodeMessage(to: name, .room(event)))
                await tellRoom(room, event)
            }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    func members(_ room: String, id: String, name: String, reply: ConnectionHandle) async {
        guard Address.isValidRoom(room) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name", of: id), to: name))
        }
        do {
            var list: [RoomMember] = []
            for member in try await store.members(of: room) {
                list.append(RoomMember(name: member, online: online[member] != nil, key: try await store.key(of: member)))
            }
            reply.send(nodeMessage(to: name, .members(MembersBody(room: room, members: list, of: id))))
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// Sends a `room` event to every online member of the room.
    private func tellRoom(_ room: String, _ event: RoomEventBody) async {
        guard let members = try? await store.members(of: room) else { return }
        for member in members {
            handle(of: member)?.send(nodeMessage(to: member, .room(event)))
        }
    }
}
