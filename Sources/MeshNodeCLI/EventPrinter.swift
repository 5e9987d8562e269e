import Foundation
import MeshNode
import Signaling

/// Terminal output of `meshnode join`: one line per event, readable or JSON.
struct EventPrinter: Sendable {
    let json: Bool

    func print(_ event: SignalingEvent) {
        switch event {
        case .connected(let welcome):
            print("connected", ["name": welcome.name, "key": welcome.key, "iceServers": welcome.iceServers.flatMap(\.urls).joined(separator: " ")])
        case .disconnected(let reason):
            print("disconnected", ["reason": reason])
        case .reconnected(let welcome):
            print("reconnected", ["name": welcome.name])
        case .presence(let body):
            print("presence", ["name": body.name, "status": body.status.rawValue])
        case .chat(let message):
            print("chat", ["from": message.from, "to": message.to, "text": message.text, "id": message.id])
        case .room(let body):
            print("room", ["room": body.room, "member": body.member, "change": body.event.rawValue])
        case .callSetup(let payload):
            var fields = ["type": payload.type.rawValue, "from": payload.from, "call": payload.call]
            if let kind = payload.kind { fields["kind"] = kind.rawValue }
            print("call", fields)
        case .callTimeout(let call):
            print("call", ["type": "timeout", "call": call])
        case .answeredElsewhere(let call):
            print("call", ["type": "answered-elsewhere", "call": call])
        case .roomCall(let state):
            var fields = ["room": state.room, "call": state.call, "kind": state.kind.rawValue, "change": state.event.rawValue,
                          "member": state.member, "participants": state.participants.map(\.name).joined(separator: " ")]
            if let ring = state.ring { fields["ring"] = String(ring) }
            if state.refused > 0 { fields["refused"] = String(state.refused) }
            if let forwarder = state.forwarder { fields["forwarder"] = forwarder.address }
            print("room-call", fields)
        case .deviceRequest(let body):
            print("device-request", ["name": body.name, "key": body.key])
        case .error(let error):
            print("error", ["code": error.code.rawValue, "reason": error.reason])
        }
    }

    /// A finished call: its report, as one JSON object (`event` = `call-ended`) or a text summary.
    func print(report: CallReport) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(report),
                  var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return }
            object["event"] = "call-ended"
            let line = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            Swift.print(TerminalText.safe(String(decoding: line, as: UTF8.self), json: true))
        } else {
            // The summary quotes the peer's address and reasons.
            Swift.print(TerminalText.safe(StatusLine.summary(report), keepLayout: true))
        }
        fflush(nil)
    }

    /// One event line. Field values come from peers and nodes (names, chat text, reasons): they
    /// go through ``TerminalText/safe(_:json:keepLayout:)``.
    func print(_ event: String, _ fields: [String: String]) {
        let line: String
        if json {
            var object: [String: String] = fields
            object["event"] = event
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = TerminalText.safe(String(decoding: data, as: UTF8.self), json: true)
        } else {
            line = ([event] + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(TerminalText.safe($0.value))" }).joined(separator: " ")
        }
        Swift.print(line)
        fflush(nil)
    }
}
