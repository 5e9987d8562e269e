/// Presence subscriptions and rooms (docs/protocol.md "Presence", "Rooms").
extension SignalingHub {
    static let maxWatchedNames = 1000

    /// Sends `presence` for `name` to every connection subscribed to it.
    func announce(name: String, status: PresenceStatus, key: String?) {
        let body = PresenceBody(name: name, status: status, key: key)
        for connection in watchers[name] ?? [] {
            guard let session = sessions[connection] else { continue }
            session.handle.send(nodeMessage(to: session.name ?? "", .presence(session.node == nil ? body : attested(body, toward: session.node))))
        }
    }

    func subscribe(_ requested: [String], id: String, on connection: Int, name: String) async {
        guard let session = sessions[connection] else { return }
        if let bad = requested.first(where: { normalise($0) == nil }) {
            return session.handle.send(errorMessage(SignalingError(.badField, "'\(bad.prefix(40))' is not a valid name or name@host:port", of: id), to: name))
        }
        let names = requested.compactMap(normalise)
        guard session.watching.union(names).count <= Self.maxWatchedNames else {
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
            let status: PresenceStatus = isOnlineInCluster(watched) ? .online : .offline
            session.handle.send(nodeMessage(to: name, .presence(PresenceBody(name: watched, status: status, key: key))))
        }
    }

    func unsubscribe(_ names: [String], id: String, on connection: Int, name: String) {
        for watched in names.compactMap(normalise) {
            unwatch(watched, by: connection)
            sessions[connection]?.watching.remove(watched)
        }
        sessions[connection]?.handle.send(ack(id, to: name))
    }

    /// Takes `connection` off the watchers of `name`. A name nobody watches any more leaves the
    /// table (a client churning unique names must not grow it), and the node of a remote name
    /// is told, so that the link's subscriptions there do not grow either.
    func unwatch(_ name: String, by connection: Int) {
        // In place: a copy of a popular name's set per unsubscribe would cost its size.
        watchers[name]?.remove(connection)
        guard watchers[name]?.isEmpty == true else { return }
        watchers[name] = nil
        if let parsed = Address.parse(name), let node = parsed.node {
            link(to: node)?.send(nodeMessage(to: SignalingProtocol.nodeAddress, .unsubscribe(NamesBody(names: [parsed.name]))))
        }
    }

    /// The room a request names when this node hosts it. A malformed name is refused; a room of
    /// another node (`#room@host:port`) is relayed to its host with `relaying`'s payload. Nil
    /// in both cases: the request is answered.
    private func localRoom(_ requested: String, id: String, name: String, reply: ConnectionHandle,
                           relaying payload: (String) -> SignalingPayload) -> String? {
        guard let address = roomAddress(requested) else {
            reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name, or #name@host:port", of: id), to: name))
            return nil
        }
        guard let host = address.node else { return address.name }
        relayToHost(SignalingMessage(id: id, from: name, to: SignalingProtocol.nodeAddress, payload: payload(address.name)),
                    room: address.name, node: host, name: name, reply: reply)
        return nil
    }

    func join(_ requested: String, rule: RoomRule?, id: String, name: String, reply: ConnectionHandle) async {
        guard let room = localRoom(requested, id: id, name: name, reply: reply, relaying: { .join(RoomBody(room: $0)) }) else { return }
        do {
            let added = try await store.join(room: room, member: name, rule: rule ?? configuration.defaultRoomRule)
            reply.send(ack(id, added ? .ok : .duplicate, to: name))
            if added {
                await tellRoom(room, RoomEventBody(room: room, member: name, event: .joined))
                await tellRunningRoomCalls(to: name, rooms: [room])
                if let cluster, roomCalls[room] == nil { await askHostToTell(room: room, name: name, cluster: cluster) }
            }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    func leave(_ requested: String, id: String, name: String, reply: ConnectionHandle) async {
        guard let room = localRoom(requested, id: id, name: name, reply: reply, relaying: { .leave(RoomBody(room: $0)) }) else { return }
        do {
            let removed = try await store.leave(room: room, member: name)
            reply.send(ack(id, removed ? .ok : .duplicate, to: name))
            if removed {
                let event = RoomEventBody(room: room, member: name, event: .left)
                reply.send(nodeMessage(to: name, .room(event)))
                await tellRoom(room, event)
                await roomMemberLeft(name, room: room)
            }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// The owner of a room lets a name join it (an `invite` room admits no one else).
    func invite(_ body: InviteBody, id: String, name: String, reply: ConnectionHandle) async {
        // A peer of another node is invited by its address, `name@host:port`: it joins over its node's link.
        guard Address.isValidRoom(body.room), let invited = normalise(body.name) else {
            return reply.send(errorMessage(SignalingError(.badField, "invite names a #room of this node and a name or name@host:port", of: id), to: name))
        }
        do {
            guard let room = try await store.room(body.room), room.owner == name else {
                return reply.send(errorMessage(SignalingError(.forbidden, "only the owner of \(body.room) invites to it", of: id), to: name))
            }
            let added = try await store.invite(room: body.room, name: invited)
            reply.send(ack(id, added ? .ok : .duplicate, to: name))
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// The members of a room of this node, for a member; `toward`: the node a remote member
    /// asks over, to which this node's own names are written qualified.
    func members(_ requested: String, id: String, name: String, reply: ConnectionHandle, toward node: String? = nil) async {
        guard let room = localRoom(requested, id: id, name: name, reply: reply, relaying: { .members(MembersBody(room: $0)) }) else { return }
        do {
            let members = try await store.members(of: room)
            // Who is in a room (and online) is for its members only.
            guard members.contains(name) else {
                return reply.send(errorMessage(SignalingError(.notMember, "join \(room) before listing its members", of: id), to: name))
            }
            var list: [RoomMember] = []
            // A peer of another node: this node cannot tell whether it is online (false), and
            // holds no key for it; its own node answers presence for it.
            for member in members {
                list.append(RoomMember(name: node.map { linkAddress(member, toward: $0) } ?? member, online: isOnlineInCluster(member),
                                       key: member.contains("@") ? nil : try await store.key(of: member)))
            }
            reply.send(nodeMessage(to: name, .members(MembersBody(room: room, members: list, of: id))))
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// Sends a `room` event to every online member of the room: here, or over the link to the
    /// node of a member at another node (which hands it on, SignalingHub+RemoteRooms.swift).
    func tellRoom(_ room: String, _ event: RoomEventBody) async {
        guard let members = try? await store.members(of: room) else { return }
        for member in members {
            if let node = Address.parse(member)?.node {
                var qualified = event
                qualified.member = linkAddress(event.member, toward: node)
                link(to: node)?.send(nodeMessage(to: member, .room(qualified)))
            } else {
                handle(of: member)?.send(nodeMessage(to: member, .room(event)))
            }
        }
    }
}
