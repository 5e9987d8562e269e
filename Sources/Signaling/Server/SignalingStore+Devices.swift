import Foundation
import SQLiteNIO

/// The keys a name's owner endorsed (docs/protocol.md "Devices"). The owner key is the name's
/// binding (`bindings`); `devices` holds the others with the owner's endorsement signature, so
/// that the node can hand a device its endorsement and peers can check it against the owner key.
extension SignalingStore {
    /// An endorsed key of a name.
    public struct Device: Sendable, Equatable {
        public var key: String
        /// The owner's signature of ``DeviceRules/endorsementText(name:key:)``.
        public var endorsement: String
        /// Unix seconds.
        public var added: Double

        public init(key: String, endorsement: String, added: Double) {
            self.key = key
            self.endorsement = endorsement
            self.added = added
        }
    }

    static func migrateDevices(_ db: SQLiteConnection) async throws {
        _ = try await db.query("""
            CREATE TABLE IF NOT EXISTS devices (name TEXT NOT NULL, key TEXT NOT NULL, endorsement TEXT NOT NULL, added REAL NOT NULL,
                                                PRIMARY KEY (name, key))
            """)
    }

    /// The keys endorsed for `name` (not its owner key), oldest first.
    public func devices(of name: String) async throws(SignalingError) -> [Device] {
        try await run("SELECT key, endorsement, added FROM devices WHERE name = ? ORDER BY added", [.text(name)]).compactMap { row in
            guard let key = row.column("key")?.string, let endorsement = row.column("endorsement")?.string else { return nil }
            return Device(key: key, endorsement: endorsement, added: row.column("added")?.double ?? 0)
        }
    }

    /// The endorsement of `key` for `name`, nil when the owner did not endorse it (or revoked it).
    public func endorsement(name: String, key: String) async throws(SignalingError) -> String? {
        try await run("SELECT endorsement FROM devices WHERE name = ? AND key = ?", [.text(name), .text(key)]).first?.column("endorsement")?.string
    }

    /// Records an endorsed key; returns false when it was endorsed already. Throws `store-full`
    /// when the name has `limit` endorsed keys. A device that logs in marks the name as used,
    /// as its owner's login does (``markSeen(name:)``).
    public func addDevice(name: String, key: String, endorsement: String, limit: Int) async throws(SignalingError) -> Bool {
        try await writer.write { db throws(SignalingError) -> Bool in
            let rows = try db.run("""
                INSERT INTO devices (name, key, endorsement, added) SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM devices WHERE name = ?) < ?
                ON CONFLICT DO NOTHING RETURNING key
                """, [.text(name), .text(key), .text(endorsement), .float(Date().timeIntervalSince1970), .text(name), .integer(limit)])
            if !rows.isEmpty { return true }
            if try !db.run("SELECT 1 AS x FROM devices WHERE name = ? AND key = ?", [.text(name), .text(key)]).isEmpty { return false }
            throw SignalingError(.storeFull, "\(name) has \(limit) linked devices, the most a name may have; remove one first")
        }
    }

    /// Forgets an endorsed key; returns false when it was not one.
    public func removeDevice(name: String, key: String) async throws(SignalingError) -> Bool {
        try await writer.write { db throws(SignalingError) -> Bool in
            try !db.run("DELETE FROM devices WHERE name = ? AND key = ? RETURNING key", [.text(name), .text(key)]).isEmpty
        }
    }

    /// A device of `name` logged in: the name is in use (unused names expire).
    public func markSeen(name: String) async throws(SignalingError) {
        try await writer.write { db throws(SignalingError) -> Void in
            try db.run("UPDATE bindings SET seen = ? WHERE name = ?", [.float(Date().timeIntervalSince1970), .text(name)])
        }
    }
}
