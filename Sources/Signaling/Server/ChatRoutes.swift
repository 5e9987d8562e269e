import Synchronization

/// Name → the connections it is logged in on, readable from any thread (issue 17): the chat
/// fast path delivers a committed message from the store's thread through this table instead
/// of asking the hub's actor. The hub writes it wherever its `online` table changes
/// (``SignalingHub/setOnline(_:_:)``), so the two always hold the same names; an entry per
/// logged-in name, so the connection budget bounds it.
///
/// In cluster mode an entry also holds one handle per other member the name is online at
/// (``SignalingHub/setRemoteOnline(_:_:)``, mirroring `remoteOnline`, bounded as it is):
/// a frame written to it goes to that member through the router, as the hub's own path does.
final class ChatRoutes: Sendable {
    private struct Entry {
        var local: [ConnectionHandle] = []
        var remote: [ConnectionHandle] = []
    }

    private let table = Mutex<[String: Entry]>([:])
    private let enabled = Atomic<Bool>(true)

    /// False stops the fast path: every chat takes the hub's path.
    var isEnabled: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// Where a frame for `name` goes now: its connections here (one per device) and, in a
    /// cluster, one handle per other member it is online at; empty when it is offline.
    func connections(of name: String) -> [ConnectionHandle] {
        table.withLock { table in
            guard let entry = table[name] else { return [] }
            return entry.remote.isEmpty ? entry.local : entry.local + entry.remote
        }
    }

    /// `name`'s connections at this member only: where a frame another member sent goes.
    func localConnections(of name: String) -> [ConnectionHandle] {
        table.withLock { $0[name]?.local ?? [] }
    }

    func set(_ name: String, _ handles: [ConnectionHandle]) {
        update(name) { $0.local = handles }
    }

    func setRemote(_ name: String, _ handles: [ConnectionHandle]) {
        update(name) { $0.remote = handles }
    }

    private func update(_ name: String, _ change: (inout Entry) -> Void) {
        table.withLock { table in
            var entry = table[name] ?? Entry()
            change(&entry)
            table[name] = entry.local.isEmpty && entry.remote.isEmpty ? nil : entry
        }
    }
}

extension SignalingHub {
    /// Sets the connections `name` is online on (none: offline), in the hub's table and in
    /// the fast path's.
    func setOnline(_ name: String, _ connections: [Int]) {
        online[name] = connections.isEmpty ? nil : connections
        routes.set(name, connections.compactMap { sessions[$0]?.handle })
    }
}
