import Testing
@testable import MeshNode

/// `single-port` as a setting: it needs `https` (TURN on the web port is TURN over TLS, told
/// from HTTP inside TLS), and it is off by default.
@Suite struct SinglePortSettingsTests {
    @Test("single-port without https is refused with the key and the reason")
    func needsHTTPS() throws {
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(NodeSettings.parse(yaml: "single-port: true\n")) }
        #expect(error?.key == "single-port")
        #expect(error?.reason.contains("https") == true)
        #expect(error?.code == .invalidSetting)
    }

    @Test("with https it is on; without the key it is off")
    func onAndOff() throws {
        #expect(try NodeConfiguration(NodeSettings.parse(yaml: "https: true\nsingle-port: true\n")).singlePort)
        #expect(try !NodeConfiguration(NodeSettings.parse(yaml: "https: true\n")).singlePort)
    }
}
