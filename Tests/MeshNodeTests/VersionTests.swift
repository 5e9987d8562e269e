import Testing
@testable import MeshNode

@Suite struct VersionTests {
    @Test func versionIsSemantic() { #expect(MeshNodeVersion.string.split(separator: ".").count == 3) }
}
