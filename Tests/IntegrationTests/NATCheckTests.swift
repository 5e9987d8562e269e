import Foundation
import Testing
import TestSupport

/// RFC 5780 end to end with our own code on both sides: `meshnode serve --rfc5780` on two
/// loopback addresses answers CHANGE-REQUEST from the other address and port, and
/// `meshnode nat-check` classifies loopback (no NAT) as `none`.
@Suite struct NATCheckTests {
    @Test("nat-check against our own RFC 5780 server finds no NAT on loopback")
    func ownServer() async throws {
        let server = try await MeshNodeServer(["--rfc5780", "--no-tls"], bind: ["127.0.0.1", "127.0.0.2"])
        defer { server.stop() }
        let check = try Subprocess(MeshNodeServer.binary, ["nat-check", "--stun", "127.0.0.1:\(server.udpPort)", "--json", "--timeout", "10"])
        let status = await check.waitForExit()
        let output = check.output
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""name" : "none""#), "\(output)")
        // The CHANGE-REQUEST answer came from the other address and the other port.
        #expect(output.contains("response from 127.0.0.2:"), "\(output)")
    }

    @Test("without --rfc5780 the server gives nat-check nothing to classify with")
    func disabledByDefault() async throws {
        let server = try await MeshNodeServer(["--no-tls"], bind: ["127.0.0.1", "127.0.0.2"])
        defer { server.stop() }
        let check = try Subprocess(MeshNodeServer.binary, ["nat-check", "--stun", "127.0.0.1:\(server.udpPort)", "--json", "--timeout", "1"])
        let status = await check.waitForExit()
        #expect(status == 1, "\(check.output)")
    }
}
