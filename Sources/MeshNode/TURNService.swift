import ICE
import ServiceLifecycle
import TURNServer

/// Runs the STUN/TURN server as a service of the node's `ServiceGroup`: it starts, waits for
/// graceful shutdown (SIGTERM), then closes listeners and allocations.
struct TURNService: Service {
    let server: TURNServer
    let onStarted: @Sendable ([TURNServer.Listener]) -> Void

    func run() async throws {
        try await server.start()
        onStarted(server.listeners)
        try? await gracefulShutdown()
        await server.stop()
    }
}
