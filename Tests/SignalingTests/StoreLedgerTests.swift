import Foundation
import Logging
import Testing
import TestSupport
@testable import Signaling

/// The writer's ledger of undelivered messages (issue 17, StoreLedger.swift): the limits and the
/// usage it answers agree with what the database holds — after acks, handovers, expiry, a failed
/// write, and across a reopen, where it is read again from the file.
@Suite struct StoreLedgerTests {
    func open(_ directory: TemporaryDirectory, _ limits: StoreLimits = StoreLimits()) async throws -> SignalingStore {
        try await SignalingStore.open(directory: directory.path, limits: limits, logger: Logger(label: "test"))
    }

    @Test func usageFollowsInsertsAcksAndHandoversAndSurvivesAReopen() async throws {
        let directory = TemporaryDirectory("ledger")
        let store = try await open(directory)
        for n in 0..<5 {
            #expect(try await store.enqueueChat(sender: "alice", id: "m\(n)", recipients: ["bob"], frame: "12345") == .stored(fresh: ["bob"]))
        }
        #expect(try await store.enqueue(sender: "alice", id: "r1", recipients: ["bob", "carol"], frame: "123", room: "#ops") == ["bob", "carol"])
        #expect(try await store.enqueue(sender: "alice", id: "x1", recipients: ["dave@far.example:443"], frame: "1234567") == ["dave@far.example:443"])
        #expect(try await store.usage() == (8, 5 * 5 + 2 * 3 + 7))
        #expect(try await store.usage("r:bob") == (6, 5 * 5 + 3))
        #expect(try await store.usage("#ops") == (2, 6))

        // A resend is a duplicate and counts nothing.
        #expect(try await store.enqueueChat(sender: "alice", id: "m0", recipients: ["bob"], frame: "12345") == .duplicate)
        try await store.markDelivered(recipient: "bob", sender: "alice", id: "m0")
        // Twice, and for a message that never was: nothing changes.
        try await store.markDelivered(recipient: "bob", sender: "alice", id: "m0")
        try await store.markDelivered(recipient: "bob", sender: "alice", id: "never")
        try await store.markDelivered(recipient: "bob", sender: "alice", id: "r1")
        try await store.markDelivered(sender: "alice", id: "x1", node: "far.example:443")
        #expect(try await store.usage() == (5, 4 * 5 + 3))
        #expect(try await store.usage("r:bob") == (4, 4 * 5))
        #expect(try await store.usage("#ops") == (1, 3))
        #expect(try await store.pending(forNode: "far.example:443").isEmpty)
        await store.close()

        // Reopened: the ledger is read from the file and agrees.
        let reopened = try await open(directory)
        #expect(try await reopened.usage() == (5, 4 * 5 + 3))
        #expect(try await reopened.usage("r:carol") == (1, 3))
        #expect(try await reopened.pending(for: "bob").map(\.id) == ["m1", "m2", "m3", "m4"])
        // An ack after the reopen is applied (the ledger knows the row), and stays applied.
        try await reopened.markDelivered(recipient: "bob", sender: "alice", id: "m1")
        await reopened.close()
        let again = try await open(directory)
        #expect(try await again.pending(for: "bob").map(\.id) == ["m2", "m3", "m4"])
        #expect(try await again.usage("r:bob") == (3, 15))
        await again.close()
    }

    /// The limits are checked against the ledger: a full recipient refuses with `store-full`
    /// until one of its messages is acknowledged; the whole store's bound in bytes likewise.
    @Test func limitsRefuseUntilAnAckMakesRoom() async throws {
        let directory = TemporaryDirectory("ledger-limits")
        var limits = StoreLimits()
        limits.recipientMessages = 3
        limits.bytes = 40
        let store = try await open(directory, limits)
        for n in 0..<3 {
            #expect(try await store.enqueueChat(sender: "alice", id: "m\(n)", recipients: ["bob"], frame: "0123456789") == .stored(fresh: ["bob"]))
        }
        do {
            _ = try await store.enqueueChat(sender: "alice", id: "m3", recipients: ["bob"], frame: "0123456789")
            Issue.record("bob's queue took a fourth message")
        } catch {
            #expect(error.code == .storeFull)
            #expect(error.reason.contains("bob's queue is full"))
        }
        // Carol's queue is empty, but 30 + 11 bytes pass the store's 40.
        do {
            _ = try await store.enqueueChat(sender: "alice", id: "c0", recipients: ["carol"], frame: "01234567890")
            Issue.record("the store took more than its bytes")
        } catch {
            #expect(error.code == .storeFull)
            #expect(error.reason.contains("the node's store is full"))
        }
        try await store.markDelivered(recipient: "bob", sender: "alice", id: "m1")
        #expect(try await store.enqueueChat(sender: "alice", id: "m3", recipients: ["bob"], frame: "0123456789") == .stored(fresh: ["bob"]))
        #expect(try await store.pending(for: "bob").map(\.id) == ["m0", "m2", "m3"])
        await store.close()
    }

    /// Expired undelivered messages leave the ledger with the rows (prune reads it again).
    @Test func expiryEmptiesTheLedger() async throws {
        let directory = TemporaryDirectory("ledger-expiry")
        var limits = StoreLimits()
        limits.recipientMessages = 1
        let store = try await open(directory, limits)
        #expect(try await store.enqueueChat(sender: "alice", id: "old", recipients: ["bob"], frame: "x") == .stored(fresh: ["bob"]))
        try await store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(limits.expiry + 60))
        #expect(try await store.usage() == (0, 0))
        #expect(try await store.enqueueChat(sender: "alice", id: "new", recipients: ["bob"], frame: "x") == .stored(fresh: ["bob"]))
        await store.close()
    }
}
