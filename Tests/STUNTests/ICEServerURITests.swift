import Testing
import STUN

/// RFC 7064 (stun, stuns) and RFC 7065 (turn, turns) URIs: one type parses and prints them.
@Suite("ICE server URIs (RFC 7064, RFC 7065)")
struct ICEServerURITests {
    @Test("each scheme with and without port and transport, printed canonically", arguments: [
        ("stun:198.51.100.2", "stun:198.51.100.2:3478", ICEServerURI.Transport.udp),
        ("STUN:198.51.100.2:19302", "stun:198.51.100.2:19302", .udp),
        ("stuns:relay.example", "stuns:relay.example:5349", .tcp),
        ("turn:198.51.100.2:3478", "turn:198.51.100.2:3478?transport=udp", .udp),
        ("turn:198.51.100.2:3478?transport=tcp", "turn:198.51.100.2:3478?transport=tcp", .tcp),
        ("turn:[2001:db8::1]?transport=TCP", "turn:[2001:db8::1]:3478?transport=tcp", .tcp),
        ("turns:relay.example", "turns:relay.example:5349?transport=tcp", .tcp),
    ])
    func parsesAndPrints(text: String, canonical: String, transport: ICEServerURI.Transport) throws {
        let uri = try ICEServerURI(parsing: text)
        #expect(uri.description == canonical)
        #expect(uri.transport == transport)
        #expect(try ICEServerURI(parsing: uri.description) == uri, "printing and parsing again gives the same URI")
    }

    @Test("an IPv6 host is kept without brackets and printed with them")
    func ipv6() throws {
        let uri = try ICEServerURI(parsing: "stun:[2001:db8::1]:3478")
        #expect(uri.host == "2001:db8::1")
        #expect(uri.hostIsNumeric)
        #expect(uri.hostPort == "[2001:db8::1]:3478")
        #expect(try ICEServerURI(parsing: "turn:relay.example").hostIsNumeric == false)
    }

    @Test("malformed URIs are refused with a reason", arguments: [
        "", "http://198.51.100.2", "stun", "stun:", "stun:198.51.100.2:0", "stun:198.51.100.2:65536", "stun:198.51.100.2:x",
        "stun:198.51.100.2?transport=udp", "turn:198.51.100.2?transport=sctp", "turn:198.51.100.2?foo=bar",
        "turns:198.51.100.2?transport=udp", "turn:[2001:db8::1", "turn:[2001:db8::1]x", "turn:user@198.51.100.2",
        "turn:2001:db8::1:3478", "stun:a]:b:1", "stun:[relay.example]:3478", "stun:relay example",
        "stun:" + String(repeating: "a", count: 600),
    ])
    func refusesMalformed(text: String) {
        #expect(ICEServerURI(text) == nil)
        #expect { try ICEServerURI(parsing: text) } throws: { error in
            (error as? STUNError)?.code == .badAttribute && !((error as? STUNError)?.reason.isEmpty ?? true)
        }
    }
}
