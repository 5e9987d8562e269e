import ArgumentParser
import Foundation
import MeshNode
import Signaling

/// `meshnode devices`: the devices of a name (docs/protocol.md "Devices"). With the owner key
/// (the first that used the name), `link` shows a code to type on the new device and endorses
/// it once it asks, `remove KEY` cuts a device off; any device can `list`.
struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, link or remove the devices that use your name.",
        discussion: """
            list: every key of the name (the owner's first). link: shows a six-digit code; type it on the new \
            device (the page's "Use a name you already have on another device"); when it asks, compare the key \
            it shows and confirm (or pass --yes). remove KEY: the device with that key is disconnected and \
            cannot log in again. link and remove need the owner key.
            """
    )

    @OptionGroup var peer: PeerOptions
    @Argument(help: "list, link or remove.")
    var action: String
    @Argument(help: "remove: the device's key (base64, as list prints it).")
    var key: String?
    @Flag(help: "link: endorse the first device that types the code without asking.")
    var yes = false

    func run() async throws {
        guard ["list", "link", "remove"].contains(action) else { throw ValidationError("the action is list, link or remove, not '\(action)'") }
        if action == "remove" && key == nil { throw ValidationError("remove needs the device's key") }
        let client = try peer.client()
        do {
            try await client.connect()
            switch action {
            case "list":
                for device in try await client.devices() {
                    print("\(device.key) \(device.owner ? "owner" : "linked") \(device.online ? "online" : "offline")")
                }
            case "link":
                try await link(client)
            default:
                try await client.revoke(key ?? "")
                print("removed \(key ?? "")")
            }
            await client.close()
        } catch let error as SignalingError {
            await client.close()
            FileHandle.standardError.write(Data("meshnode devices: \(TerminalText.safe(error.description))\n".utf8))
            throw ExitCode(1)
        }
    }

    private func link(_ client: SignalingClient) async throws {
        let events = client.events
        let (code, expires) = try await client.linkCode()
        print("code: \(code) (type it on the new device within \(Int(expires)) s)")
        fflush(nil)
        let deadline = ContinuousClock.now + .seconds(max(expires, 1))
        let waiter = Task { () -> DeviceRequestBody? in
            for await event in events {
                if case .deviceRequest(let request) = event { return request }
            }
            return nil
        }
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            waiter.cancel()
        }
        defer { timer.cancel() }
        guard let request = await waiter.value else {
            throw SignalingError(.timeout, "no device typed the code before it expired")
        }
        let fingerprint = stride(from: 0, to: 16, by: 4).map { String(request.key.dropFirst($0).prefix(4)) }.joined(separator: " ")
        print("device-request: key \(TerminalText.safe(request.key)) (begins \(TerminalText.safe(fingerprint)))")
        if !yes {
            print("Allow this device to use \(client.name)? The new device shows the same beginning. [y/N] ", terminator: "")
            fflush(nil)
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else {
                try await client.revoke(request.key)
                print("refused")
                return
            }
        }
        try await client.endorse(request.key)
        print("added \(request.key)")
    }
}
