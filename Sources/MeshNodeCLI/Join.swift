import ArgumentParser
import Foundation
import MeshNode
import Signaling

/// `meshnode join`: stays online at a node and prints every event, one line each.
struct Join: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in at a node, stay online, answer calls and print presence, chat and call events.",
        discussion: """
        Reconnects every 5 s (with jitter) when the connection is lost. Incoming calls are \
        declined with `busy` (--accept never, the default), accepted (--accept auto) or asked \
        about on the terminal (--accept ask); an accepted call sends this peer's sources back \
        and records what arrives into --record DIR. --call TO:KIND places a call. With --json \
        each line is one JSON object with an `event` field; a call's end prints its report.
        """
    )

    @OptionGroup var peer: PeerOptions
    @OptionGroup var media: MediaOptions
    @Flag(help: "Print one JSON object per line.")
    var json = false
    @Option(name: .customLong("subscribe"), help: "Follow this peer's presence (repeatable).")
    var subscriptions: [String] = []
    @Option(name: .customLong("room"), help: "Join this #room, or #room@host:port of a linked node (repeatable).")
    var rooms: [String] = []
    @Option(help: "After joining, print the newest N messages of each --room's history (1-100).")
    var history: Int?
    @Option(name: .customLong("send"), help: "Send TO:TEXT once online (repeatable); TO is a name, name@host:port or #room.")
    var sends: [String] = []
    @Option(help: "Answer incoming calls: never (busy, the default), auto (accept) or ask (on the terminal).")
    var accept: AcceptPolicy = .never
    @Option(name: .customLong("call"), help: "Send a call request TO:KIND once online (KIND: audio, video or desktop).")
    var calls: [String] = []

    enum AcceptPolicy: String, ExpressibleByArgument {
        case auto, ask, never
    }

    func validate() throws {
        if let history, !(1...HistoryBody.maxLimit).contains(history) {
            throw ValidationError("--history takes 1 to \(HistoryBody.maxLimit) messages, not \(history)")
        }
        for send in sends where Self.splitTarget(send) == nil { throw ValidationError("--send takes TO:TEXT, not '\(send)'") }
        for call in calls {
            guard let kind = call.split(separator: ":").last, CallKind(rawValue: String(kind)) != nil, call.contains(":") else {
                throw ValidationError("--call takes TO:KIND with KIND audio, video or desktop, not '\(call)'")
            }
        }
    }

    func run() async throws {
        let client = try peer.client()
        let policy: Peer.AcceptPolicy = switch accept {
        case .auto: .auto
        case .ask: .ask
        case .never: .never
        }
        let peerActor = Peer(client: client, options: try media.callOptions(), acceptPolicy: policy)
        let output = EventPrinter(json: json)
        let printing = Task { await Self.handle(peerActor.events, peer: peerActor, output: output) }
        do {
            try await peerActor.connect()
            for room in rooms {
                try await client.join(room: room)
                guard let history else { continue }
                // What was said before this peer came: the room's node keeps it (docs/protocol.md "Room history").
                for entry in try await client.history(of: room, limit: history).messages {
                    output.print("history", ["room": room, "from": entry.from, "id": entry.id, "text": entry.text, "seq": String(entry.seq)])
                }
            }
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
                let placed = try await peerActor.call(to, kind: kind)
                output.print("calling", ["to": to, "kind": kind.rawValue, "call": placed.id])
            }
        } catch let error as SignalingError {
            output.print("error", ["code": error.code.rawValue, "reason": error.reason])
            await peerActor.close()
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

    /// Prints events until the peer stops; asks on the terminal about calls with --accept ask.
    static func handle(_ events: AsyncStream<PeerEvent>, peer: Peer, output: EventPrinter) async {
        for await event in events {
            switch event {
            case .signaling(let signaling):
                output.print(signaling)
            case .answered(let payload, let answer):
                output.print("answered", ["call": payload.call, "from": payload.from, "answer": answer.rawValue])
            case .incomingCall(let payload):
                output.print("ringing", ["call": payload.call, "from": payload.from, "kind": payload.kind?.rawValue ?? "video"])
                let accepted = await Self.ask("Accept the \(payload.kind?.rawValue ?? "video") call from \(TerminalText.safe(payload.from))? [y/N] ")
                if accepted {
                    _ = try? await peer.accept(payload.call)
                    output.print("answered", ["call": payload.call, "from": payload.from, "answer": "accept"])
                } else {
                    await peer.decline(payload.call)
                    output.print("answered", ["call": payload.call, "from": payload.from, "answer": "reject"])
                }
            case .callStarted(let call):
                output.print("call-started", ["call": call.id, "with": call.remote, "kind": call.kind.rawValue])
            case .callEnded(_, let report):
                output.print(report: report)
            case .refused(let payload, let reason):
                output.print("refused", ["call": payload.call, "from": payload.from, "type": payload.type.rawValue, "reason": reason])
            case .forwarderRefused(let room, let call, let reason):
                output.print("refused", ["room": room, "call": call, "type": "forwarder", "reason": reason])
            }
        }
    }

    /// Reads y/n from the terminal without blocking the cooperative pool.
    static func ask(_ question: String) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                FileHandle.standardError.write(Data(question.utf8))
                let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
                continuation.resume(returning: answer == "y" || answer == "yes")
            }
        }
    }
}
