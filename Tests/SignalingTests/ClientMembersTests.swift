import Foundation
import Testing
@testable import Signaling

/// What a client takes of a cluster's member list from `welcome` (docs/cluster.md "Clients:
/// several URLs, failover"). That it fails over to a learnt member after a kill -9 is played
/// by `testnet/cluster` with real members; here, what it keeps of a node that lists too much
/// or something weaker.
@Suite struct ClientMembersTests {
    @Test func learntMembersFollowTheGivenURLsAndAreReplacedAtEachLogin() async {
        let client = SignalingClient(url: "ws://m1.example:8080/ws", fallbacks: ["ws://m2.example:8080/ws"], name: "carol", identity: .generate())
        await client.learnMembers(["ws://m1.example:8080/ws", "ws://m3.example:8080/ws", "ws://m3.example:8080/ws", "http://m4.example/ws",
                                   "ws://user@m5.example/ws", "not a url"])
        #expect(await client.urls == ["ws://m1.example:8080/ws", "ws://m2.example:8080/ws", "ws://m3.example:8080/ws"])
        // The next login's list replaces the learnt part; the given URLs stay.
        await client.learnMembers(["ws://m4.example:8080/ws"])
        #expect(await client.urls == ["ws://m1.example:8080/ws", "ws://m2.example:8080/ws", "ws://m4.example:8080/ws"])
        // A welcome without the list (not a cluster) changes nothing.
        await client.learnMembers(nil)
        #expect(await client.urls.count == 3)
    }

    @Test func aSecureClientNeverLearnsACleartextMember() async {
        let client = SignalingClient(url: "wss://m1.example/ws", name: "carol", identity: .generate())
        await client.learnMembers(["ws://m2.example/ws", "wss://m3.example/ws"])
        #expect(await client.urls == ["wss://m1.example/ws", "wss://m3.example/ws"])
    }

    @Test func aNodeListingTooManyIsCutAt32() async {
        let client = SignalingClient(url: "ws://m0.example/ws", name: "carol", identity: .generate())
        await client.learnMembers((1...100).map { "ws://m\($0).example/ws" })
        #expect(await client.urls.count == 1 + SignalingClient.maxLearntMembers)
        let long = "ws://" + String(repeating: "a", count: 300) + ".example/ws"
        let other = SignalingClient(url: "ws://m0.example/ws", name: "carol", identity: .generate())
        await other.learnMembers([long])
        #expect(await other.urls == ["ws://m0.example/ws"])
    }
}
