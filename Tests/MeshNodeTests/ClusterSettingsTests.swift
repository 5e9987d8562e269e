import Foundation
import Testing
@testable import MeshNode

/// Cluster mode's settings (docs/cluster.md): `cluster` is a postgres:// URL, `member` a name
/// that becomes part of a PostgreSQL channel; a bad value names its key and says what is wrong.
@Suite struct ClusterSettingsTests {
    @Test func clusterAndMemberReachTheSignalingSettings() throws {
        let settings = try NodeSettings.parse(yaml: "cluster: postgres://meshnode:pw@db.example:6432/mesh?sslmode=require\nmember: m-1_a\n")
        let configuration = try NodeConfiguration(settings)
        #expect(configuration.signaling.cluster == "postgres://meshnode:pw@db.example:6432/mesh?sslmode=require")
        #expect(configuration.signaling.member == "m-1_a")
        // A single node stays on SQLite.
        #expect(try NodeConfiguration(NodeSettings()).signaling.cluster == nil)
    }

    @Test("bad cluster settings name their key and the reason", arguments: [
        ("cluster: http://db.example/mesh", "cluster", "not a postgres:// URL"),
        ("cluster: postgres://db.example/mesh", "cluster", "no user"),
        ("cluster: postgres://meshnode@db.example", "cluster", "no database"),
        ("cluster: postgres://meshnode@db.example/mesh?sslmode=verify-full", "cluster", "sslmode"),
        ("member: two words", "member", "not a member name"),
        ("member: a-name-that-is-longer-than-thirty-two-bytes", "member", "not a member name"),
    ])
    func rejects(yaml: String, key: String, reason: String) throws {
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(NodeSettings.parse(yaml: yaml)) }
        #expect(error?.key == key)
        #expect(error?.reason.contains(reason) == true)
    }
}
