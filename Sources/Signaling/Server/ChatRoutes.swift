import Synchronization

/// Name → the connections it is logged in on, readable from any thread (issue 17): the chat
/// fast path delivers a committed message from the store's thread through this table instead
/// of asking the hub's actor. The hub writes it wherever its `online` table changes
/// (``SignalingHub/setOnline(_:_:)``), so the two always hold the same names; an entry per
/// logged-in name, so the connection budget bounds it.
final class ChatRoutes: Sendable {
    private let table = Mutex<[String: [ConnectionHandle]]>([:])
    private let enabled = Atomic<Bool>(true)

    /// False in cluster mode: a name may be online at another member, which only the hub's
    /// router reaches, so every chat takes the hub's path there.
    var isEnabled: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// The connections `name` is logged in on now (one per device); empty when it is offline.
    func connections(of name: String) -> [ConnectionHandle] {
        table.withLock { $0[name] ?? [] }
    }

    func set(_ name: String, _ handles: [ConnectionHandle]) {
        table.withLock { $0[name] = handles.isEmpty ? nil : handles }
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
