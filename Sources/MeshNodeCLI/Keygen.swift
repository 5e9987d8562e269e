import ArgumentParser
import Signaling

/// `meshnode keygen`: makes the Ed25519 identity a peer logs in with.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an Ed25519 identity (the key is who you are; names are bound to it).",
        discussion: "The file holds the secret key and is created with mode 0600. An existing file is never overwritten."
    )

    @Option(help: "Identity file (default ~/.config/meshnode/identity).")
    var identity: String?

    func run() throws {
        let path = identity ?? IdentityFile.defaultPath
        do {
            let created = try IdentityFile.create(at: path)
            print("identity: \(path)")
            print("public key: \(created.publicKeyBase64)")
        } catch {
            throw ValidationError(error.reason)
        }
    }
}
