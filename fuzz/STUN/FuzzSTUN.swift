import STUN
import NIOCore

/// libFuzzer entry: everything our STUN/TURN server parses from the network. Parsers must
/// reject bad bytes with an error; whatever parses must encode and parse again to the same
/// message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSTUN(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    if let message = try? STUNMessage(parsing: bytes) {
        _ = message.username
        _ = message.realm
        _ = try? message.errorCode()
        _ = try? message.xorAddresses(.xorPeerAddress)
        _ = try? message.xorAddress(.xorMappedAddress)
        _ = try? message.address(.otherAddress)
        _ = try? message.channelNumber()
        _ = try? message.requestedTransport()
        _ = try? message.evenPort()
        _ = try? message.lifetime()
        _ = message.unknownAttributes()
        _ = message.verifyIntegrity(key: [1, 2, 3])
        // Round trip: re-encoding the parsed attributes gives a message that parses again.
        let again = STUNMessage(type: message.type, transactionID: message.transactionID, attributes: message.attributes.filter {
            $0.type != .messageIntegrity && $0.type != .messageIntegritySHA256 && $0.type != .fingerprint
        })
        let reparsed = try? STUNMessage(parsing: again.encode(integrity: [7], fingerprint: true))
        precondition(reparsed != nil, "a parsed message did not survive re-encoding")
        precondition(reparsed!.verifyIntegrity(key: [7]), "integrity of a re-encoded message does not verify")
    }
    if let frame = try? ChannelData(parsing: bytes) {
        precondition(frame.data.readableBytes <= size - 4)
    }
    var stream = bytes
    var framer = STUNStreamFramer()
    var frames = 0
    while frames < 1_000, let frame = try? framer.next(from: &stream) {
        frames += 1
        switch frame {
        case .stun(let b), .channelData(let b): precondition(b.readableBytes >= 4)
        }
    }
    // Address and URI text as peers and other nodes send it (the relay's peer policy on top of
    // IPAddress is the TURN server's, tested there).
    if size >= 2 {
        let text = String(decoding: UnsafeBufferPointer(start: data, count: min(size, 600)), as: UTF8.self)
        if let ip = IPAddress(string: text) { precondition(IPAddress(string: ip.description) == ip, "an address did not print and parse back") }
        if let uri = ICEServerURI(text) { precondition(ICEServerURI(uri.description) == uri, "a URI did not print and parse back") }
    }
    return 0
}

