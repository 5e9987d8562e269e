import ArgumentParser
import Foundation
import Signaling

/// `meshnode join`: stays online at a node and prints every event, one line each.
struct Join: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in at a node, stay online and print presence, chat and call events.",
        discussion: """
        Reconnects every 5 s (with jitter) when the connection is lost. Incoming calls are \
        declined with `busy`, or accepted with --accept auto; --call TO:KIND places a call \
        request. Until `meshnode call` exists (the calls issue) this is call setup signaling \
        only: no media flows. With --json each line is one JSON object with an `event` field.
        """
    )

    @OptionGroup var peer: PeerOptions
    @Flag(help: "Print one JSON object per line.")
    var json = false
    @Option(name: .customLong("subscribe"), help: "Follow this peer's presence (repeatable).")
    var subscriptions: [String] = []
    @Option(name: .customLong("room"), help: "Join this #room (repeatable).")
    var rooms: [String] = []
    @Option(name: .customLong("send"), help: "Send TO:TEXT once online (repeatable); TO is a name, name@host:port or #room.")
    var sends: [String] = []
    @Option(help: "Answer incoming call requests: never (busy, the default) or auto (accept).")
    var accept: AcceptPolicy = .never
    @Option(name: .customLong("call"), help: "Send a call request TO:KIND once online (KIND: audio, video or desktop).")
    var calls: [String] = []

    enum AcceptPolicy: String, ExpressibleByArgument {
        case auto, never
    }

    func validate() throws {
        for send in sends where Self.splitTarget(send) == nil { throw ValidationError("--send takes TO:TEXT, not '\(send)'") }
        for call in calls {
            guard let kind = call.split(separator: ":").last, CallKind(rawValue: String(kind)) != nil, call.contains(":") else {
                throw ValidationError("--call takes TO:KIND with KIND audio, video or desktop, not '\(call)'")
            }
        }
    }

    func run() async throws {
        let client = try peer.client()
        let output = EventPrinter(json: json)
        let policy = accept
        let printing = Task { await Self.handle(client.events, client: client, output: output, accept: policy) }
        do {
            try await client.connect()
            for room in rooms { try await client.join(room: room) }
            if !subscriptions.isEmpty { try await client.subscribe(subscriptions) }
            for send in sends {
                let (to, text) = Self.splitTarget(send)!
                let status = try await client.send(text: text, to: to)
                output.print("sent", ["to": to, "text": text, "status": status.rawValue])
            }
            for call in calls {
                let separator = call.lastIndex(of: ":")!
                let to = String(call[..<separator])
                let kind = CallKind(rawValue: String(call[call.index(after: separator)...]))!
                let id = try await client.call(to, kind: kind)
                output.print("calling", ["to": to, "kind": kind.rawValue, "call": id])
            }
        } catch let error as SignalingError {
            output.print("error", ["code": error.code.rawValue, "reason": error.reason])
            await client.close()
            throw ExitCode(1)
        }
        await printing.value
        throw ExitCode(1)
    }

    /// Splits `TO:TEXT`, where TO may be `name@host:port` and so hold a colon itself.
    static func splitTarget(_ argument: String) -> (String, String)? {
        var searchFrom = argument.startIndex
        if let at = argument.firstIndex(of: "@"), let portColon = argument[at...].firstIndex(of: ":") {
            searchFrom = argument.index(after: portColon)
        }
        guard let colon = argument[searchFrom...].firstIndex(of: ":") else { return nil }
        let to = String(argument[..<colon])
        guard !to.isEmpty else { return nil }
        return (to, String(argument[argument.index(after: colon)...]))
    }

    /// Prints events until the client stops; answers incoming call requests by the policy.
    static func handle(_ events: AsyncStream<SignalingEvent>, client: SignalingClient, output: EventPrinter,
                       accept: AcceptPolicy) async {
        for await event in events {
            output.print(event)
            guard case .callSetup(let payload) = event, payload.type == .call else { continue }
            switch accept {
            case .auto:
                try? await client.callSetup(.accept, to: payload.from, call: payload.call)
                output.print("answered", ["call": payload.call, "from": payload.from, "answer": "accept"])
            case .never:
                try? await client.callSetup(.busy, to: payload.from, call: payload.call, reason: "not taking calls")
                output.print("answered", ["call": payload.call, "from": payload.from, "answer": "busy"])
            }
        }
    }
}
