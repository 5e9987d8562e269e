import SDP

/// libFuzzer entry: the session description parser (RFC 8866) and codec negotiation. Bad text
/// must throw; a description that parses must serialise to text that parses to the same text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSDP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let description = try? SessionDescription(parsing: text) else { return 0 }
    let once = description.serialized
    let again = try? SessionDescription(parsing: once)
    precondition(again?.serialized == once, "a parsed description did not survive serialising and parsing again")
    _ = try? CodecNegotiation.negotiate(offer: description)
    return 0
}
