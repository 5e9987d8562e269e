import Testing
@testable import Signaling

@Suite struct SignalingModuleTests {
    @Test func subprotocolName() { #expect(SignalingProtocol.subprotocol == "meshnode.v1") }
}
