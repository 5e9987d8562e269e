import Foundation

/// The JSON text form of `SignalingMessage` (docs/protocol.md, "Envelope"). Decoding is a pure
/// function from text to a message that throws a `SignalingError` with the protocol's code: it
/// is what the node runs on every frame and what the fuzz target calls.
public enum SignalingCodec {
    /// Decodes one text frame.
    public static func decode(_ text: String) throws(SignalingError) -> SignalingMessage {
        try decode(Data(text.utf8))
    }

    /// Decodes one frame from its UTF-8 bytes.
    public static func decode(_ bytes: Data) throws(SignalingError) -> SignalingMessage {
        guard bytes.count <= SignalingProtocol.maxFrameBytes else {
            throw SignalingError(.tooLarge, "frame of \(bytes.count) bytes; the limit is \(SignalingProtocol.maxFrameBytes)")
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: bytes)
        } catch {
            throw SignalingError(.badJSON, "not a JSON object with string fields type, id, from, to and an object body: \(brief(error))")
        }
        let id = header.id
        guard !id.isEmpty, id.utf8.count <= 64 else {
            throw SignalingError(.badField, "id must be 1 to 64 characters")
        }
        guard let typeName = header.type else { throw SignalingError(.badField, "missing type", of: id) }
        guard let type = MessageType(rawValue: typeName) else {
            throw SignalingError(.unknownType, "unknown type '\(typeName.prefix(40))'", of: id)
        }
        let payload = try decodePayload(type, bytes, id: id)
        return SignalingMessage(id: id, from: header.from ?? "", to: header.to ?? "", payload: payload)
    }

    /// The `type` and `id` of a frame, read without decoding its body: what an error for a frame
    /// that cannot be (or is not) decoded in full names. Nil when the frame is not a JSON object.
    public static func peek(_ text: String) -> (type: String?, id: String?)? {
        guard text.utf8.count <= SignalingProtocol.maxFrameBytes,
              let header = try? JSONDecoder().decode(Peek.self, from: Data(text.utf8)) else { return nil }
        return (header.type, header.id.flatMap { (1...64).contains($0.utf8.count) ? $0 : nil })
    }

    /// The JSON text of a message: one object, keys sorted, no insignificant whitespace.
    public static func encode(_ message: SignalingMessage) -> String {
        switch message.payload {
        case .challenge(let body): frame(message, body)
        case .login(let body): frame(message, body)
        case .welcome(let body): frame(message, body)
        case .ping, .pong: frame(message, EmptyBody())
        case .subscribe(let body), .unsubscribe(let body): frame(message, body)
        case .presence(let body): frame(message, body)
        case .join(let body), .leave(let body): frame(message, body)
        case .members(let body): frame(message, body)
        case .room(let body): frame(message, body)
        case .invite(let body): frame(message, body)
        case .history(let body): frame(message, body)
        case .chat(let body): frame(message, body)
        case .ack(let body): frame(message, body)
        case .error(let body): frame(message, body)
        case .callSetup(_, let body): frame(message, body)
        case .timeout(let body): frame(message, body)
        case .link(let body): frame(message, body)
        case .linked(let body): frame(message, body)
        case .mesh(let body): frame(message, body)
        case .dialback(let body): frame(message, body)
        case .dialbackResult(let body): frame(message, body)
        case .prove(let body): frame(message, body)
        case .proof(let body): frame(message, body)
        case .device(let device): deviceFrame(message, device)
        case .roomCall(.request(let body)): frame(message, body)
        case .roomCall(.state(let body)): frame(message, body)
        }
    }

    // MARK: - Decoding

    private struct Header: Decodable {
        var type: String?
        var id: String
        var from: String?
        var to: String?
    }

    private struct Peek: Decodable {
        var type: String?
        var id: String?
    }

    private struct Body<B: Decodable>: Decodable {
        var body: B
    }

    private static func decodePayload(_ type: MessageType, _ bytes: Data, id: String) throws(SignalingError) -> SignalingPayload {
        func body<B: Decodable>(_: B.Type) throws(SignalingError) -> B {
            do {
                return try JSONDecoder().decode(Body<B>.self, from: bytes).body
            } catch {
                throw SignalingError(.badField, "body of \(type.rawValue): \(brief(error))", of: id)
            }
        }
        switch type {
        case .challenge: return .challenge(try body(ChallengeBody.self))
        case .login: return .login(try body(LoginBody.self))
        case .welcome: return .welcome(try body(WelcomeBody.self))
        case .ping: return .ping
        case .pong: return .pong
        case .subscribe: return .subscribe(try body(NamesBody.self))
        case .unsubscribe: return .unsubscribe(try body(NamesBody.self))
        case .presence: return .presence(try body(PresenceBody.self))
        case .join: return .join(try body(RoomBody.self))
        case .leave: return .leave(try body(RoomBody.self))
        case .members: return .members(try body(MembersBody.self))
        case .room: return .room(try body(RoomEventBody.self))
        case .invite: return .invite(try body(InviteBody.self))
        case .history: return .history(try body(HistoryBody.self))
        case .chat: return .chat(try body(ChatBody.self))
        case .ack: return .ack(try body(AckBody.self))
        case .error: return .error(try body(ErrorBody.self))
        case .call, .accept, .reject, .cancel, .busy, .hangup, .sdp, .candidate:
            return .callSetup(type.callSetup!, try body(SignedBody.self))
        case .timeout: return .timeout(try body(TimeoutBody.self))
        case .link: return .link(try body(LinkBody.self))
        case .linked: return .linked(try body(LinkedBody.self))
        case .mesh: return .mesh(try body(MeshBody.self))
        case .dialback: return .dialback(try body(DialbackBody.self))
        case .dialbackResult: return .dialbackResult(try body(DialbackResultBody.self))
        case .prove: return .prove(try body(ProveBody.self))
        case .proof: return .proof(try body(ProofBody.self))
        case .deviceCode: return .device(.code(try body(DeviceCodeBody.self)))
        case .deviceClaim: return .device(.claim(try body(DeviceClaimBody.self)))
        case .deviceRequest: return .device(.request(try body(DeviceRequestBody.self)))
        case .endorse: return .device(.endorse(try body(EndorseBody.self)))
        case .deviceAdded: return .device(.added(try body(DeviceAddedBody.self)))
        case .devices: return .device(.devices(try body(DevicesBody.self)))
        case .revoke: return .device(.revoke(try body(RevokeBody.self)))
        case .answeredElsewhere: return .device(.answeredElsewhere(try body(AnsweredElsewhereBody.self)))
        case .roomCall: return .roomCall(.request(try body(SignedBody.self)))
        case .roomCallState: return .roomCall(.state(try body(RoomCallStateBody.self)))
        }
    }

    /// A one-line description of a decoding error, without Swift type names where possible.
    private static func brief(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let at = path(context)
            return "missing field '\(at.isEmpty ? "" : at + ".")\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at '\(path(context))'"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "malformed JSON" : "invalid value at '\(path(context))'"
        @unknown default:
            return "undecodable"
        }
    }

    // MARK: - Encoding

    private struct Frame<B: Encodable>: Encodable {
        var type: String
        var id: String
        var from: String
        var to: String
        var body: B
    }

    private static func deviceFrame(_ message: SignalingMessage, _ device: DevicePayload) -> String {
        switch device {
        case .code(let body): frame(message, body)
        case .claim(let body): frame(message, body)
        case .request(let body): frame(message, body)
        case .endorse(let body): frame(message, body)
        case .added(let body): frame(message, body)
        case .devices(let body): frame(message, body)
        case .revoke(let body): frame(message, body)
        case .answeredElsewhere(let body): frame(message, body)
        }
    }

    private static func frame<B: Encodable>(_ message: SignalingMessage, _ body: B) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let frame = Frame(type: message.type.rawValue, id: message.id, from: message.from, to: message.to, body: body)
        // Encoding these plain structs of strings, numbers and arrays cannot fail.
        let data = (try? encoder.encode(frame)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
