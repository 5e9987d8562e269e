import ArgumentParser
import Foundation
import MeshNode
import Signaling

/// `meshnode chat`: sends one message and exits 0 once the node acknowledged it.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one chat message to a peer or a #room; exit 0 once the node has stored it."
    )

    @OptionGroup var peer: PeerOptions
    @Argument(help: "A peer name or #room.")
    var to: String
    @Argument(help: "The text.")
    var text: String

    func run() async throws {
        let client = try peer.client()
        do {
            try await client.connect()
            let status = try await client.send(text: text, to: to)
            print("sent (\(status.rawValue))")
            await client.close()
        } catch let error as SignalingError {
            await client.close()
            FileHandle.standardError.write(Data("meshnode chat: \(TerminalText.safe(error.description))\n".utf8))
            throw ExitCode(1)
        }
    }
}
