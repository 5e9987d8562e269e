import ArgumentParser
import Foundation
import Signaling

/// `meshnode join`: stays online at a node and prints every event, one line each.
struct Join: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in at a node, stay online and print presence, chat and call events.",
        discussion: """
        Reconnects every 5 s (with jitter) when the connection is lost. Incoming calls are \
        declined with `busy` (calls themselves are `meshnode call`). With --json each line is one \
        JSON object with an `event` field.
        """
    )

    @OptionGroup var peer: PeerOptions
    @Flag(help: "Print one JSON object per line.")
    var json = false
    @Option(name: .customLong("subscribe"), help: "Follow this peer's presence (repeatable).")
    var subscriptions: [String] = []
    @Option(name: .customLong("room"), help: "Join this #room (repeatable).")
    var rooms: [String] = []
    @Option(name: .customLong("send"), help: "Send TO:TEXT once online (repeatable); TO is a name or #room.")
    var sends: [String] = []

    func validate() throws {
        for send in sends where !send.contains(":") { throw ValidationError("--send takes TO:TEXT, not '\(send)'") }
    }

    func run() async throws {
        let client = try peer.client()
        let output = EventPrinter(json: json)
        let printing = Task { await Self.handle(client.events, client: client, output: output) }
        do {
            try await client.connect()
            for room in rooms { try await client.join(room: room) }
            if !subscriptions.isEmpty { try await client.subscribe(subscriptions) }
            for send in sends {
                let parts = send.split(separator: ":", maxSplits: 1).map(String.init)
                let status = try await client.send(text: parts[1], to: parts[0])
                output.print("sent", ["to": parts[0], "text": parts[1], "status": status.rawValue])
            }
        } catch let error as SignalingError {
            output.print("error", ["code": error.code.rawValue, "reason": error.reason])
            await client.close()
            throw ExitCode(1)
        }
        await printing.value
        throw ExitCode(1)
    }

    /// Prints events until the client stops; declines every incoming call with `busy`.
    static func handle(_ events: AsyncStream<SignalingEvent>, client: SignalingClient, output: EventPrinter) async {
        for await event in events {
            output.print(event)
            if case .callSetup(let payload) = event, payload.type == .call {
                try? await client.callSetup(.busy, to: payload.from, call: payload.call, reason: "meshnode join does not take calls")
                output.print("declined", ["call": payload.call, "from": payload.from, "answer": "busy"])
            }
        }
    }
}
