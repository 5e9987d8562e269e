import Foundation

/// Cluster mode (docs/cluster.md): the hub's side of the cross-member router. The router
/// (`SignalingCluster.ClusterRouter`) calls these when another member tells it something; the
/// hub calls ``ClusterRouting`` when one of its names changes presence and, through
/// ``handle(of:)``, when it writes to a name online at another member.
extension SignalingHub {
    /// Names online at other members are at most this many (name, member) pairs: one entry per
    /// logged-in name, so the bound is the cluster's connection budget.
    public static let maxRemotePresence = 1_000_000

    /// Joins a cluster: from now on the hub routes to names at other members and tells them
    /// about its own. `online`: who is online at the other members now (name → members).
    public func joinCluster(_ routing: any ClusterRouting, online: [String: Set<String>]) {
        cluster = routing
        // The chat fast path stays on: its routes hold a handle per member a name is online at.
        for (name, members) in online where !members.isEmpty { setRemoteOnline(name, members) }
        // Names that logged in here while this member started (its page and `/ws` answer before
        // it joined): their presence was not published then.
        for (name, key) in localPresence { routing.presence(name: name, online: true, key: key) }
    }

    /// Sets the other members `name` is online at (none: offline elsewhere), in the hub's table
    /// and in the fast path's (``ChatRoutes``), as ``setOnline(_:_:)`` does for this member's.
    func setRemoteOnline(_ name: String, _ members: Set<String>) {
        remoteOnline[name] = members.isEmpty ? nil : members
        guard let cluster else { return }
        routes.setRemote(name, members.sorted().map { member in
            // Negative ids: never a local connection's.
            ConnectionHandle(id: -1, hostHint: nil, sink: .output(ClusterOutput(routing: cluster, name: name, member: member)))
        })
    }

    /// Another member says `name` went online or offline there; its watchers here hear it when
    /// the name's cluster-wide status changed.
    public func clusterPresence(name: String, member: String, online isOnline: Bool, key: String?) {
        guard let cluster, member != cluster.member else { return }
        let wasOnline = online[name] != nil || remoteOnline[name] != nil
        var members = remoteOnline[name] ?? []
        if isOnline {
            guard remoteOnline[name] != nil || remoteOnline.count < Self.maxRemotePresence else { return }
            guard members.insert(member).inserted else { return }
        } else {
            guard members.remove(member) != nil else { return }
        }
        setRemoteOnline(name, members)
        if isOnline { tellHostedRoomCalls(toNameAt: name) }
        let nowOnline = online[name] != nil || remoteOnline[name] != nil
        guard wasOnline != nowOnline else { return }
        fromCluster = true
        defer { fromCluster = false }
        announce(name: name, status: nowOnline ? .online : .offline, key: key)
    }

    /// A member died (its heartbeat stopped): every name it held is offline there.
    public func clusterMemberGone(_ member: String) {
        for (name, members) in remoteOnline where members.contains(member) {
            clusterPresence(name: name, member: member, online: false, key: nil)
        }
    }

    /// A frame another member wrote to `name`, whose connections are here. Call setup is
    /// tracked as a link's is (SignalingHub+Calls.swift): the callee's answer arrives at this
    /// member, which must know the call rings. Delivered to local connections only, so that
    /// a name online at several members cannot bounce a frame between them.
    public func clusterDeliver(text: String, to name: String) {
        fromCluster = true
        defer { fromCluster = false }
        guard let devices = handle(of: name) else { return }
        if let message = try? SignalingCodec.decode(text), case .roomCall(.state(let state)) = message.payload {
            rememberClusterRoomCall(state)
            return devices.send(text: text)
        }
        guard let message = try? SignalingCodec.decode(text), case .callSetup(let type, let body) = message.payload,
              let payload = try? JSONDecoder().decode(CallPayload.self, from: Data(body.payload.utf8)) else {
            return devices.send(text: text)
        }
        if name == ForwarderAssignment.forwarderName, let refusal = clusterForwarderRefusal(type, payload, body, from: message.from) {
            return logLimited(.notice, "cluster: a call to this member's forwarder refused", kind: "cluster forwarder call", connection: nil,
                              metadata: ["from": "\(message.from.prefix(80))", "reason": "\(refusal)"])
        }
        if message.from == ForwarderAssignment.forwarderName, [.hangup, .reject, .busy].contains(type) {
            // The host's forwarder ended the participant's call: its route is done with.
            clusterForwarderRoutes[CallRoute(from: name, to: message.from, call: payload.call)] = nil
        }
        _ = deliverCallSetup(message, from: message.from, to: name, call: payload.call)
        track(type, payload, from: message.from, to: name)
        if type == .call { rang(caller: message.from, callee: name, call: payload.call) }
    }

    /// ``clusterDeliver(text:to:)`` for a chat delivery — most of what members send each other —
    /// without a turn of the hub's actor: handed to `name`'s connections here, from the
    /// router's thread. False, having done nothing, for any other frame (call setup must be
    /// tracked by the hub). The frames come from the members' own encoders, whose keys are
    /// sorted (`type` last): a frame that ends so is of type `chat`.
    public nonisolated func clusterDeliverChat(text: String, to name: String) -> Bool {
        guard text.hasSuffix(Self.chatFrameTail) else { return false }
        for connection in routes.localConnections(of: name) { connection.send(text: text) }
        return true
    }

    static let chatFrameTail = #","type":"chat"}"#

    /// The URLs of the cluster's members (their `member-url`), in the welcome of each login.
    public func setClusterURLs(_ urls: [String]) {
        clusterURLs = urls
    }

    /// The names logged in at this member.
    public var localNames: [String] { Array(online.keys) }

    /// The names logged in at this member with the key each is bound to (its owner key).
    public var localPresence: [(name: String, key: String?)] {
        online.compactMap { name, connections in
            connections.first.flatMap { sessions[$0] }.map { (name, $0.device?.owner ?? $0.key) }
        }
    }

    /// `name` is online somewhere in the cluster (here or at another member).
    func isOnlineInCluster(_ name: String) -> Bool {
        online[name] != nil || remoteOnline[name] != nil
    }

    /// The connections of `name` at other members, as handles whose frames go to those members
    /// (none while the hub is delivering what another member sent).
    func clusterHandles(of name: String) -> [ConnectionHandle] {
        // Each member's `forwarder` is its own (call setup to it is routed by room call:
        // ``clusterForwarderMember(_:_:caller:id:)``), never the same name at every member.
        guard let cluster, !fromCluster, name != ForwarderAssignment.forwarderName, let members = remoteOnline[name] else { return [] }
        return members.sorted().map { member in
            // Negative ids: never a local connection's.
            ConnectionHandle(id: -1, hostHint: nil, sink: .output(ClusterOutput(routing: cluster, name: name, member: member)))
        }
    }

    /// Tells the other members about a presence change made here.
    func publishPresence(name: String, status: PresenceStatus, key: String?) {
        guard let cluster, !fromCluster else { return }
        cluster.presence(name: name, online: status == .online, key: key)
    }
}
