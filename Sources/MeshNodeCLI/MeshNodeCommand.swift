import ArgumentParser

/// `meshnode`: one program for nodes (serve) and peers (join, call, share).
@main
struct MeshNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshnode",
        abstract: "A peer-to-peer mesh for real-time audio, video and desktop sharing.",
        version: "0.1.0",
        subcommands: [Serve.self, Keygen.self, Join.self, CallCommand.self, Share.self, Chat.self, Devices.self, NATCheck.self, NetWatch.self, MediaLoopCommand.self, Status.self]
    )
}
