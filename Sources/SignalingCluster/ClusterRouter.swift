import Foundation
import Logging
import PostgresNIO
import Signaling
import Synchronization

/// The cross-member router of a cluster (docs/cluster.md), on PostgreSQL's LISTEN/NOTIFY.
///
/// - Each member listens on its own channel `mn_m_MEMBER`. Frames for names online at another
///   member travel in the notification's payload: `*` and records `NAME SP FRAME` separated
///   by LF, as many as fit in ``maxPayload`` (PostgreSQL's limit is 8000 bytes) — one
///   notification per batch per member, not one per frame. A frame with an LF in it goes
///   alone as `NAME SP FRAME` (the member's encoders never write one, but a frame relayed
///   verbatim might); one too large for a notification goes into `cluster_frames` and the
///   notification carries `#ID NAME`.
/// - A chat delivery received is handed to the name's connections from the listener's
///   thread (``SignalingHub/clusterDeliverChat(text:to:)``); other frames take the hub's actor.
/// - Presence goes to every member on `mn_cluster` (`on MEMBER NAME KEY`, `off MEMBER NAME`)
///   and into the `presence` table, from which a member that starts reads who is online.
/// - Liveness: each member writes its `cluster_members` row every ``heartbeat``; a member whose
///   row is older than ``deadAfter`` is reaped by whichever member sees it first (the `DELETE`
///   decides which): its presence rows go and every member hears `gone MEMBER`.
///
/// Notifications are not durable and need not be: chat is in the store before it is acked, and
/// what a dead member did not hand over is delivered from the store at the recipient's next
/// login. Frames to one member leave in order from one publisher connection, in batches.
public final class ClusterRouter: ClusterRouting {
    public let member: String
    /// This member's `/ws` as clients reach it (`member-url`), or nil.
    let url: String?
    let client: PostgresClient
    let store: PostgresStore
    let hub: SignalingHub
    let logger: Logger
    /// How often this member's heartbeat row is written, and after how long without one a
    /// member counts as dead (its names offline, its clients reconnect elsewhere).
    let heartbeat: Duration
    let deadAfter: Duration
    /// What the hub queued for the publisher, and a wake-up for it.
    private let queue = Mutex<[Outgoing]>([])
    /// Set once the hub joined the cluster with the presence read after LISTEN was up: what
    /// the listeners received before waits until then (applied before the hub knows the
    /// router, a presence change was dropped, and a name that logged in elsewhere meanwhile
    /// stayed unknown here).
    private let joined = Mutex(false)
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    /// Notifications waiting for the publisher: beyond this, frames are dropped (and logged);
    /// chat among them stays in the store.
    static let maxQueued = 100_000
    /// A notification's payload must stay below 8000 bytes (PostgreSQL's NOTIFY).
    static let maxPayload = 7_900
    /// Notifications sent in one statement.
    static let batch = 256

    enum Outgoing: Sendable {
        case frame(member: String, name: String, text: String)
        case presence(name: String, online: Bool, key: String?)
    }

    /// Member URLs told to clients at most (the rest are left out).
    static let maxMemberURLs = 32
    /// The longest `member-url` taken, in bytes.
    public static let maxMemberURLBytes = 256

    /// `member-url`: `ws://` or `wss://`, a host, short, no fragment or credentials.
    public static func isValidMemberURL(_ text: String) -> Bool {
        guard text.utf8.count <= maxMemberURLBytes, let url = URLComponents(string: text),
              ["ws", "wss"].contains(url.scheme ?? ""), let host = url.host, !host.isEmpty,
              url.fragment == nil, url.user == nil, url.password == nil else { return false }
        return true
    }

    /// Valid member names: they become part of a channel name (at most 63 bytes).
    public static func isValidMember(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte) || byte == 0x5f || byte == 0x2d
        }
    }

    static let schema = [
        "CREATE TABLE IF NOT EXISTS cluster_members (member text PRIMARY KEY, seen timestamptz NOT NULL, started timestamptz NOT NULL)",
        "CREATE TABLE IF NOT EXISTS presence (name text NOT NULL, member text NOT NULL, key text, PRIMARY KEY (name, member))",
        "CREATE INDEX IF NOT EXISTS presence_member ON presence (member)",
        "CREATE TABLE IF NOT EXISTS cluster_frames (id bigserial PRIMARY KEY, frame text NOT NULL, created timestamptz NOT NULL DEFAULT now())",
        // Added after the table (session 9): a database made by an older member gets it too.
        "ALTER TABLE cluster_members ADD COLUMN IF NOT EXISTS url text",
    ] + roomCallSchema

    init(member: String, url: String?, client: PostgresClient, store: PostgresStore, hub: SignalingHub, heartbeat: Duration,
         deadAfter: Duration, logger: Logger) {
        self.member = member
        self.url = url
        self.client = client
        self.store = store
        self.hub = hub
        self.heartbeat = heartbeat
        self.deadAfter = deadAfter
        self.logger = logger
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    var channel: String { Self.channel(of: member) }
    static func channel(of member: String) -> String { "mn_m_" + member }
    static let clusterChannel = "mn_cluster"

    // MARK: - ClusterRouting

    public func deliver(text: String, to name: String, at member: String) {
        enqueue(.frame(member: member, name: name, text: text))
    }

    public func presence(name: String, online: Bool, key: String?) {
        enqueue(.presence(name: name, online: online, key: key))
    }

    private func enqueue(_ item: Outgoing) {
        let queued = queue.withLock { queue in
            guard queue.count < Self.maxQueued else { return false }
            queue.append(item)
            return true
        }
        guard queued else {
            return logger.warning("cluster: publish queue full, a notification was dropped (chat stays stored)")
        }
        wake.yield()
    }

    // MARK: - Running

    /// Joins the cluster: clears what an earlier run of this member left (it died), starts
    /// listening, reads who is online at the others and hands the hub this router.
    func start() async throws {
        try await store.guarded {
            try await client.query("""
                WITH old AS (DELETE FROM presence WHERE member = \(member) RETURNING name),
                     calls AS (DELETE FROM room_calls WHERE member = \(member))
                SELECT pg_notify(\(Self.clusterChannel), 'gone ' || \(member)) FROM (SELECT 1) AS one
                """, logger: logger)
            try await client.query("""
                INSERT INTO cluster_members (member, seen, started, url) VALUES (\(member), now(), now(), \(url))
                ON CONFLICT (member) DO UPDATE SET seen = now(), started = now(), url = excluded.url
                """, logger: logger)
        }
        try await learnMemberURLs()
    }

    /// Tells the hub the URLs of the members alive now (their `member-url`), which it hands
    /// to clients at login: a client given one member's URL learns the others' and fails over
    /// to them. Read at start and with each heartbeat; a member reaped as dead drops out.
    func learnMemberURLs() async throws(SignalingError) {
        var urls: [String] = []
        for row in try await store.run("""
            SELECT url FROM cluster_members WHERE url IS NOT NULL ORDER BY member LIMIT \(Self.maxMemberURLs)
            """) {
            let url = try store.decode(row, String.self)
            if Self.isValidMemberURL(url) { urls.append(url) }
        }
        await hub.setClusterURLs(urls)
    }

    /// A graceful stop (SIGTERM): this member's names go offline everywhere now, not when its
    /// heartbeat is found stale, and every member delivers from the store what waits for the
    /// names that move to it.
    public func leave() async {
        do {
            try await store.guarded {
                try await client.query("""
                    WITH gone AS (DELETE FROM cluster_members WHERE member = \(member) RETURNING member),
                         cleared AS (DELETE FROM presence WHERE member = \(member)),
                         calls AS (DELETE FROM room_calls WHERE member = \(member))
                    SELECT pg_notify(\(Self.clusterChannel), 'gone ' || \(member))
                    """, logger: logger)
            }
        } catch {
            logger.error("cluster: cannot say goodbye", metadata: ["error": "\(error.reason)"])
        }
    }

    /// Who is online at the other members now.
    func onlineElsewhere() async throws(SignalingError) -> [String: Set<String>] {
        var online: [String: Set<String>] = [:]
        for row in try await store.run("SELECT name, member FROM presence WHERE member <> \(member) LIMIT \(SignalingHub.maxRemotePresence)") {
            let (name, member) = try store.decode(row, (String, String).self)
            online[name, default: []].insert(member)
        }
        return online
    }

    /// Runs the listener, the publisher and the heartbeat until cancelled or until PostgreSQL
    /// fails: a member that lost its database cannot serve as part of the node, so the error
    /// ends the node (its clients reconnect to another member).
    public func run() async throws {
        let listening = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.listen(ready: listening.continuation) }
            // Presence read after LISTEN is up: no change falls between the two.
            // One signal per channel.
            var ready = listening.stream.makeAsyncIterator()
            _ = await ready.next()
            _ = await ready.next()
            try await start()
            let online = try await onlineElsewhere()
            await hub.joinCluster(self, online: online)
            joined.withLock { $0 = true }
            logger.info("cluster: joined", metadata: ["member": "\(member)", "online-elsewhere": "\(online.count)"])
            group.addTask { try await self.publish() }
            group.addTask { try await self.beat() }
            try await group.next()
            group.cancelAll()
        }
    }

    private func listen(ready: AsyncStream<Void>.Continuation) async throws {
        try await client.withConnection { connection in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await connection.listen(on: self.channel) { notifications in
                        ready.yield()
                        for try await notification in notifications {
                            await self.untilJoined()
                            await self.received(frame: notification.payload)
                        }
                    }
                }
                group.addTask {
                    try await connection.listen(on: Self.clusterChannel) { notifications in
                        ready.yield()
                        for try await notification in notifications {
                            await self.untilJoined()
                            await self.received(event: notification.payload)
                        }
                    }
                }
                try await group.next()
                throw SignalingError(.internalError, "cluster: the LISTEN connection to PostgreSQL ended")
            }
        }
    }

    /// Returns once the hub joined (at once after that): notifications are applied after the
    /// presence snapshot, in the order they came (each change is idempotent against it).
    private func untilJoined() async {
        while !joined.withLock({ $0 }), !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// `*` and records `NAME SP FRAME` separated by LF, one `NAME SP FRAME`, or `#ID NAME` for a
    /// frame kept in `cluster_frames`. Records are handled in order.
    func received(frame payload: String) async {
        if payload.utf8.first == UInt8(ascii: "*") {
            for record in payload.utf8.dropFirst().split(separator: UInt8(ascii: "\n")) {
                guard let space = record.firstIndex(of: UInt8(ascii: " ")) else { continue }
                let name = String(Substring(record[..<space]))
                let text = String(Substring(record[record.index(after: space)...]))
                await dispatch(text: text, to: name)
            }
            return
        }
        guard let space = payload.firstIndex(of: " ") else { return }
        let head = String(payload[..<space])
        let rest = String(payload[payload.index(after: space)...])
        if head.hasPrefix("#"), let id = Int(head.dropFirst()) {
            let text: String
            do {
                guard let row = try await store.run("DELETE FROM cluster_frames WHERE id = \(id) RETURNING frame").first else { return }
                text = try store.decode(row, String.self)
            } catch {
                return logger.error("cluster: cannot read a large frame", metadata: ["error": "\(error.reason)"])
            }
            await dispatch(text: text, to: rest)
        } else {
            await dispatch(text: rest, to: head)
        }
    }

    /// Hands one received frame on: to a name's connections here (chat from this thread), or
    /// to the hub as a request when a token stands in the name's place (a room call hosted
    /// here, or the host's answer, SignalingHub+ClusterRoomCalls.swift).
    private func dispatch(text: String, to name: String) async {
        if let first = name.first, first == SignalingHub.clusterRequestMark || first == SignalingHub.clusterReplyMark {
            await hub.clusterRequest(text: text, token: name)
        } else if !hub.clusterDeliverChat(text: text, to: name) {
            await hub.clusterDeliver(text: text, to: name)
        }
    }

    /// `on MEMBER NAME [KEY]`, `off MEMBER NAME`, `gone MEMBER`.
    func received(event payload: String) async {
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[1] != member else { return }
        switch parts[0] {
        case "on" where parts.count >= 3:
            await hub.clusterPresence(name: parts[2], member: parts[1], online: true, key: parts.count > 3 && !parts[3].isEmpty ? parts[3] : nil)
        case "off" where parts.count >= 3:
            await hub.clusterPresence(name: parts[2], member: parts[1], online: false, key: parts.count > 3 ? parts[3] : nil)
        case "gone":
            logger.notice("cluster: member gone", metadata: ["member": "\(parts[1])"])
            await hub.clusterMemberGone(parts[1])
            await redeliverPending()
            do {
                try await forgetEndedRoomCalls()
            } catch {
                logger.error("cluster: cannot read which room calls still run", metadata: ["error": "\(error.reason)"])
            }
        default:
            break
        }
    }

    /// After a member died: what it stored but had not yet handed to this member's names (it
    /// died between the commit and the notification; the sender's resend then got `duplicate`)
    /// is delivered now from the store. A message delivered before and not yet acknowledged
    /// comes again, as at a login; clients drop a repeated id (docs/protocol.md "Chat").
    func redeliverPending() async {
        let names = await hub.localNames
        var start = names.startIndex
        while start < names.endIndex {
            let end = names.index(start, offsetBy: 1000, limitedBy: names.endIndex) ?? names.endIndex
            let chunk = Array(names[start..<end])
            start = end
            do {
                let rows = try await store.run("""
                    SELECT recipient, frame FROM messages WHERE NOT delivered AND recipient = ANY(\(chunk)::text[]) ORDER BY seq LIMIT 100000
                    """)
                for row in rows {
                    let (recipient, frame) = try store.decode(row, (String, String).self)
                    await hub.clusterDeliver(text: frame, to: recipient)
                }
            } catch {
                logger.error("cluster: cannot read what a dead member left", metadata: ["error": "\(error.reason)"])
            }
        }
    }

    /// Sends what the hub queued, in order, many notifications per statement.
    private func publish() async throws {
        var channels: [String] = []
        var payloads: [String] = []
        // Presence rows written in the same statement as the notifications.
        var onNames: [String] = []
        var onKeys: [String] = []
        var offNames: [String] = []
        var touched = Set<String>()
        // Per member: the batched payload being filled (`*` and LF-separated records).
        var filling: [String: String] = [:]
        func seal(_ member: String) {
            guard let payload = filling.removeValue(forKey: member) else { return }
            channels.append(Self.channel(of: member))
            payloads.append(payload)
        }
        func flush() async throws {
            for member in Array(filling.keys) { seal(member) }
            guard !channels.isEmpty else { return }
            try await client.query("""
                WITH added AS (INSERT INTO presence (name, member, key)
                               SELECT n, \(member), nullif(k, '') FROM unnest(\(onNames)::text[], \(onKeys)::text[]) AS t(n, k)
                               ON CONFLICT DO NOTHING),
                     removed AS (DELETE FROM presence WHERE member = \(member) AND name = ANY(\(offNames)::text[]))
                SELECT count(pg_notify(c, p)) FROM unnest(\(channels)::text[], \(payloads)::text[]) AS t(c, p)
                """, logger: logger)
            channels.removeAll(keepingCapacity: true)
            payloads.removeAll(keepingCapacity: true)
            onNames.removeAll(keepingCapacity: true)
            onKeys.removeAll(keepingCapacity: true)
            offNames.removeAll(keepingCapacity: true)
            touched.removeAll(keepingCapacity: true)
        }
        for await _ in wakes {
            let items = queue.withLock { queue in
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            for item in items {
                switch item {
                case .frame(let member, let name, let text):
                    let size = text.utf8.count + name.utf8.count + 1
                    if size + 1 <= Self.maxPayload, !text.utf8.contains(UInt8(ascii: "\n")) {
                        if let payload = filling[member], payload.utf8.count + 1 + size > Self.maxPayload { seal(member) }
                        if filling[member] == nil {
                            filling[member] = "*" + name + " " + text
                        } else {
                            filling[member]! += "\n" + name + " " + text
                        }
                    } else if size <= Self.maxPayload {
                        // Behind what is filling for that member: frames to one member stay in order.
                        seal(member)
                        channels.append(Self.channel(of: member))
                        payloads.append(name + " " + text)
                    } else {
                        try await flush()
                        try await client.query("""
                            WITH f AS (INSERT INTO cluster_frames (frame) VALUES (\(text)) RETURNING id)
                            SELECT pg_notify(\(Self.channel(of: member)), '#' || id || ' ' || \(name)) FROM f
                            """, logger: logger)
                    }
                case .presence(let name, let online, let key):
                    // One statement sees one snapshot: a name's second change waits for the next.
                    if touched.contains(name) { try await flush() }
                    touched.insert(name)
                    channels.append(Self.clusterChannel)
                    if online {
                        onNames.append(name)
                        onKeys.append(key ?? "")
                        payloads.append("on \(member) \(name) \(key ?? "")")
                    } else {
                        offNames.append(name)
                        payloads.append("off \(member) \(name)")
                    }
                }
                if channels.count + filling.count >= Self.batch { try await flush() }
            }
            try await flush()
        }
    }

    /// Writes this member's heartbeat and reaps members whose heartbeat stopped.
    private func beat() async throws {
        var refreshed = ContinuousClock.now
        let seconds = Double(deadAfter.components.seconds) + Double(deadAfter.components.attoseconds) / 1e18
        while !Task.isCancelled {
            try await Task.sleep(for: heartbeat)
            // Inserted rather than updated: another member took this one for dead (its beats were
            // late) and cleared its presence; tell everyone again who is here.
            let rows = try await store.run("""
                INSERT INTO cluster_members (member, seen, started, url) VALUES (\(member), now(), now(), \(url))
                ON CONFLICT (member) DO UPDATE SET seen = now() RETURNING (xmax = 0)
                """)
            if let row = rows.first, try store.decode(row, Bool.self) {
                logger.warning("cluster: this member was taken for dead (heartbeat late); announcing its names again")
                for (name, key) in await hub.localPresence { presence(name: name, online: true, key: key) }
            }
            try await store.guarded {
                // The DELETE decides which member reaps a dead one: each is reaped once.
                try await client.query("""
                    WITH gone AS (DELETE FROM cluster_members WHERE seen < now() - make_interval(secs => \(seconds)) AND member <> \(member) RETURNING member),
                         cleared AS (DELETE FROM presence WHERE member IN (SELECT member FROM gone)),
                         calls AS (DELETE FROM room_calls WHERE member IN (SELECT member FROM gone))
                    SELECT pg_notify(\(Self.clusterChannel), 'gone ' || member) FROM gone
                    """, logger: logger)
                try await client.query("DELETE FROM cluster_frames WHERE created < now() - interval '60 seconds'", logger: logger)
            }
            try await learnMemberURLs()
            try await syncRoomCalls()
            if ContinuousClock.now - refreshed > .seconds(5) {
                refreshed = .now
                try? await store.refreshUsage()
            }
        }
    }
}
